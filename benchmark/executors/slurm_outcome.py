"""Why a ``slurm`` executor's job left no result, from the submissions list, ``squeue`` and the
jobs' logs (never ``sacct``): used by ``bench run --wait``'s summary and by ``bench status``.

A cells task that never ran (SLURM cancelled it because its attack job failed, or it was cancelled
while pending) has no log: the line names the attack job that failed and *its* log, or says that
the task was cancelled. An attack job that ended without its poison (killed, out of memory, a
``UserError`` such as read-only locks) records nothing in the cells (only a poison that raised
does): :func:`failed_poison_jobs` finds it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmark.executors.slurm_queue import ENDED

Queue = dict[str, tuple[str, str]]

#: a line of a log that says what went wrong: a Python exception, or SLURM's word on the task
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b(:.*)?$")
_SLURM = re.compile(r"(error|killed|oom|cancelled|time limit)", re.IGNORECASE)


def log_hint(path: str | None) -> str:
    """The line of the log at ``path`` that says best why its job failed (the last Python
    exception, else the last SLURM error line), or ``""``."""
    if not path:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 16_384))
            lines = [ln.strip() for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    found = [ln for ln in lines if _EXCEPTION.match(ln)] or \
            [ln for ln in lines if _SLURM.search(ln) and "Force Terminated" not in ln]
    return found[-1][:200] if found else ""


def ran(task: dict[str, Any]) -> bool:
    """Whether ``task`` started on a node: submitit's log of it exists and is not empty."""
    try:
        return Path(str(task.get("log"))).stat().st_size > 0
    except OSError:
        return False


def ended(task: dict[str, Any], queue: Queue | None) -> str | None:
    """``task``'s final state (``FAILED``...; ``""`` when slurmctld forgot it), or ``None`` while it
    is still queued or running, or when the queue is unknown."""
    if queue is None:
        return None
    state = queue.get(task["job"], ("", ""))[0]
    return state if not state or state in ENDED else None


def attack_task(task: dict[str, Any], submissions: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The attack job a cells task waited for: the one it names (``after``), else (lists written
    before ``after`` was kept) the last attack job of its poison submitted with or before it."""
    attacks = [t for t in submissions if t.get("kind") == "attack" and t.get("poison") == task.get("poison")]
    if "after" in task:
        return next((t for t in attacks if t["job"] == task["after"]), None)
    earlier = [t for t in attacks if float(t.get("time", 0)) <= float(task.get("time", 0))]
    return earlier[-1] if earlier else None


def _state_text(state: str) -> str:
    return f"ended {state}" if state else "ended"


def poison_failure(attack: dict[str, Any], queue: Queue | None, cached: Callable[[str], bool]) -> str | None:
    """``"ended FAILED without its poison (log L: its last error line)"`` when the attack job
    ``attack`` ended without making its poison, else ``None``."""
    state = ended(attack, queue)
    if state is None or state == "COMPLETED" or cached(str(attack.get("poison"))):
        return None
    hint = log_hint(attack.get("log"))
    return f"{_state_text(state)} without its poison (log {attack.get('log')}{': ' + hint if hint else ''})"


def job_name(attack: dict[str, Any]) -> str:
    """``poison job 12 (em)``."""
    return f"poison job {attack['job']} ({attack.get('attack', '?')})"


def no_result(task: dict[str, Any] | None, submissions: list[dict[str, Any]], queue: Queue | None,
              cached: Callable[[str], bool]) -> str:
    """Why a cell of the cells task ``task`` has no record once ``task`` ended: its attack job
    failed (with that job's log), it was cancelled, or it ended so (with its own log)."""
    if task is None:
        return "no SLURM task of it is known"
    state = ended(task, queue)
    did_run = ran(task)
    attack = attack_task(task, submissions)
    failure = poison_failure(attack, queue, cached) if attack is not None else None
    if attack is not None and failure and not did_run:
        return f"its {job_name(attack)} {failure}; SLURM cancelled its task {task['job']}, which never ran"
    if not did_run:
        how = "was cancelled" if state == "CANCELLED" else _state_text(state or "")
        return f"its SLURM task {task['job']} {how} before it started (no log)"
    if state == "CANCELLED":
        return f"its SLURM task {task['job']} was cancelled (log {task.get('log')})"
    hint = log_hint(task.get("log"))
    return f"its SLURM task {task['job']} {_state_text(state or '')} (log {task.get('log')}{': ' + hint if hint else ''})"


def failed_poison_jobs(submissions: list[dict[str, Any]], queue: Queue | None, cached: Callable[[str], bool],
                       wanted: Callable[[dict[str, Any]], bool]) -> list[tuple[dict[str, Any], str]]:
    """``(attack task, why)`` for each poison whose last attack job ended without it, when
    ``wanted(task)`` (some cell still needs the poison)."""
    last: dict[str, dict[str, Any]] = {}
    for t in submissions:  # oldest first: the last attack job of a poison wins
        if t.get("kind") == "attack":
            last[str(t.get("poison"))] = t
    out = []
    for t in last.values():
        why = poison_failure(t, queue, cached)
        if why and wanted(t):
            out.append((t, why))
    return out
