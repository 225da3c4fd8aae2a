"""The built-in executors (plugins of kind ``executor``, see :mod:`benchmark.executor`):
``inline`` (one cell after the other in this process, the default), ``local`` (worker processes on
this machine sharing the results directory) and ``slurm`` (attack jobs and job arrays of cells on
a SLURM cluster, through submitit)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from benchmark.executor import RunOptions

if TYPE_CHECKING:  # not at run time: `bench status` reads SLURM's queue (slurm_queue) without the config's imports
    from benchmark.config import Resolved
    from benchmark.summary import Summary


def execute(resolved: Resolved, results: str | Path, *, progress: bool | None = None, verbose: bool = False,
            log: Callable[[str], None] | None = None, retry_failed: bool = False, wait: bool = False) -> Summary:
    """Run every pending cell of ``resolved`` with the matrix's executor; return the summary."""
    executor = resolved.executor
    if executor is None:  # a Resolved built by hand: look the matrix's executor up
        from benchmark.config import AxisEntry, _instantiate
        from benchmark.registry import get_registry

        spec = resolved.matrix.executor
        executor = _instantiate(get_registry(), "executor", AxisEntry(name=spec.name, params=spec.params),
                                resolved.matrix.profile, "executor", resolved.file)
    return executor.run(resolved, results, RunOptions(progress=progress, verbose=verbose, log=log,
                                                      retry_failed=retry_failed, wait=wait))


__all__ = ["RunOptions", "execute"]
