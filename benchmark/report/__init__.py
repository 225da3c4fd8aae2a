"""Leaderboards, exports, figures and the static HTML report of a results directory."""

from benchmark.report.leaderboard import render, write_leaderboard
from benchmark.report.site import Report, write_report

__all__ = ["Report", "render", "write_leaderboard", "write_report"]
