"""The slurm executor's submission against stand-in ``sbatch``/``squeue`` commands (no cluster):
what it records when interrupted (Ctrl-C, SIGHUP), when squeue does not answer, with two submitters
at once, how it reports sbatch's refusals and a poison job that failed. The behaviour on a real
cluster is tests/executors/test_slurm.py's."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
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
  hangup) if [ $n -ge 2 ]; then kill -HUP $PPID; sleep 2; fi;;
esac
if [ -e "$STATE/slow" ]; then sleep "$(cat "$STATE/slow")"; fi
if [ -e "$STATE/track" ]; then  # the job (each task of an array) is pending in squeue from now on
  last=$(sed -n 's/^#SBATCH --array=0-\\([0-9]*\\).*/\\1/p' "${@: -1}")
  if [ -n "$last" ]; then for i in $(seq 0 "$last"); do echo "$((100 + n))_$i" >> "$STATE/queued"; done
  else echo "$((100 + n))" >> "$STATE/queued"; fi
fi
echo "Submitted batch job $((100 + n))"
"""
SQUEUE = """#!/bin/bash
if [ "$(cat "$STATE/squeue" 2>/dev/null)" = fail ]; then echo "slurm_load_jobs error: Unable to contact slurm controller" >&2; exit 1; fi
for j in $(cat "$STATE/queued" 2>/dev/null); do echo "$j|PENDING|$(cat "$STATE/reason" 2>/dev/null || echo None)"; done
cat "$STATE/ended" 2>/dev/null || true
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


#: runs the command after it with SIGHUP at its default, whatever this test process inherited (under
#: ``nohup``, as CI may run, it is ignored, and ignoring it is what ``bench`` keeps: nohup's choice)
HUP_DEFAULT = [sys.executable, "-c", "import os, signal, sys; signal.signal(signal.SIGHUP, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])"]


def _bench(env, *args):
    return subprocess.run([*HUP_DEFAULT, sys.executable, "-m", "benchmark", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)


def _submitted(res: Path) -> list[str]:
    path = res / "slurm" / "submissions.jsonl"
    return [json.loads(line)["job"] for line in path.read_text().splitlines()] if path.exists() else []


def _sbatch_calls(state: Path) -> int:
    return int((state / "count").read_text()) if (state / "count").exists() else 0


@pytest.mark.parametrize("how", ["interrupt", "hangup"])
def test_an_interrupted_submission_keeps_the_jobs_sbatch_accepted(tmp_path, fake, how):
    """Ctrl-C (or SIGHUP: the terminal closed) while sbatch submits the second attack's cells: the
    first's job is in the submissions list (it was only written at the end before), and so is the
    second, which sbatch accepted while the signal waited (it was lost, then submitted twice); the
    run stops with one line, exit 130 "interrupted" (SIGHUP: 129 "hung up (SIGHUP)", 128 + the signal;
    it killed the run silently before), and a rerun submits nothing twice."""
    env, state, matrix = fake
    res = tmp_path / "res"
    (state / "mode").write_text(how)
    out = _bench(env, "run", str(matrix), "--results", str(res), "--executor", "slurm")
    code, said = (130, "interrupted") if how == "interrupt" else (129, "hung up (SIGHUP)")
    assert out.returncode == code, (out.returncode, out.stderr)
    assert _submitted(res) == ["101", "102"] and _sbatch_calls(state) == 2
    assert out.stderr.strip().splitlines()[-1].startswith(f"{said}: every finished cell is saved in"), out.stderr
    assert "Traceback" not in out.stderr
    (state / "mode").write_text("")
    (state / "queued").write_text("101")  # 102 ran meanwhile and ended without a result: submitted again
    out = _bench(env, "run", str(matrix), "--results", str(res), "--executor", "slurm")
    assert out.returncode == 0, out.stderr
    assert "1 cells are queued or running in earlier SLURM jobs (101): not submitted again" in out.stderr
    assert _submitted(res) == ["101", "102", "103"] and "1 submitted, 1 queued earlier" in out.stderr


def test_a_hangup_while_waiting_stops_the_wait_with_one_line(tmp_path, fake):
    """SIGHUP during --wait: the jobs go on (they are in the submissions list), one line, exit 129
    (128 + SIGHUP, as SIGTERM exits 143; not Ctrl-C's 130)."""
    env, state, matrix = fake
    res = tmp_path / "res"
    (state / "track").touch()  # the submitted jobs stay pending: --wait waits
    proc = subprocess.Popen([*HUP_DEFAULT, sys.executable, "-m", "benchmark", "run", str(matrix), "--results", str(res), "--executor",
                             "slurm", "--wait", "-E", "poll=0.2"], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("waiting for 2 SLURM jobs"):
            break
    time.sleep(0.5)
    proc.send_signal(signal.SIGHUP)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 129, "".join(lines) + rest
    said = [line for line in rest.splitlines() if line.strip() and not line.startswith("  ")]  # not the progress lines
    assert len(said) == 1 and said[0].startswith("hung up (SIGHUP): every finished cell is saved in"), rest
    assert _submitted(res) == ["101", "102"] and "Traceback" not in rest


@pytest.mark.skipif(shutil.which("setsid") is None, reason="needs util-linux's setsid")
def test_closing_the_terminal_while_waiting_keeps_the_jobs_and_exits_129(tmp_path, fake):
    """The terminal itself closes (SIGHUP, then every write to it fails with EIO): bench ends as on
    Ctrl-C but exits 129 (128 + SIGHUP), not with a traceback (exit 1) or killed by the signal."""
    import pty

    env, state, matrix = fake
    res = tmp_path / "res"
    (state / "track").touch()
    master, slave = pty.openpty()
    tty = os.ttyname(slave)
    cmd = (f"exec {shlex.quote(sys.executable)} -m benchmark run {shlex.quote(str(matrix))} --results {shlex.quote(str(res))} "
           f"--executor slurm --wait -E poll=0.2 <>{tty} >&0 2>&0")  # bash, a session leader, makes the pty its terminal
    proc = subprocess.Popen(["setsid", *HUP_DEFAULT, "bash", "-c", cmd], cwd=REPO, env=env)
    said = b""
    try:
        deadline = time.time() + 120
        while b"waiting for 2 SLURM jobs" not in said and time.time() < deadline:
            said += os.read(master, 4096)
    finally:
        os.close(slave)
    time.sleep(0.5)
    os.close(master)  # the terminal closes
    assert proc.wait(timeout=60) == 129, said
    assert _submitted(res) == ["101", "102"]


def test_two_submitters_at_once_submit_each_cell_once(tmp_path, fake):
    """Two `bench run --executor slurm` on one results directory at the same moment: they take
    turns (locks/slurm-submit.lock); the second finds the first's jobs in squeue and submits none."""
    env, state, matrix = fake
    matrix.write_text(yaml.safe_dump({"name": "s", "dataset": {"name": "digits", "subset": 100}, "profile": "smoke",
                                      "seeds": [0, 1], "attacks": ["clean", "random-noise"], "victims": ["sl"],
                                      "defenses": ["none"]}))
    res = tmp_path / "res"
    (state / "track").touch()
    (state / "slow").write_text("1")  # each sbatch takes a second: the two runs overlap
    cmd = [sys.executable, "-m", "benchmark", "run", str(matrix), "--results", str(res), "--executor", "slurm"]
    procs = [subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert _sbatch_calls(state) == 2  # one array per attack, each submitted once
    tasks = [json.loads(line) for line in (res / "slurm" / "submissions.jsonl").read_text().splitlines()]
    cells = [k for t in tasks for k in t["cells"]]
    assert len(cells) == 4 and len(set(cells)) == 4
    assert sorted("4 submitted" in o for o in outs) == [False, True], outs
    assert any("4 cells are queued or running in earlier SLURM jobs" in o and "4 queued earlier" in o for o in outs), outs


def test_a_failed_poison_job_is_named_with_its_log_by_wait_and_status(tmp_path, fake):
    """A poison job killed (kill -9, out of memory, read-only locks) records nothing in its cells,
    and SLURM cancels the cells' task before it runs (no log). --wait's summary and `bench status`
    name the poison job and its log (they named the cancelled task's log, or nothing)."""
    env, state, matrix = fake
    matrix.write_text(yaml.safe_dump({"name": "s", "dataset": {"name": "digits", "subset": 100}, "profile": "smoke",
                                      "seeds": [0], "attacks": ["em"], "victims": ["sl"], "defenses": ["none"]}))
    res = tmp_path / "res"
    log = res / "slurm" / "101_0_log.err"  # what submitit's log of the killed poison job says
    log.parent.mkdir(parents=True)
    log.write_text("generating poison em\nsrun: error: vm: task 0: Killed\nsrun: Force Terminated StepId=101.0\n")
    (state / "ended").write_text("101|FAILED|NonZeroExitCode\n102|CANCELLED|DependencyNeverSatisfied\n")
    out = _bench(env, "run", str(matrix), "--results", str(res), "--executor", "slurm", "--wait", "-E", "poll=0.2")
    assert out.returncode == 1, out.stderr
    assert "attack job 101: poison em" in out.stderr and "cells of em: 1 in job 102, after job 101" in out.stderr
    said = f"its poison job 101 (em) ended FAILED without its poison (log {log}: srun: error: vm: task 0: Killed); " \
           "SLURM cancelled its task 102, which never ran"
    assert f"FAILED em × sl × none (seed 0): no result ({said})" in out.stderr, out.stderr
    assert "102_0_log.err" not in out.stderr
    status = _bench(env, "status", str(res), str(matrix))
    assert status.returncode == 0, status.stderr
    assert f"em × sl × none (seed 0): not started: {said}" in status.stdout, status.stdout
    job = f"poison job 101 (em): ended FAILED without its poison (log {log}: srun: error: vm: task 0: Killed)"
    assert f"  failed SLURM jobs 1\n    {job}" in status.stdout
    bare = _bench(env, "status", str(res))  # without the matrix: from the submissions list
    assert f"  failed SLURM jobs 1\n    {job}" in bare.stdout, bare.stdout
    (state / "ended").write_text("")  # slurmctld forgot the jobs: still named, without a state
    assert "poison job 101 (em): ended without its poison" in _bench(env, "status", str(res)).stdout


def test_a_cancelled_task_that_never_ran_is_said_so(tmp_path, fake):
    """A cells task scancel'ed while pending: no log to point at; --wait says it was cancelled."""
    env, state, matrix = fake
    (state / "ended").write_text("101|COMPLETED|None\n102|CANCELLED|None\n")  # 101 ran (not here: no record)
    res = tmp_path / "res"
    out = _bench(env, "run", str(matrix), "--results", str(res), "--executor", "slurm", "--wait", "-E", "poll=0.2")
    assert out.returncode == 1, out.stderr
    assert "random-noise × sl × none (seed 0): no result (its SLURM task 102 was cancelled before it started (no log))" \
        in out.stderr


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
