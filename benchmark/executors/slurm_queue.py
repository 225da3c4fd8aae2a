"""What the ``slurm`` executor knows of the queue: this user's jobs as ``squeue`` lists them, and
the tasks a results directory's submissions made (``RESULTS/slurm/submissions.jsonl``). Used by the
executor and by ``bench status``; never ``sacct``, so clusters without accounting work too."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: SLURM job states after which a job will not run again (anything else is still in the queue).
ENDED = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
                   "DEADLINE", "PREEMPTED", "REVOKED", "SPECIAL_EXIT"})
SUBMISSIONS = "submissions.jsonl"


def my_jobs(log: Callable[[str], None] | None = None) -> dict[str, tuple[str, str]] | None:
    """``{job id: (state, reason)}`` of this user's jobs that slurmctld still knows (array tasks
    one by one: ``123_4``), or ``None`` when ``squeue`` is missing or does not answer."""
    import getpass

    if shutil.which("squeue") is None:
        return None
    cmd = ["squeue", "-h", "--array", "-t", "all", f"--user={getpass.getuser()}", "-o", "%i|%T|%r"]
    for attempt in range(3):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.SubprocessError) as e:
            out = None
            err = str(e)
        else:
            assert out is not None  # the run above returned (mypy keeps a former attempt's None)
            if out.returncode == 0:
                break
            err = out.stderr.strip()
        if attempt < 2:
            time.sleep(2)
    else:
        if log:
            log(f"squeue does not answer ({err[:200]})")
        return None
    assert out is not None  # the loop breaks on a run that answered only
    jobs: dict[str, tuple[str, str]] = {}
    for line in out.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 3:
            continue
        jid, state, reason = parts[0], parts[1].split()[0].rstrip("+"), parts[2]
        m = re.fullmatch(r"(\d+)_\[([^\]%]*)(%\d+)?\]", jid)
        if m:  # a pending range of array tasks (squeue prints them so even with --array sometimes)
            for part in m.group(2).split(","):
                lo, _, hi = part.partition("-")
                for i in range(int(lo), int(hi or lo) + 1):
                    jobs[f"{m.group(1)}_{i}"] = (state, reason)
        else:
            jobs[jid] = (state, reason)
    return jobs


def read_submissions(folder: Path) -> list[dict[str, Any]]:
    """Every task this results directory's SLURM submissions made, oldest first (one JSON line
    each: ``job``, ``kind`` attack|cells, ``matrix``, ``poison``, ``cells``, ``log``, ``time``)."""
    path = folder / SUBMISSIONS
    out = []
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            item = json.loads(line)
        except ValueError:
            continue  # a line cut by a crash mid-write
        if isinstance(item, dict) and isinstance(item.get("job"), str):
            out.append(item)
    return out


def active_tasks(folder: Path, queue: dict[str, tuple[str, str]] | None) -> list[dict[str, Any]]:
    """The submitted tasks still in the queue (pending, running, requeued...), newest first."""
    if not queue:
        return []
    return [t for t in reversed(read_submissions(folder)) if t["job"] in queue and queue[t["job"]][0] not in ENDED]
