"""Leaderboards and figures from a results directory."""

from benchmark.report.leaderboard import render, write_leaderboard

__all__ = ["render", "write_leaderboard"]
