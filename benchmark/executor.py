"""Executors: how a plan's jobs run. A plugin kind like attacks or victims.

An executor is registered through the ``register_executors`` hook, validates the matrix's
``executor: {name, params}`` block with its own ``Params`` model, is listed by ``bench plugins``,
and runs a resolved matrix into a results directory. The built-ins are ``inline`` (this process,
one cell after the other), ``local`` (worker processes on this machine) and ``slurm`` (attack jobs
and job arrays of cells on a SLURM cluster, through submitit); a new one touches no core file::

    from benchmark import Executor, Params, hookimpl
    from benchmark.runner import Runner

    class Serial(Executor):
        '''One cell after the other, logging to a file.'''
        name = "serial"
        class Params(Params):
            log: str = "run.log"

        def run(self, resolved, results, options):
            return Runner(resolved, results, retry_failed=options.retry_failed).run()

    @hookimpl
    def register_executors():
        return [Serial]

Every executor must keep the runner's guarantees: each cell runs the matrix's ``threads`` torch
threads (a cell's numbers do not depend on how the matrix ran), finished cells are never
recomputed, and failed cells are recomputed only with ``options.retry_failed``. The simplest way is
to run :class:`benchmark.runner.Runner` wherever the work happens, as the built-ins do: its
per-cell and per-poison file locks make any number of runners on one results directory split the
work safely.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from benchmark.plugin import Plugin

if TYPE_CHECKING:  # the runner imports the config, which looks executors up: types only here
    from benchmark.config import Resolved
    from benchmark.summary import Summary


def usable_cpus() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one: fewer than
    ``os.cpu_count()`` under ``taskset`` or a container's cpuset)."""
    import os

    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclass(frozen=True)
class RunOptions:
    """What ``bench run`` asks of every executor.

    ``progress``: show a progress bar (``None``: when stderr is a terminal); ``verbose``: also show
    the plugins' own progress; ``log``: where one-line messages go (default stderr);
    ``retry_failed``: recompute cells whose record says ``failed`` (by default they are reported and
    kept); ``wait``: for executors that hand work to a scheduler (``slurm``), wait until every job
    ended and return the cells' summary, instead of returning once submitted.
    """

    progress: bool | None = None
    verbose: bool = False
    log: Callable[[str], None] | None = None
    retry_failed: bool = False
    wait: bool = False


class Executor(Plugin):
    """Base of executors: runs a resolved matrix into a results directory (see the module doc).

    ``Params`` validates the matrix's ``executor.params`` (and ``bench run --executor-param``);
    ``profiles`` is unused (an executor does not change any number).
    """

    kind: ClassVar[str] = "executor"

    def slots(self, resolved: Resolved) -> int:
        """How many jobs this executor runs at once (the dry-run's wall-time estimate)."""
        return 1

    def check(self, resolved: Resolved) -> None:
        """Raise a :class:`~benchmark.errors.UserError` for what ``run`` would refuse in this
        matrix or environment before running anything (``bench run --dry-run`` calls it too)."""

    @abstractmethod
    def run(self, resolved: Resolved, results: str | Path, options: RunOptions) -> Summary:
        """Run every pending cell of ``resolved`` into ``results`` (or submit them, see
        :attr:`RunOptions.wait`); return the summary."""
