"""How a plan's cells run: ``inline`` (one after the other in this process, the default) or
``local`` (worker processes on this machine sharing the results directory)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from benchmark.config import Resolved
from benchmark.runner import Runner, Summary

EXECUTORS = ("inline", "local")


def execute(resolved: Resolved, results: str | Path, *, progress: bool | None = None, verbose: bool = False,
            log: Callable[[str], None] | None = None) -> Summary:
    """Run every pending cell of ``resolved`` with the matrix's executor; return the summary."""
    if resolved.matrix.executor.name == "local":
        from benchmark.executors.local import run_local

        return run_local(resolved, results, verbose=verbose, log=log)
    return Runner(resolved, results, progress=progress, verbose=verbose, log=log).run()


__all__ = ["EXECUTORS", "execute"]
