"""Where a matrix stands in a results directory: ``bench status RESULTS [MATRIX]``.

A cell is **done** (a record with status ok or n/a holding every metric asked for), **failed** (a
record with status failed: kept until ``bench run --retry-failed``), **running** (a live process
holds its lock: the lock is the kernel's, so a killed process never looks alive) or **pending**
(no usable record): queued in a SLURM job, *interrupted* (a process took its lock and ended
without a record: killed, cancelled, preempted), or not started (with why, when the SLURM task
that held it ended: its poison job failed, it was cancelled). SLURM poison jobs that ended without
their poison are listed with their logs. Without the matrix only what the results directory knows
is shown: records, held locks, SLURM submissions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmark.same_poison import Index, find_same_poison, index_poisons
from benchmark.store import ArtifactCache, ResultStore, probe_lock

STATES = ("done", "running", "failed", "pending")


def cell_state(store: ResultStore, cell: Any, metrics: Iterable[Any]) -> str:
    """``done`` (a record with status ok holding every metric of ``metrics`` with the same params,
    or status n/a), ``failed`` (status failed) or ``todo`` (no usable record, or an ok record that
    lacks a metric asked for now)."""
    rec = store.get(cell.key)
    if rec is None:
        return "todo"
    status = rec.get("status")
    if status == "failed":
        return "failed"
    if status == "n/a":
        return "done"
    if status == "ok":
        return "todo" if stale_metrics(rec, metrics) else "done"
    return "todo"


def stale_metrics(rec: dict[str, Any], metrics: Iterable[Any]) -> list[str]:
    """The metrics of ``metrics`` that the ok record ``rec`` does not hold as asked, each with why:
    ``"name (not computed)"`` or ``"name (other params or version)"`` (new params: recompute)."""
    have = rec.get("metric_specs")
    if have is None:  # a record written before metric specs were kept: compare names
        names = set(rec.get("metric_plugins", []))
        return [f"{m.name} (not computed)" for m in metrics if m.name not in names]
    had = {h.get("name") for h in have}
    return [f"{m.name} ({'other params or version' if m.name in had else 'not computed'})" for m in metrics if m.spec() not in have]


def needs_work(state: str, retry_failed: bool) -> bool:
    """Whether a run computes a cell in ``state`` (see :func:`cell_state`): ``todo`` always,
    ``failed`` only with ``retry_failed``."""
    return state == "todo" or (state == "failed" and retry_failed)


@dataclass
class Line:
    """One cell (or poison) that the report names, with why."""

    key: str
    label: str
    detail: str = ""


@dataclass
class MatrixStatus:
    """One matrix's progress in a results directory: cells planned, done, ok, n/a, running, failed and pending."""
    matrix: str
    cells: int | None  # planned cells (None: the matrix was not given)
    done: int = 0
    ok: int = 0
    na: int = 0
    running: list[Line] = field(default_factory=list)
    failed: list[Line] = field(default_factory=list)
    pending: list[Line] = field(default_factory=list)
    poisons: dict[str, int] = field(default_factory=dict)  # cached / generating / to generate / not needed
    failed_jobs: list[Line] = field(default_factory=list)  # SLURM poison jobs that ended without their poison

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _holder_text(info: dict[str, Any] | None) -> str:
    """``slurm job 12_3 on node7 since <time>`` or ``pid 4242 on host since <time>``."""
    if not info:
        return "an unknown process"
    ex = info.get("executor") or {}
    who = f"slurm job {ex['job']}" if ex.get("name") == "slurm" and ex.get("job") else f"pid {info.get('pid')}"
    host = info.get("host") or ex.get("host")
    since = info.get("since")
    return who + (f" on {host}" if host else "") + (f" since {since}" if since else "")


