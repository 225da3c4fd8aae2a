"""What one task of the ``slurm`` executor runs on a node (pickled by submitit): a :class:`SlurmTask`
that generates one poison or computes some cells with a :class:`~benchmark.runner.Runner`, and
turns submitit's requeue (time limit, preemption) into :class:`Preempted` so the cell being
computed is left without a record and starts again in the requeued task."""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

from benchmark.errors import UserError
from benchmark.plugin_failure import PLUGIN_FAILURES


class Preempted(KeyboardInterrupt):
    """submitit's SIGUSR2 handler requeued this task (time limit or preemption): leave the cell
    being computed without a record (it starts again in the requeued task), then exit as submitit
    would. A ``KeyboardInterrupt`` so that the runner does not record the cell as failed."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


def _wrap_requeue_signal() -> None:
    """submitit ends its requeue handler with ``sys.exit`` (or raises when it cannot requeue): both
    would fail the current cell (the runner records a plugin's ``sys.exit`` as its failure). Turn
    them into :class:`Preempted`."""
    sig = getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"), signal.SIGUSR2)
    previous = signal.getsignal(sig)
    if not callable(previous):
        return

    def handler(signum: int, frame: Any) -> None:
        try:
            previous(signum, frame)
        except BaseException as e:  # noqa: BLE001 - SystemExit after a requeue, or "not requeued"
            raise Preempted(e) from None

    signal.signal(sig, handler)


@dataclass
class SlurmTask:
    """What one SLURM task runs (pickled by submitit): generate one poison (``kind="attack"``), or
    compute some cells of one attack (``kind="cells"``), with a :class:`Runner` on the shared
    results directory. Requeued as is after a time-out or a preemption (``checkpoint``)."""

    matrix: dict[str, Any]
    file: str | None
    results: str
    kind: str
    poison: str
    cells: list[str] = field(default_factory=list)
    retry_failed: bool = False
    submitted: float = 0.0  # failures recorded after this (by an earlier attempt of this task) are kept
    verbose: bool = False

    def __call__(self) -> dict[str, Any]:
        try:
            return self._run()
        except Preempted as e:
            raise e.original from None

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit requeues a task that has this method (time limit, preemption): the same task,
        which resumes from the results directory."""
        from submitit.core.utils import DelayedSubmission

        return DelayedSubmission(self, *args, **kwargs)

    def _run(self) -> dict[str, Any]:
        from dataclasses import asdict

        from benchmark.config import parse_matrix, resolve
        from benchmark.registry import get_registry
        from benchmark.runner import Runner

        _wrap_requeue_signal()
        job = os.environ.get("SLURM_ARRAY_JOB_ID")
        job = f"{job}_{os.environ.get('SLURM_ARRAY_TASK_ID')}" if job else os.environ.get("SLURM_JOB_ID", "?")
        tag = {"name": "slurm", "job": job, "restarts": int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0),
               "host": os.environ.get("SLURMD_NODENAME", "")}
        m = parse_matrix({**self.matrix, "executor": "inline"}, file=self.file)
        runner = Runner(resolve(m, get_registry(), file=self.file), self.results, progress=False, verbose=self.verbose,
                        retry_failed=self.retry_failed, since=self.submitted, tag=tag,
                        log=lambda msg: print(msg, file=sys.stderr, flush=True))
        jobs = {j.key: j for j in runner.plan.jobs}
        if self.poison not in jobs:
            raise UserError(f"poison {self.poison} is not in matrix {m.name!r} any more (was the matrix file changed?)")
        attack = jobs[self.poison]
        if self.kind == "attack":
            try:
                runner.poison(attack)
            except (KeyboardInterrupt, UserError):
                raise
            except PLUGIN_FAILURES as e:  # the attack's failure (sys.exit too): in every cell's record, as inline
                summary = runner.run(cells=attack.cells)
                raise RuntimeError(f"poison {attack.attack.display} failed ({len(summary.failed)} cells recorded "
                                   f"as failed): {type(e).__name__}: {e}") from None
            return {"poison": self.poison, "job": job}
        keys = set(self.cells)
        summary = runner.run(cells=[c for c in attack.cells if c.key in keys])
        return asdict(summary)
