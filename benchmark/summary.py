"""What a run did: the :class:`Summary` every executor returns and ``bench run`` prints."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Summary:
    """What a run did, cell by cell (every executor returns one)."""

    planned: int = 0
    skipped: int = 0  # already finished before this run
    ok: int = 0
    na: int = 0
    failed: list[str] = field(default_factory=list)  # failed in this run: "label: error"
    failed_before: list[str] = field(default_factory=list)  # failed in an earlier run, not retried
    submitted: int = 0  # handed to a scheduler (slurm) by this run and not waited for
    queued: int = 0  # in a scheduler's jobs of an earlier run, still queued or running: not submitted again
    jobs: list[str] = field(default_factory=list)  # the scheduler's job ids of those
    wall: float = 0.0

    @property
    def exit_code(self) -> int:
        """1 when a cell of the matrix is failed (in this run or an earlier one), else 0."""
        return 1 if self.failed or self.failed_before else 0

    def add(self, other: Summary) -> None:
        """Fold ``other`` (another matrix, another worker) into this summary."""
        self.planned += other.planned
        self.skipped += other.skipped
        self.ok += other.ok
        self.na += other.na
        self.failed += other.failed
        self.failed_before += other.failed_before
        self.submitted += other.submitted
        self.queued += other.queued
        self.jobs += other.jobs
        self.wall += other.wall

    def text(self) -> str:
        line = (
            f"{self.planned} cells: {self.skipped} already done, {self.ok} computed, {self.na} n/a, "
            f"{len(self.failed)} failed"
        )
        if self.failed_before:
            line += f", {len(self.failed_before)} failed earlier (kept: `bench run --retry-failed` recomputes them)"
        if self.submitted:
            line += f", {self.submitted} submitted"
        if self.queued:
            line += f", {self.queued} queued earlier"
        line += f" ({self.wall:.0f} s)"
        if self.jobs:
            line += f"\n  jobs: {' '.join(self.jobs)}"
        return (line + "".join(f"\n  FAILED {f}" for f in self.failed)
                + "".join(f"\n  failed earlier: {f}" for f in self.failed_before))