class Survey:
    """What a results directory says about its cells: records, locks, SLURM tasks."""

    def __init__(self, results: str | Path, *, queue: bool = True, warn: Callable[[str], None] | None = None) -> None:
        """``warn``: told of each record that is not valid (it is set aside for the next run to
        recompute, as every command that reads records does); silent by default."""
        from benchmark.executors.slurm_queue import active_tasks, my_jobs, read_submissions

        self.root = Path(results)
        self.store = ResultStore(self.root, warn=warn or (lambda m: None))
        self.cache = ArtifactCache(self.root, warn=lambda m: None)
        folder = self.root / "slurm"
        self.submissions = read_submissions(folder)
        self.queue = my_jobs() if queue and self.submissions else None
        self.active: dict[str, dict[str, Any]] = {}  # cell or poison key -> its task
        for t in active_tasks(folder, self.queue):
            for k in t.get("cells", []) if t.get("kind") == "cells" else [t.get("poison")]:
                self.active.setdefault(k, t)  # type: ignore[arg-type]  # every task names its poison (Submission._entry)
        self.last_task = {}
        for t in self.submissions:  # oldest first: the last submission of a cell wins
            for k in t.get("cells", []) if t.get("kind") == "cells" else [t.get("poison")]:
                self.last_task[k] = t

    def _queued(self, key: str) -> str | None:
        t = self.active.get(key)
        if t is None or self.queue is None:
            return None
        state, reason = self.queue[t["job"]]
        why = f", {reason}" if reason and reason not in ("None", "(null)") else ""
        return f"{state.lower()} in SLURM job {t['job']}{why}"

    def _ended_task(self, key: str) -> str:
        t = self.last_task.get(key)
        if t is None:
            return ""
        state = (self.queue or {}).get(t["job"], ("", ""))[0]
        return f"; SLURM job {t['job']}{f' {state}' if state else ''}, log {t.get('log')}"

    def cell(self, key: str, label: str, rec: dict[str, Any] | None, st: str, stale: list[str] | None = None) -> tuple[str, Line]:
        """(state, line) of one cell: ``st`` is :func:`cell_state`'s answer (``todo`` if unknown);
        ``stale``, what :func:`stale_metrics` says of its record (when the matrix is known)."""
        held, info = probe_lock(self.store.lock_path(key))
        if held:
            return "running", Line(key, label, _holder_text(info))
        if st == "done":
            return "done", Line(key, label)
        if st == "failed":
            err = str((rec or {}).get("error") or "failed").strip().splitlines()
            return "failed", Line(key, label, (err[0] if err else "failed")[:300])
        queued = self._queued(key)
        if queued:
            return "pending", Line(key, label, queued)
        damaged = self._moved_aside(key) if rec is None else None
        if damaged is not None and not damaged[1]:
            return "pending", Line(key, label, f"its record was damaged and moved aside as cells/{damaged[0]}; the next run recomputes it")
        if info and rec is None:
            earlier = f" (an earlier record, damaged, was moved aside as cells/{damaged[0]})" if damaged else ""
            return "pending", Line(key, label, f"interrupted: started by {_holder_text(info)}, no result{earlier}{self._ended_task(key)}")
        if rec is None:
            return "pending", Line(key, label, "not started" + self._why_not_started(key))
        return "pending", Line(key, label, f"to recompute: {', '.join(stale)}" if stale else "to recompute (a metric changed)")

    def _moved_aside(self, key: str) -> tuple[str, bool] | None:
        """``(file name, started since)`` where the record of cell ``key`` was moved aside as not a
        valid record (``<key>.json.corrupt``: truncated, damaged); ``started since``: a run took the
        cell's lock after that record was written (and ended without a new one). ``None``: none was."""
        p = self.store.path(key)
        corrupt = p.with_name(p.name + ".corrupt")
        try:
            written = corrupt.stat().st_mtime  # os.replace keeps the damaged record's own time
        except OSError:
            return None
        try:
            since = self.store.lock_path(key).stat().st_mtime > written
        except OSError:
            since = False
        return corrupt.name, since

    def _why_not_started(self, key: str) -> str:
        """``": <why>"`` when the last SLURM task of cell ``key`` ended without a result, else ``""``."""
        from benchmark.executors.slurm_outcome import ended, no_result

        t = self.last_task.get(key)
        if t is None or t.get("kind") != "cells" or ended(t, self.queue) is None:
            return ""
        return ": " + no_result(t, self.submissions, self.queue, self._cached)

    def _cached(self, key: str) -> bool:
        return self.poison(key) != "to generate"  # cached, or being generated (not failed)

    def _failed_jobs(self, out: MatrixStatus, wanted: Callable[[dict[str, Any]], bool]) -> None:
        """Name, in ``out``, the SLURM poison jobs that ended without their poison and which cells
        of ``out``'s matrix still need (``wanted``), each with its log."""
        from benchmark.executors.slurm_outcome import failed_poison_jobs, job_name

        mine = [t for t in self.submissions if t.get("matrix") == out.matrix]
        for t, why in failed_poison_jobs(mine, self.queue, self._cached, wanted):
            out.failed_jobs.append(Line(str(t.get("poison")), job_name(t), why))

    def poison(self, key: str) -> str:
        d = self.cache.dir(key)
        if (d / "meta.json").is_file() and (d / "data.pt").is_file():
            return "cached"
        held, _ = probe_lock(self.cache.lock_path(key))
        return "generating" if held else "to generate"

    # ---------------------------------------------------------------------------------------
    def of_matrix(self, resolved: Any) -> MatrixStatus:
        from benchmark.plan import make_plan

        plan = make_plan(resolved)
        out = MatrixStatus(resolved.matrix.name, len(plan.cells))
        needed: set[str] = set()  # poisons a cell still waits for (as `bench run --dry-run` counts them)
        unfinished: set[str] = set()  # poisons of cells not done (failed ones too)
        for cell in plan.cells:
            rec = self.store.get(cell.key)
            st = cell_state(self.store, cell, resolved.metrics)
            stale = stale_metrics(rec, resolved.metrics) if st == "todo" and rec is not None and rec.get("status") == "ok" else None
            state, line = self.cell(cell.key, cell.label, rec, st, stale)
            self._count(out, state, line, rec)
            if st == "todo" and cell.defense.applies_to(cell.victim):
                needed.add(cell.job.key)
            if st != "done":
                unfinished.add(cell.job.key)
        self._failed_jobs(out, lambda t: t.get("poison") in unfinished)
        index: Index | None = None  # the stored poisons, read once when a poison is missing
        for job in plan.jobs:
            p = self.poison(job.key)
            if p == "to generate" and job.key not in needed:
                p = "not needed"  # every cell of it is done: its poison is not kept (e.g. committed evidence)
            elif p == "to generate":
                index = index_poisons(self.cache) if index is None else index
                if find_same_poison(index, job.spec, job.key) is not None:
                    p = "to copy"  # the same poison under another key, as `bench run --dry-run` lists it
            out.poisons[p] = out.poisons.get(p, 0) + 1
        return out

    def of_results(self) -> list[MatrixStatus]:
        """Per matrix name found in the records, held locks and SLURM submissions."""
        by: dict[str, MatrixStatus] = {}

        def get(name: str) -> MatrixStatus:
            return by.setdefault(name, MatrixStatus(name, None))

        recorded = set()
        for rec in self.store.records():
            key = str(rec.get("key") or "")
            recorded.add(key)
            label = f"{rec['attack']} × {rec['victim']} × {rec['defense']} (seed {rec['seed']})"
            st = {"ok": "done", "n/a": "done", "failed": "failed"}.get(rec["status"], "todo")
            state, line = self.cell(key, label, rec, st)
            self._count(get(str(rec.get("matrix") or "?")), state, line, rec)
        for lock in sorted((self.root / "locks").glob("cell-*.lock")):
            key = lock.stem.removeprefix("cell-")
            if key in recorded:
                continue
            held, info = probe_lock(lock)
            if info is None and not held:
                continue
            label = str((info or {}).get("what", "cell ?")).removeprefix("cell ")
            state, line = self.cell(key, label, None, "todo")
            self._count(get(str((info or {}).get("matrix") or "?")), state, line, None)
            recorded.add(key)
        for key, t in self.active.items():
            if t.get("kind") == "cells" and key not in recorded:
                state, line = self.cell(key, f"cell {key}", None, "todo")
                self._count(get(str(t.get("matrix") or "?")), state, line, None)
        def unfinished(task: dict[str, Any]) -> bool:  # a cell submitted for the poison has no done record
            keys = {k for t in self.submissions if t.get("kind") == "cells" and t.get("poison") == task.get("poison")
                    for k in t.get("cells", [])}
            return any((self.store.get(k) or {}).get("status") not in ("ok", "n/a") for k in keys)

        for name in sorted({str(t.get("matrix") or "?") for t in self.submissions if t.get("kind") == "attack"}):
            self._failed_jobs(get(name), unfinished)
        for name in [k for k, s in by.items() if not (s.done or s.running or s.failed or s.pending or s.failed_jobs)]:
            del by[name]
        return [by[k] for k in sorted(by)]

    @staticmethod
    def _count(out: MatrixStatus, state: str, line: Line, rec: dict[str, Any] | None) -> None:
        if state == "done":
            out.done += 1
            if rec and rec.get("status") == "n/a":
                out.na += 1
            else:
                out.ok += 1
        else:
            getattr(out, state).append(line)


