"""Faults on one machine: `bench run` killed (SIGKILL) at random points, poison generation
included, then rerun; damaged records and poisons; locks left by killed processes.

Every cell ends exactly once (a finished record is never rewritten) with the numbers of an
uninterrupted run. Digits at the smoke profile: each test takes well under a minute.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
MATRIX = {
    "name": "faults",
    "dataset": {"name": "digits", "subset": 300},
    "profile": "smoke",
    "seeds": [0, 1],
    # EM's generation made long enough (~2-3 s, never stopping early) that a kill 0.05-0.4 s after
    # it starts lands inside it on a fast machine too (the smoke default, ~1 s, did not on CI).
    "attacks": ["clean", {"name": "em", "params": {"max_outer": 6, "steps": 20, "stop_accuracy": 1.0}}],
    "victims": [{"name": "sl", "params": {"epochs": 6}}],
    "defenses": ["none", "iss-bdr"],
}
CELLS = 8


class Bench:
    """`bench run` in a subprocess, its stderr read line by line (to kill it at a chosen moment)."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "benchmark", *args], cwd=REPO, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_for_line(self, text: str, timeout: float = 120) -> bool:
        deadline = time.time() + timeout
        while time.time() < deadline and self.proc.poll() is None:
            if any(text in ln for ln in self.lines):
                return True
            time.sleep(0.05)
        return any(text in ln for ln in self.lines)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)
        self.reader.join(timeout=10)

    def finish(self, timeout: float = 300) -> tuple[int, str]:
        self.proc.wait(timeout=timeout)
        self.reader.join(timeout=10)
        return self.proc.returncode, "".join(self.lines)


def records(res: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (res / "cells").glob("*.json")} if (res / "cells").is_dir() else {}


def poison_digests(res: Path) -> dict[str, str]:
    return {d.name: json.loads((d / "meta.json").read_text())["sha256"] for d in (res / "artifacts").iterdir()
            if (d / "meta.json").exists()}


def run_clean(tmp_path: Path, matrix: Path) -> Path:
    ref = tmp_path / "reference"
    code, err = Bench("run", str(matrix), "--results", str(ref), "--quiet").finish()
    assert code == 0, err
    return ref


def test_sigkill_at_random_points_then_rerun_ends_every_cell_once_with_the_same_numbers(tmp_path):
    matrix = tmp_path / "m.yaml"
    matrix.write_text(yaml.safe_dump(MATRIX))
    ref = run_clean(tmp_path, matrix)
    want = records(ref)
    assert len(want) == CELLS
    res = tmp_path / "res"
    rng = random.Random(16)
    seen: dict[str, str] = {}  # key -> the record's text when first seen: it must never change
    kills = 0
    for attempt in range(6):
        b = Bench("run", str(matrix), "--results", str(res), "--quiet")
        if attempt == 1:  # in the middle of the EM poison's generation
            assert b.wait_for_line("generating poison em"), "".join(b.lines)
            time.sleep(rng.uniform(0.05, 0.4))
            during_poison = b.proc.poll() is None and not any("poison em done" in ln for ln in b.lines)
        else:
            time.sleep(rng.uniform(1.0, 6.0))
        finished = b.proc.poll() is not None  # it finished before the signal: nothing left to interrupt
        if not finished:
            b.kill()
            kills += 1
            if attempt == 1:
                assert during_poison, "the kill was meant to land during the EM generation: " + "".join(b.lines)
        now = {k: (res / "cells" / f"{k}.json").read_text() for k in records(res)}
        for key, text in seen.items():
            assert now[key] == text, f"cell {key} was written again after it had finished"
        seen.update({k: t for k, t in now.items() if k not in seen})
        if finished:
            break
    assert kills >= 3
    code, err = Bench("run", str(matrix), "--results", str(res), "--quiet").finish()
    assert code == 0, err
    assert f"{len(seen)} already done" in err or not seen
    got = records(res)
    assert sorted(got) == sorted(want)
    for key, text in seen.items():  # finished before a kill: untouched by every later run
        assert (res / "cells" / f"{key}.json").read_text() == text
    for key, rec in got.items():
        assert (rec["status"], rec["metrics"]) == (want[key]["status"], want[key]["metrics"]), rec["attack"]
    assert poison_digests(res) == poison_digests(ref)


def test_damaged_records_and_poisons_are_detected_and_recomputed(tmp_path):
    matrix = tmp_path / "m.yaml"
    matrix.write_text(yaml.safe_dump({**MATRIX, "seeds": [0]}))
    res = run_clean(tmp_path, matrix)
    want, digests = records(res), poison_digests(res)
    cells = sorted((res / "cells").glob("*.json"))
    cells[0].write_text(cells[0].read_text()[: len(cells[0].read_text()) // 2])  # truncated mid-write
    raw = bytearray(cells[1].read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # a flipped byte
    cells[1].write_bytes(bytes(raw))
    cells[2].write_text(json.dumps({"status": "ok", "metrics": {"accuracy": 1.0}}))  # JSON, but not a record
    em = next(d for d in (res / "artifacts").iterdir() if json.loads((d / "meta.json").read_text())["spec"]["attack"]["name"] == "em")
    blob = (em / "data.pt").read_bytes()
    (em / "data.pt").write_bytes(blob[: len(blob) // 3])  # a truncated poison
    damaged = {p.stem for p in cells[:3]}
    code, err = Bench("run", str(matrix), "--results", str(res), "--quiet").finish()
    assert code == 0, err
    assert "moving it aside and recomputing" in err
    assert f"{CELLS // 2 - 3} already done, 3 computed" in err
    got = records(res)
    assert sorted(got) == sorted(want)
    for key in damaged:
        assert got[key]["metrics"] == want[key]["metrics"] and got[key]["started"] != want[key]["started"]
    assert (em / "data.pt.corrupt").exists()
    assert poison_digests(res) == digests  # regenerated, byte for byte


def test_locks_of_killed_runners_never_block_a_rerun(tmp_path):
    """SIGKILL while a cell is being computed (its lock taken): the rerun takes that lock at once,
    and `bench status` names the cell as interrupted, with the pid that held it."""
    matrix = tmp_path / "m.yaml"
    matrix.write_text(yaml.safe_dump({**MATRIX, "attacks": ["clean"], "seeds": [0],
                                      "victims": [{"name": "sl", "params": {"epochs": 60}}]}))
    res = tmp_path / "res"
    b = Bench("run", str(matrix), "--results", str(res), "--quiet")
    lock_dir = res / "locks"
    deadline = time.time() + 120
    while time.time() < deadline and not list(lock_dir.glob("cell-*.lock")):
        time.sleep(0.05)
    time.sleep(0.5)
    assert b.proc.poll() is None, "".join(b.lines)
    pid = b.proc.pid
    b.kill()
    out = subprocess.run([sys.executable, "-m", "benchmark", "status", str(res), str(matrix)], cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)
    assert "running      0" in out.stdout and f"interrupted: started by pid {pid}" in out.stdout, out.stdout
    t0 = time.time()
    code, err = Bench("run", str(matrix), "--results", str(res), "--quiet").finish()
    assert code == 0, err
    assert len(records(res)) == 2 and time.time() - t0 < 120
