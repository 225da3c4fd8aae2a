"""The slurm executor against a real SLURM cluster (``.ci/slurm.sh start``: one node on this machine).

Skipped, with the reason, where no cluster answers; CI sets ``UEBENCH_REQUIRE_SLURM=1`` (``.ci/run``
starts the cluster first), which turns that skip into a failure. The tests run ``bench`` as a user
does, in a subprocess: the tasks on the node import the same code and the test plugins through the
exported environment (PYTHONPATH, UEBENCH_PLUGINS).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from benchmark.config import parse_matrix, resolve
from benchmark.registry import DEFAULT_PLUGINS, get_registry, reset_registry
from benchmark.runner import Runner

REPO = Path(__file__).resolve().parents[2]


def _cluster_problem() -> str | None:
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "SLURM is not installed here (start a one-node cluster with `.ci/slurm.sh start`)"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as e:
        return f"sinfo does not answer ({e})"
    states = out.stdout.split()
    if out.returncode != 0 or not any(s.rstrip("*~#") in ("idle", "mixed", "allocated", "completing") for s in states):
        return f"no SLURM node takes jobs (sinfo: {(out.stdout + out.stderr).strip()[:200]!r}); run `.ci/slurm.sh start`"
    try:
        import submitit  # noqa: F401
    except ImportError:
        return "submitit is not installed (pip install uebench[slurm])"
    return None


_PROBLEM = _cluster_problem()
if _PROBLEM and os.environ.get("UEBENCH_REQUIRE_SLURM") == "1":
    raise RuntimeError(f"UEBENCH_REQUIRE_SLURM=1 but {_PROBLEM}")
# minutes of SLURM jobs: with the slow tests (CI runs them; `-m "not slow"` leaves them out)
pytestmark = [pytest.mark.skipif(_PROBLEM is not None, reason=str(_PROBLEM)), pytest.mark.slow, pytest.mark.slurm]

BASE = {"name": "slurm-smoke", "dataset": {"name": "digits", "subset": 200}, "profile": "smoke", "seeds": [0],
        "victims": ["sl"], "defenses": ["none"]}
FAST = ["-E", "time=10", "-E", "poll=1", "-E", "cpus=1"]

PLUGINS = '''
import os
from benchmark import Attack, Poison, hookimpl
from plugins.victims.sl import SL


class Flaky(SL):
    """sl, except that it raises while the file named by UEBENCH_TEST_FAIL exists."""
    name = "flaky"

    def fit(self, train, ctx, hooks):
        if os.path.exists(os.environ.get("UEBENCH_TEST_FAIL", "/nonexistent")):
            raise RuntimeError("flaky went boom")
        return super().fit(train, ctx, hooks)


class Gated(SL):
    """sl, except that it waits while the file named by UEBENCH_TEST_GATE exists (at most 5 min)."""
    name = "gated"

    def fit(self, train, ctx, hooks):
        import time
        deadline = time.time() + 300
        while os.path.exists(os.environ.get("UEBENCH_TEST_GATE", "/nonexistent")) and time.time() < deadline:
            time.sleep(0.2)
        return super().fit(train, ctx, hooks)


class Greedy(Attack):
    """Breaks its L-inf budget: its poison job fails."""
    name = "greedy"

    def generate(self, train, ctx):
        return Poison(x=(255 - train.x))


@hookimpl
def register_victims():
    return [Flaky, Gated]


@hookimpl
def register_attacks():
    return [Greedy]
'''


@pytest.fixture
def env(tmp_path, monkeypatch):
    """The environment of `bench` and of its tasks on the node: this checkout and the test plugins."""
    mod = tmp_path / "plugmods"
    mod.mkdir()
    (mod / "slurm_test_plugins.py").write_text(PLUGINS)
    plugins = ",".join([*DEFAULT_PLUGINS, "slurm_test_plugins"])
    monkeypatch.syspath_prepend(str(mod))
    monkeypatch.delitem(sys.modules, "slurm_test_plugins", raising=False)
    monkeypatch.setenv("UEBENCH_PLUGINS", plugins)
    reset_registry()
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{mod}", "UEBENCH_PLUGINS": plugins,
            "UEBENCH_TEST_FAIL": str(tmp_path / "fail"), "UEBENCH_TEST_GATE": str(tmp_path / "gate"), "OMP_NUM_THREADS": "1"}


def bench(env, *args, timeout=600):
    return subprocess.run([sys.executable, "-m", "benchmark", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def write(tmp_path, name="m.yaml", **over):
    p = tmp_path / name
    p.write_text(yaml.safe_dump({**BASE, **over}))
    return p


def records(res: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (res / "cells").glob("*.json")}


def inline(tmp_path, **over) -> dict[str, dict]:
    """The same matrix run inline in this process: what the slurm records must equal."""
    res = tmp_path / "inline"
    Runner(resolve(parse_matrix({**BASE, **over}), get_registry()), res, log=lambda m: None, progress=False).run()
    return records(res)


def same_values(a: dict[str, dict], b: dict[str, dict]) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        assert (a[k]["status"], a[k]["metrics"], a[k]["poison_meta"].get("kind")) == \
               (b[k]["status"], b[k]["metrics"], b[k]["poison_meta"].get("kind")), k


def wait_for(cond, timeout=180, every=0.5, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def queue() -> dict[str, str]:
    from benchmark.executors.slurm_queue import my_jobs

    return {j: s for j, (s, _) in (my_jobs() or {}).items()}


def test_smoke_matrix_gives_the_same_records_as_inline(tmp_path, env):
    """Attack jobs first (em's poison), arrays of cells after them, two cells per task: the
    records (values, statuses) equal the inline runner's; a rerun submits nothing."""
    over = {"attacks": ["clean", "em"], "defenses": ["none", "iss-bdr"]}
    m = write(tmp_path, **over)
    res = tmp_path / "res"
    out = bench(env, "run", str(m), "--results", str(res), "--executor", "slurm", "--wait", *FAST, "-E", "cells_per_task=2")
    assert out.returncode == 0, out.stderr
    assert "attack job" in out.stderr and "after job" in out.stderr
    assert "4 cells: 0 already done, 4 computed, 0 n/a, 0 failed" in out.stderr
    got = records(res)
    assert {r["executor"]["name"] for r in got.values()} == {"slurm"}
    assert all(r["provenance"]["threads"] == 1 for r in got.values())
    same_values(got, inline(tmp_path, **over))
    again = bench(env, "run", str(m), "--results", str(res), "--executor", "slurm", *FAST)
    assert again.returncode == 0 and "4 already done" in again.stderr and "submitted" not in again.stderr
    status = bench(env, "status", str(res), str(m))
    assert "4 cells" in status.stdout and "done         4" in status.stdout and "2 cached" in status.stdout


def test_a_failing_task_is_reported_and_rerun_with_retry_failed(tmp_path, env):
    over = {"attacks": ["clean"], "victims": ["flaky", "sl"]}
    m = write(tmp_path, **over)
    res = tmp_path / "res"
    (tmp_path / "fail").touch()
    out = bench(env, "run", str(m), "--results", str(res), "--executor", "slurm", "--wait", *FAST)
    assert out.returncode == 1, out.stderr
    assert "1 computed" in out.stderr and "1 failed" in out.stderr and "flaky went boom" in out.stderr
    status = bench(env, "status", str(res), str(m))
    assert "failed       1" in status.stdout
    assert "clean × flaky × none (seed 0): victim 'flaky' (fit): RuntimeError: flaky went boom" in status.stdout
    (tmp_path / "fail").unlink()
    kept = bench(env, "run", str(m), "--results", str(res), "--executor", "slurm", "--wait", *FAST)
    assert kept.returncode == 1 and "1 failed earlier" in kept.stderr and "submitted" not in kept.stderr
    retry = bench(env, "run", str(m), "--results", str(res), "--executor", "slurm", "--wait", "--retry-failed", *FAST)
    assert retry.returncode == 0, retry.stderr
    assert "1 already done, 1 computed" in retry.stderr
    same_values(records(res), inline(tmp_path, **over))


def test_a_failed_attack_job_fails_its_cells_and_nothing_waits_forever(tmp_path, env):
    m = write(tmp_path, attacks=["greedy"])
    res = tmp_path / "res"
    out = bench(env, "run", str(m), "--results", str(res), "--executor", "slurm", "--wait", *FAST)
    assert out.returncode == 1, out.stderr
    (rec,) = records(res).values()
    assert rec["status"] == "failed" and "broke its budget" in rec["error"]
    jobs = [json.loads(x)["job"] for x in (res / "slurm" / "submissions.jsonl").read_text().splitlines()]
    assert len(jobs) == 2 and all(queue().get(j) in ("FAILED", "CANCELLED", None) for j in jobs)  # cells cancelled


def test_a_cancelled_task_is_reported_then_rerun(tmp_path, env):
    """scancel of a running task: its cell has no record; bench status names it interrupted (with
    its job); the next bench run submits that cell only and it ends as inline's. The cells wait
behind a gate file until the cancelled task has ended: submitit bypasses SIGTERM, so SLURM kills a
cancelled task only 5 s after it (KillWait), and a cell left running could finish first."""
    over = {"attacks": ["clean"], "victims": ["gated"], "defenses": ["none", "iss-bdr"]}
    m = write(tmp_path, **over)
    res = tmp_path / "res"
    gate = Path(env["UEBENCH_TEST_GATE"])
    gate.touch()
    out = bench(env, "run", str(m), "--results", str(res), "--executor", "slurm", *FAST)
    assert out.returncode == 0 and "2 submitted" in out.stderr, out.stderr
    first = json.loads((res / "slurm" / "submissions.jsonl").read_text().splitlines()[-1])  # the cells' array

    def running_with_lock():
        st = bench(env, "status", str(res), str(m), "--json")
        s = json.loads(st.stdout)[0]
        return s["running"] if s["running"] and s["running"][0]["detail"].startswith("slurm job") else None

    (victim, *_) = wait_for(running_with_lock, what="a cell running in a SLURM task")
    job = victim["detail"].split()[2]
    subprocess.run(["scancel", job], check=True)
    wait_for(lambda: queue().get(job) not in ("RUNNING", "COMPLETING", "PENDING"), what=f"job {job} to end")
    status = json.loads(bench(env, "status", str(res), str(m), "--json").stdout)[0]
    gate.unlink()
    pending = {x["key"]: x["detail"] for x in status["pending"]}
    assert victim["key"] in pending and "interrupted" in pending[victim["key"]] and job in pending[victim["key"]], status
    assert first["job"].split("_")[0] in job
    mine = [json.loads(x)["job"] for x in (res / "slurm" / "submissions.jsonl").read_text().splitlines()]
    wait_for(lambda: not [j for j in mine if queue().get(j) in ("PENDING", "RUNNING", "COMPLETING")], what="the other task")
    rerun = bench(env, "run", str(m), "--results", str(res), "--executor", "slurm", "--wait", *FAST)
    assert rerun.returncode == 0, rerun.stderr
    done_before = 2 - len(status["pending"])
    assert f"{done_before} already done, {2 - done_before} computed" in rerun.stderr
    same_values(records(res), inline(tmp_path, **over))


def test_a_requeued_task_keeps_its_finished_cell_and_writes_each_result_once(tmp_path, env):
    """SIGUSR2 (what SLURM sends before a time limit; submitit checkpoints and requeues): the task
    comes back, finds its first cell done (its record untouched), computes the second once."""
    over = {"attacks": ["clean"], "defenses": ["none"], "victims": [{"name": "sl", "label": "short", "params": {"epochs": 2}},
                                                             {"name": "sl", "label": "long", "params": {"epochs": 80}}]}
    m = write(tmp_path, **over)
    res = tmp_path / "res"
    out = bench(env, "run", str(m), "--results", str(res), "--executor", "slurm", *FAST, "-E", "cells_per_task=2")
    assert out.returncode == 0, out.stderr
    task = json.loads((res / "slurm" / "submissions.jsonl").read_text().splitlines()[-1])
    assert task["kind"] == "cells" and len(task["cells"]) == 2
    first_key, second_key = task["cells"]
    path = res / "cells" / f"{first_key}.json"
    wait_for(path.exists, what="the first cell's record")
    before = (path.stat().st_mtime_ns, path.read_text())
    (poison,) = [d / "meta.json" for d in (res / "artifacts").iterdir()]  # made by the task's first cell
    made = poison.stat().st_mtime_ns
    assert queue().get(task["job"]) == "RUNNING"
    subprocess.run(["scancel", "--signal=USR2", task["job"]], check=True)
    wait_for(lambda: queue().get(task["job"]) == "PENDING", what="the requeued task")
    subprocess.run(["scontrol", "update", f"jobid={task['job']}", "starttime=now"], check=True)  # no 2-minute hold
    wait_for(lambda: queue().get(task["job"]) in ("COMPLETED", None), timeout=300, what="the requeued task to finish")
    got = records(res)
    assert (path.stat().st_mtime_ns, path.read_text()) == before  # written once, never again
    assert poison.stat().st_mtime_ns == made and len(list((res / "artifacts").iterdir())) == 1  # the cached poison
    assert got[first_key]["executor"]["restarts"] == 0 and got[second_key]["executor"]["restarts"] == 1
    same_values(got, inline(tmp_path, **over))


def test_an_export_that_keeps_all_gives_the_task_its_environment_and_the_variables_named(tmp_path, env):
    """``sbatch.export=ALL,NAME=value`` (allowed; ``NONE`` is refused) on a real cluster: the task
    imports the test plugins through the exported PYTHONPATH and UEBENCH_PLUGINS, and its flaky
    victim sees the UEBENCH_TEST_FAIL the export sets (a file that exists: it raises), not the
    submitter's (a file that does not)."""
    m = write(tmp_path, attacks=["clean"], victims=["flaky"])
    res = tmp_path / "res"
    (tmp_path / "exported-fail").touch()
    out = bench(env, "run", str(m), "--results", str(res), "--executor", "slurm", "--wait", *FAST,
                "-E", f"sbatch.export=ALL,UEBENCH_TEST_FAIL={tmp_path / 'exported-fail'}")
    assert out.returncode == 1, out.stderr
    assert "1 failed" in out.stderr and "flaky went boom" in out.stderr, out.stderr
    assert f"export=ALL,UEBENCH_TEST_FAIL={tmp_path / 'exported-fail'}" in next((res / "slurm").glob("*_submission.sh")).read_text()


def test_a_job_sbatch_refuses_is_one_line_exit_2(tmp_path, env):
    m = write(tmp_path, attacks=["clean"])
    out = bench(env, "run", str(m), "--results", str(tmp_path / "res"), "--executor", "slurm", "-E", "partition=no-such")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["error: sbatch refused a job: sbatch: error: invalid partition specified: no-such"]
