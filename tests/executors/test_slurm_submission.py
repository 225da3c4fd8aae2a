"""The slurm executor's submission against stand-in ``sbatch``/``squeue`` commands (no cluster):
what it records when interrupted, when squeue does not answer, and how it reports sbatch's refusals.
The behaviour on a real cluster is tests/executors/test_slurm.py's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("submitit")
pytestmark = pytest.mark.slow  # each test starts `bench` a few times (~20 s)

REPO = Path(__file__).resolve().parents[2]

SBATCH = """#!/bin/bash
n=$(( $(cat "$STATE/count" 2>/dev/null || echo 0) + 1 )); echo $n > "$STATE/count"
case "$(cat "$STATE/mode" 2>/dev/null)" in
  refuse) echo "sbatch: unrecognized option '--acount=lab'" >&2; echo 'Try "sbatch --help" for more information' >&2; exit 1;;
  interrupt) if [ $n -ge 2 ]; then kill -INT $PPID; sleep 2; fi;;
esac
echo "Submitted batch job $((100 + n))"
"""
SQUEUE = """#!/bin/bash
if [ "$(cat "$STATE/squeue" 2>/dev/null)" = fail ]; then echo "slurm_load_jobs error: Unable to contact slurm controller" >&2; exit 1; fi
for j in $(cat "$STATE/queued" 2>/dev/null); do echo "$j|PENDING|$(cat "$STATE/reason" 2>/dev/null || echo None)"; done
"""


@pytest.fixture
def fake(tmp_path):
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for name, text in (("sbatch", SBATCH), ("squeue", SQUEUE), ("srun", "#!/bin/bash\nexit 0\n")):
        (bin_ / name).write_text(text)
        (bin_ / name).chmod(0o755)
    state = tmp_path / "state"
    state.mkdir()
    env = {**os.environ, "PATH": f"{bin_}{os.pathsep}{os.environ['PATH']}", "STATE": str(state), "OMP_NUM_THREADS": "1"}
    matrix = tmp_path / "m.yaml"
    matrix.write_text(yaml.safe_dump({"name": "s", "dataset": {"name": "digits", "subset": 100}, "profile": "smoke", "seeds": [0],
                                      "attacks": ["clean", "random-noise"], "victims": ["sl"], "defenses": ["none"]}))
    return env, state, matrix


def _bench(env, *args):
    return subprocess.run([sys.executable, "-m", "benchmark", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def _submitted(res: Path) -> list[str]:
    path = res / "slurm" / "submissions.jsonl"
    return [json.loads(line)["job"] for line in path.read_text().splitlines()] if path.exists() else []


def _sbatch_calls(state: Path) -> int:
    return int((state / "count").read_text()) if (state / "count").exists() else 0


def test_an_interrupted_submission_keeps_the_jobs_sbatch_accepted(tmp_path, fake):
    """Ctrl-C while the second attack's cells are submitted: the first's job is in the submissions
    list (it was only written at the end before), so the rerun does not submit it again."""
    env, state, matrix = fake
    res = tmp_path / "res"
    (state / "mode").write_text("interrupt")
    out = _bench(env, "run", str(matrix), "--results", str(res), "--executor", "slurm")
    assert out.returncode == 130, out.stderr
    assert _submitted(res) == ["101"]
    (state / "mode").write_text("")
    (state / "queued").write_text("101")
    out = _bench(env, "run", str(matrix), "--results", str(res), "--executor", "slurm")
    assert out.returncode == 0, out.stderr
    assert "1 cells are queued or running in earlier SLURM jobs (101): not submitted again" in out.stderr
    assert _submitted(res) == ["101", "103"] and "1 submitted, 1 queued earlier" in out.stderr


def test_without_an_answer_from_squeue_nothing_is_submitted_again(tmp_path, fake):
    env, state, matrix = fake
    res = tmp_path / "res"
    assert _bench(env, "run", str(matrix), "--results", str(res), "--executor", "slurm").returncode == 0
    assert _submitted(res) == ["101", "102"]
    (state / "queued").write_text("101 102")
    (state / "reason").write_text("PartitionConfig")  # asked for more than the partition has: never starts
    again = _bench(env, "run", str(matrix), "--results", str(res), "--executor", "slurm")
    assert again.returncode == 0 and _sbatch_calls(state) == 2
    assert "0 submitted" not in again.stderr and "2 queued earlier" in again.stderr  # it submitted nothing
    assert "2 of those jobs can never start as submitted (job 101: PartitionConfig)" in again.stderr
    (state / "squeue").write_text("fail")
    out = _bench(env, "run", str(matrix), "--results", str(res), "--executor", "slurm")
    assert out.returncode == 2 and _sbatch_calls(state) == 2, out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("error: squeue does not answer, so which cells earlier SLURM jobs")
    # once every cell is done (here inline), a rerun has nothing to submit and asks no queue
    assert _bench(env, "run", str(matrix), "--results", str(res), "--quiet").returncode == 0
    done = _bench(env, "run", str(matrix), "--results", str(res), "--executor", "slurm")
    assert done.returncode == 0 and "2 already done" in done.stderr and _sbatch_calls(state) == 2, done.stderr


def test_a_misspelled_sbatch_option_is_named(tmp_path, fake):
    env, state, matrix = fake
    (state / "mode").write_text("refuse")
    out = _bench(env, "run", str(matrix), "--results", str(tmp_path / "res"), "--executor", "slurm", "-E", "sbatch.acount=lab")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == "error: sbatch refused a job: sbatch: unrecognized option '--acount=lab'"


def test_the_submissions_list_stays_in_results_whatever_the_folder(tmp_path, fake):
    """`folder` holds submitit's files and logs; the list `bench status` and reruns read stays in RESULTS/slurm."""
    env, _state, matrix = fake
    res = tmp_path / "res"
    out = _bench(env, "run", str(matrix), "--results", str(res), "--executor", "slurm", "-E", f"folder={tmp_path / 'elsewhere'}")
    assert out.returncode == 0, out.stderr
    assert _submitted(res) == ["101", "102"] and not (tmp_path / "elsewhere" / "submissions.jsonl").exists()
