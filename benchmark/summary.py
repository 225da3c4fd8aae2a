"""What a run did: the :class:`Summary` every executor returns and ``bench run`` prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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


def unconverged_note(meta: dict[str, Any], params: Any = None) -> str:
    """What the line announcing a generated poison adds when the poison did not reach its stopping
    condition (``meta["stopped"]`` false: EM, PUE at their ``max_outer``), else ``""``: ``"; NOT
    CONVERGED: stopped at max_outer=2 with accuracy 0.5529 on the poisoned data, below stop_accuracy
    0.99 (`poison_meta.stopped` false)"``. ``params``: the attack's, for its limits."""
    if meta.get("stopped") is not False:
        return ""
    runs = meta.get("outer_iterations")
    limit = getattr(params, "max_outer", None)
    at = f"max_outer={limit}" if isinstance(limit, int) else f"{runs} outer iterations" if isinstance(runs, int) else "its iteration limit"
    history = meta.get("train_accuracy")
    last = history[-1] if isinstance(history, list) and history and isinstance(history[-1], (int, float)) else None
    goal = getattr(params, "stop_accuracy", None)
    acc = f" with accuracy {last:.4g} on the poisoned data" if last is not None else ""
    below = f", below stop_accuracy {goal:g}" if isinstance(goal, (int, float)) and last is not None else ""
    return f"; NOT CONVERGED: stopped at {at}{acc}{below} (`poison_meta.stopped` false): it may be weaker than a converged poison"


def metrics_text(rec: dict[str, Any]) -> str:
    """A finished record's values as its console line shows them: each in its metric's declared
    unit as the leaderboard shows it (a fraction or a percent as ``23.9%``; a certificate that
    abstains as ``abstain``); a number, or a value of a record without units, as it is."""
    import math

    from benchmark.report.tables import DISPLAY, fmt_number, nan_word

    units = rec.get("metric_units") or {}
    out = []
    for key, value in rec["metrics"].items():
        declared = units.get(key)
        unit = str(declared.get("unit", "")) if isinstance(declared, dict) else ""
        if not isinstance(value, int | float) or isinstance(value, bool):
            text = str(value)
        elif math.isnan(value):
            text = nan_word(key)
        elif unit in DISPLAY:
            factor, suffix = DISPLAY[unit]
            text = fmt_number(value * factor, unit) + suffix
        else:
            text = f"{value:.4g}"
        out.append(f"{key} {text}")
    return ", ".join(out)