def render(statuses: list[MatrixStatus], results: str | Path, *, limit: int = 20) -> str:
    """The ``bench status`` text: counts per state; every failed cell with its error; the first
    ``limit`` running and pending cells with why (``limit`` 0: all)."""
    lines: list[str] = []
    if not statuses:
        return f"{results}: no cells yet"
    for s in statuses:
        total = f"{s.cells} cells" if s.cells is not None else "cells found in the results (give the matrix for its plan)"
        lines.append(f"matrix {s.matrix!r} in {results}: {total}")
        lines.append(f"  done     {s.done:>5}" + (f"  ({s.ok} ok, {s.na} n/a)" if s.na else ""))
        for name, items, cap in (("running", s.running, limit), ("failed", s.failed, 0), ("pending", s.pending, limit)):
            if name == "pending" and s.cells is None and not items:
                continue
            lines.append(f"  {name:<8} {len(items):>5}")
            shown = items if not cap else items[:cap]
            lines += [f"    {x.label}: {x.detail}" if x.detail else f"    {x.label}" for x in shown]
            if len(shown) < len(items):
                lines.append(f"    ... and {len(items) - len(shown)} more (--all lists every one)")
        if s.failed_jobs:
            lines.append(f"  failed SLURM jobs {len(s.failed_jobs)}")
            lines += [f"    {x.label}: {x.detail}" for x in s.failed_jobs]
        if s.poisons:
            lines.append("  poisons  " + ", ".join(f"{n} {k}" for k, n in sorted(s.poisons.items())))
    return "\n".join(lines)


def to_json(statuses: list[MatrixStatus]) -> str:
    return json.dumps([s.to_json() for s in statuses], indent=2)
