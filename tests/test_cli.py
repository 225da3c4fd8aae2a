from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def bench(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "benchmark", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def test_smoke_matrix_end_to_end(tmp_path):
    res = tmp_path / "results"
    p = bench("run", "examples/smoke.yaml", "--profile", "smoke", "--results", str(res))
    assert p.returncode == 0, p.stderr
    assert "0 failed" in p.stderr and "leaderboard:" in p.stderr
    board = (res / "LEADERBOARD.md").read_text()
    assert "digits — profile `smoke`" in board and "| clean" in board and "| em " in board
    again = bench("run", "examples/smoke.yaml", "--profile", "smoke", "--results", str(res))
    assert "0 computed" in again.stderr
    lb = bench("leaderboard", str(res), "--out", str(tmp_path / "LB.md"))
    assert lb.returncode == 0 and (tmp_path / "LB.md").exists()


def test_dry_run_lists_jobs_and_cells(tmp_path):
    p = bench("run", "examples/smoke.yaml", "--dry-run", "--results", str(tmp_path))
    assert p.returncode == 0
    assert "4 attack jobs, 24 cells" in p.stdout and "to generate" in p.stdout and "pending" in p.stdout
    assert not (tmp_path / "cells").exists()


def test_user_errors_exit_2_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: digits\nattacks: [emm]\nvictims: [sl]\n")
    p = bench("run", str(bad))
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip() == f"error: {bad}: attacks[0].name: unknown attack 'emm'; did you mean 'em', 'em-class'? (known attacks: clean, em, em-class, random-noise)" or "did you mean 'em'" in p.stderr
    p = bench("run", str(tmp_path / "missing.yaml"))
    assert p.returncode == 2 and "does not exist" in p.stderr and "Traceback" not in p.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("dataset: {name: npz, path: /no/such.npz}\nattacks: [clean]\nvictims: [sl]\nprofile: smoke\n")
    p = bench("run", str(broken), "--results", str(tmp_path / "r"))
    assert p.returncode == 2 and "npz: file '/no/such.npz' does not exist" in p.stderr and "Traceback" not in p.stderr
    p = bench("leaderboard", str(tmp_path / "nothing"))
    assert p.returncode == 2 and "holds no results" in p.stderr


def test_plugins_listing():
    p = bench("plugins", "--json")
    rows = json.loads(p.stdout)
    em = next(r for r in rows if r["kind"] == "attack" and r["name"] == "em")
    assert em["package"] == "uebench" and em["usable"] and em["version"]
    table = bench("plugins").stdout
    assert "kind" in table and "random-noise" in table


def test_multi_document_matrix_runs_every_document_into_one_results_dir(tmp_path):
    m = tmp_path / "m.yaml"
    m.write_text(
        "name: a\ndataset: {name: digits, subset: 100}\nprofile: smoke\nattacks: [clean]\nvictims: [sl]\n"
        "---\n"
        "name: b\ndataset: {name: digits, subset: 100}\nprofile: smoke\nattacks: [clean, random-noise]\nvictims: [sl]\ndefenses: [iss-bdr]\n"
    )
    dry = bench("run", str(m), "--dry-run", "--results", str(tmp_path / "r"))
    assert dry.returncode == 0 and "document 1 of 2: matrix 'a': 1 attack jobs, 1 cells" in dry.stdout
    assert "document 2 of 2: matrix 'b': 2 attack jobs, 2 cells" in dry.stdout
    p = bench("run", str(m), "--results", str(tmp_path / "r"), "--quiet")
    assert p.returncode == 0, p.stderr
    assert "all documents: 3 cells: 0 already done, 3 computed" in p.stderr
    assert len(list((tmp_path / "r" / "cells").glob("*.json"))) == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text(m.read_text() + "---\nname: c\ndataset: {name: npz, path: /no/such.npz}\nattacks: [clean]\nvictims: [sl]\n")
    p = bench("run", str(bad), "--results", str(tmp_path / "r2"))
    assert p.returncode == 2 and f"{bad}, document 3: npz: file '/no/such.npz' does not exist" in p.stderr
    assert not (tmp_path / "r2" / "cells").exists()  # nothing ran: every document is checked first
