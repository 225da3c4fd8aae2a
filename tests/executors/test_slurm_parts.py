"""The slurm executor's parts that need no SLURM: which ``sbatch.*`` keys are refused (the executor
sets those options itself), how a job's end is explained from the submissions list and its log, and
how signals are held while sbatch submits. The whole submission: test_slurm_submission.py (stand-in
sbatch) and test_slurm.py (a real cluster)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from benchmark.executors.slurm import SlurmParams
from benchmark.executors.slurm_outcome import failed_poison_jobs, log_hint, no_result
from benchmark.executors.slurm_signals import HungUp, Signals

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("sbatch", "said"), [
    ({"time": 30}, "sbatch.time sets --time, which the executor sets from its own 'time': give time instead of sbatch.time"),
    ({"t": 30}, "sbatch.t sets --time"),
    ({"part": "gpu"}, "sbatch.part sets --partition, which the executor sets from its own 'partition'"),
    ({"job-name": "x"}, "sbatch.job-name sets --job-name, which the executor sets from its own 'job_name'"),
    ({"job_name": "x"}, "sbatch.job_name sets --job-name"),
    ({"cpus-per-task": 4}, "from its own 'cpus'"),
    ({"gpus-per-node": 1}, "from its own 'gpus'"),
    ({"gres": 1, "gpus": 2}, "sbatch.gpus sets --gpus, which the executor sets from its own 'gpus'"),
    ({"output": "x.log"}, "from its own 'folder'"),
    ({"signal": "USR1@60"}, "from its own 'signal_delay_s'"),
    ({"array": "0-3"}, "sbatch.array sets --array, which the executor sets itself: the executor makes each attack's cells"),
    ({"dependency": "afterok:1"}, "sets --dependency, which the executor sets itself: each cells array waits"),
    ({"open-mode": "truncate"}, "a requeued task appends to its log"),
    ({"ntasks": 2}, "every task is one process on one node"),
    ({"no-requeue": True}, ("sbatch.no-requeue is refused: the executor resumes a task that reaches its time limit or is "
                            "preempted by requeueing it (scontrol requeue), which SLURM refuses for a --no-requeue job")),
    ({"no_requeue": True}, "sbatch.no_requeue is refused"),
    ({"requeue": False}, "sbatch.requeue is refused: the executor resumes"),
])
def test_an_sbatch_key_the_executor_sets_is_refused_naming_both(sbatch, said):
    gpus = 1 if any(k.startswith("gpus") for k in sbatch) else 0  # the executor sets GPUs only when it asks for some
    with pytest.raises(ValidationError) as e:
        SlurmParams(sbatch=sbatch, gpus=gpus)
    assert said in str(e.value)


def test_a_typed_gpu_request_passes_when_the_executor_asks_for_none():
    """The integer ``gpus`` cannot name a GPU type: with gpus 0 the executor sets no GPU option, so
    sbatch's own (``a100:2``) is the only one; next to gpus > 0 it is refused with the way out."""
    assert SlurmParams(sbatch={"gpus-per-node": "a100:2"}).sbatch == {"gpus-per-node": "a100:2"}
    with pytest.raises(ValidationError, match=r"or for a GPU type set gpus 0 and keep sbatch.gpus-per-node \(e.g. a100:2\)"):
        SlurmParams(gpus=2, sbatch={"gpus-per-node": "a100:2"})


@pytest.mark.parametrize("gres", ["gpu:1", "gpu:a100:2", "GPU:2", "tmpdisk:10,gpu:1", "gres/gpu:1"])
def test_a_gpu_gres_next_to_gpus_is_refused_pointing_to_gpus(gres):
    """``gres: gpu:...`` next to gpus > 0 was a second GPU request beside --gpus-per-node (SLURM
    refuses the pair or asks twice): refused in one line pointing to ``gpus``; with gpus 0 it is the
    only GPU request (a typed one) and passes, as ``gpus-per-node: a100:2`` does."""
    with pytest.raises(ValidationError) as e:
        SlurmParams(gpus=1, sbatch={"gres": gres})
    said = str(e.value)
    assert (f"sbatch.gres={gres} asks for GPUs, which the executor asks for from its own 'gpus' (1, --gpus-per-node): "
            "give gpus instead, or for a GPU type set gpus 0 and keep sbatch.gres") in said
    assert SlurmParams(sbatch={"gres": gres}).sbatch == {"gres": gres}


@pytest.mark.parametrize("gres", ["tmpdisk:10", "nvme:1,tmpdisk:10", "gpumem:1", "none"])
def test_a_gres_that_asks_for_no_gpu_passes_next_to_gpus(gres):
    assert SlurmParams(gpus=2, sbatch={"gres": gres}).sbatch == {"gres": gres}


@pytest.mark.parametrize("value", ["NONE", "NIL", "none", "PATH,HOME", "UEBENCH_DATA", "NONE,FOO=bar", True])
def test_an_export_without_all_is_refused_naming_the_key(value):
    """``export: NONE`` gave the job none of the submitting environment, a list of names only those:
    the tasks found neither this Python environment nor the UEBENCH_* variables. Refused in one line."""
    with pytest.raises(ValidationError) as e:
        SlurmParams(sbatch={"account": "lab", "export": value})
    assert (f"sbatch.export={value} is refused: without ALL the job gets only the variables named (none with NONE or NIL, "
            "and a bare export is no value), not the rest of the submitting environment, which the tasks need (this Python "
            "environment's PATH, PYTHONPATH, UEBENCH_DATA, UEBENCH_PLUGINS); give ALL or ALL,NAME=value") in str(e.value)


@pytest.mark.parametrize("value", ["ALL", "all", "ALL,FOO=bar", "ALL,UEBENCH_DATA=/data,OMP_NUM_THREADS=1", "FOO=1,ALL"])
def test_an_export_that_keeps_all_passes(value):
    assert SlurmParams(sbatch={"export": value}).sbatch == {"export": value}


def test_an_sbatch_export_without_all_in_the_environment_is_refused_before_submitting(tmp_path, monkeypatch):
    """SBATCH_EXPORT overrides the job script's --export: NONE there would leave the tasks without
    their environment as ``sbatch.export=NONE`` would."""
    from benchmark.config import parse_matrix, resolve
    from benchmark.errors import UserError
    from benchmark.executor import RunOptions
    from benchmark.executors.slurm import Submission
    from benchmark.registry import get_registry
    from tests.test_runner import BASE

    for cmd in ("sbatch", "squeue", "srun"):  # present: the check that names missing commands passes
        (tmp_path / cmd).write_text("#!/bin/sh\nexit 1\n")
        (tmp_path / cmd).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    sub = Submission(SlurmParams(), resolve(parse_matrix(BASE), get_registry()), tmp_path / "res", RunOptions())
    monkeypatch.setenv("SBATCH_EXPORT", "NONE")
    with pytest.raises(UserError, match=r"^SBATCH_EXPORT=NONE \(in this environment\) is refused: without ALL .* \(or unset "
                                        r"SBATCH_EXPORT\)$"):
        sub._check()
    monkeypatch.setenv("SBATCH_EXPORT", "ALL,FOO=1")
    sub._check()


def test_a_second_memory_option_is_refused_only_next_to_mem():
    assert SlurmParams(sbatch={"mem-per-cpu": "2G"}).sbatch == {"mem-per-cpu": "2G"}
    with pytest.raises(ValidationError, match="sbatch.mem-per-cpu and the executor's 'mem' .--mem. both set the memory"):
        SlurmParams(mem="16G", sbatch={"mem-per-cpu": "2G"})


def test_other_sbatch_keys_pass():
    ok = {"account": "lab", "qos": "high", "constraint": "a100", "time-min": 60, "gres": "gpu:a100:1", "requeue": True,
          "exclude": "node1", "mail-type": "END", "comment": "x", "exclusive": True}
    assert SlurmParams(sbatch=ok).sbatch == ok


def test_the_jobs_ask_for_requeue_and_keep_the_users_options(tmp_path):
    from benchmark.config import parse_matrix, resolve
    from benchmark.executor import RunOptions
    from benchmark.executors.slurm import Submission
    from benchmark.registry import get_registry
    from tests.test_runner import BASE

    r = resolve(parse_matrix(BASE), get_registry())
    sub = Submission(SlurmParams(sbatch={"account": "lab"}), r, tmp_path, RunOptions())
    extra = sub._parameters("n", "afterok:1")["additional_parameters"]
    assert extra == {"account": "lab", "requeue": True, "kill-on-invalid-dep": "yes"}


@pytest.mark.parametrize(("key", "said"), [
    ("sbatch.time=30", ("error: m.yaml: executor.params: sbatch.time sets --time, which the executor sets from its own "
                        "'time': give time instead of sbatch.time")),
    ("sbatch.no-requeue=true", "error: m.yaml: executor.params: sbatch.no-requeue is refused: the executor resumes"),
])
def test_a_refused_sbatch_key_is_one_line_exit_2(tmp_path, key, said):
    (tmp_path / "m.yaml").write_text("name: t\ndataset: {name: digits, subset: 100}\nprofile: smoke\nattacks: [clean]\n"
                                     "victims: [sl]\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "benchmark", "run", "m.yaml", "--executor", "slurm", "-E", key], cwd=tmp_path,
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stderr.startswith(said), out.stderr


@pytest.mark.parametrize(("keys", "said"), [
    (["sbatch.export=NONE"], ("error: -E sbatch.export=NONE (--executor-param): executor.params: sbatch.export=NONE is "
                              "refused: without ALL the job gets only the variables named")),
    (["gpus=1", "sbatch.gres=gpu:a100:1"], ("error: -E sbatch.gres=gpu:a100:1 (--executor-param): executor.params: "
                                            "sbatch.gres=gpu:a100:1 asks for GPUs, which the executor asks for from its own "
                                            "'gpus' (1, --gpus-per-node): give gpus instead")),
])
def test_a_refused_export_or_gpu_gres_is_one_line_exit_2(tmp_path, keys, said):
    """One line, exit 2, blaming the ``-E`` key that was refused (the matrix file has no executor)."""
    (tmp_path / "m.yaml").write_text("name: t\ndataset: {name: digits, subset: 100}\nprofile: smoke\nattacks: [clean]\n"
                                     "victims: [sl]\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    given = [a for k in keys for a in ("-E", k)]
    out = subprocess.run([sys.executable, "-m", "benchmark", "run", "m.yaml", "--executor", "slurm", *given], cwd=tmp_path,
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stderr.startswith(said), out.stderr


# ------------------------------------------------------------------------- why a job left no result

def _ledger(tmp_path: Path) -> list[dict]:
    slurm = tmp_path / "slurm"
    slurm.mkdir()
    common = {"matrix": "m", "attack": "em", "poison": "P", "time": 1.0}
    return [{**common, "job": "7", "kind": "attack", "cells": [], "log": str(slurm / "7_0_log.err")},
            {**common, "job": "8_0", "kind": "cells", "cells": ["a"], "log": str(slurm / "8_0_0_log.err"), "after": "7"},
            {**common, "job": "8_1", "kind": "cells", "cells": ["b"], "log": str(slurm / "8_1_0_log.err"), "after": "7"}]


def test_a_killed_poison_job_is_named_for_the_cells_it_cancelled(tmp_path):
    tasks = _ledger(tmp_path)
    Path(tasks[0]["log"]).write_text("Traceback (most recent call last):\n  File x\nbenchmark.errors.UserError: cannot "
                                     "lock /r/locks/p.lock: Read-only file system\nsrun: error: vm: task 0: Exited with exit code 1\n")
    queue = {"7": ("FAILED", "NonZeroExitCode"), "8_0": ("CANCELLED", "DependencyNeverSatisfied")}
    why = no_result(tasks[1], tasks, queue, cached=lambda k: False)
    assert why == (f"its poison job 7 (em) ended FAILED without its poison (log {tasks[0]['log']}: benchmark.errors.UserError: "
                   "cannot lock /r/locks/p.lock: Read-only file system); SLURM cancelled its task 8_0, which never ran")
    ((task, line),) = failed_poison_jobs(tasks, queue, lambda k: False, lambda t: True)
    assert task["job"] == "7" and line.startswith("ended FAILED without its poison")
    assert failed_poison_jobs(tasks, queue, lambda k: True, lambda t: True) == []  # made later (a rerun): not failed
    assert failed_poison_jobs(tasks, {"7": ("RUNNING", "None")}, lambda k: False, lambda t: True) == []
    assert failed_poison_jobs(tasks, None, lambda k: False, lambda t: True) == []  # squeue silent: no claim
    # a list written before `after` was kept: the attack job of the same submission
    old = [{k: v for k, v in t.items() if k != "after"} for t in tasks]
    assert no_result(old[2], old, {}, cached=lambda k: False).startswith("its poison job 7 (em) ended without its poison")


def test_a_task_that_ran_or_was_cancelled_is_said_so(tmp_path):
    tasks = _ledger(tmp_path)
    Path(tasks[1]["log"]).write_text("starting\nslurmstepd: error: *** JOB 8 ON vm CANCELLED AT 2026 ***\n")
    Path(tasks[2]["log"]).write_text("starting\nslurmstepd: error: Detected 1 oom_kill event in StepId=8.0\n")
    queue = {"7": ("COMPLETED", "None"), "8_0": ("CANCELLED", "None"), "8_1": ("OUT_OF_MEMORY", "OutOfMemory")}
    assert no_result(tasks[1], tasks, queue, lambda k: True) == f"its SLURM task 8_0 was cancelled (log {tasks[1]['log']})"
    assert no_result(tasks[2], tasks, queue, lambda k: True) == \
        f"its SLURM task 8_1 ended OUT_OF_MEMORY (log {tasks[2]['log']}: slurmstepd: error: Detected 1 oom_kill event in StepId=8.0)"
    Path(tasks[1]["log"]).unlink()
    assert no_result(tasks[1], tasks, queue, lambda k: True) == "its SLURM task 8_0 was cancelled before it started (no log)"


def test_log_hint_prefers_the_exception():
    assert log_hint(None) == "" and log_hint("/nonexistent/x.err") == ""


# ------------------------------------------------------------------------- signals while submitting

def test_a_signal_during_a_critical_block_waits_for_its_end():
    done = []
    with pytest.raises(KeyboardInterrupt), Signals() as sig:
        with sig.critical():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("recorded")  # sbatch accepted the job: the list gets it
        done.append("after")  # never: the interrupt acts at the block's end
    assert done == ["recorded"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_signal_acts_at_once():
    done = []
    with pytest.raises(KeyboardInterrupt), Signals() as sig, sig.critical():
        os.kill(os.getpid(), signal.SIGINT)
        done.append("first held")
        os.kill(os.getpid(), signal.SIGINT)
        done.append("never")
    assert done == ["first held"]


def test_sighup_stops_like_ctrl_c_and_output_survives_a_closed_terminal(monkeypatch):
    inherited = signal.getsignal(signal.SIGHUP)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)  # as from a terminal: under nohup (CI may run so) it is ignored
    before = signal.getsignal(signal.SIGHUP)
    stdout, stderr = sys.stdout, sys.stderr
    try:
        with pytest.raises(HungUp), Signals():
            os.kill(os.getpid(), signal.SIGHUP)
        assert isinstance(HungUp(), KeyboardInterrupt)

        class Dead:
            def write(self, s: str) -> int:
                raise OSError(5, "Input/output error")

            def flush(self) -> None:
                raise OSError(5, "Input/output error")

        sys.stderr = Dead()  # type: ignore[assignment]
        with pytest.raises(HungUp), Signals():
            os.kill(os.getpid(), signal.SIGHUP)
        print("interrupted: ...", file=sys.stderr)  # the closing line to a hung-up terminal: dropped, no error
        sys.stderr.flush()
        assert signal.getsignal(signal.SIGHUP) == before
    finally:
        sys.stdout, sys.stderr = stdout, stderr
        signal.signal(signal.SIGHUP, inherited)


def test_a_dry_run_refuses_an_sbatch_export_without_all_as_the_run_does(tmp_path, monkeypatch, capsys):
    """No SLURM needed: the dry-run asks the executor what its run would refuse (``Executor.check``)."""
    from tests.test_bad_inputs import one_error_line, run_cli, write

    m = write(tmp_path, "dataset: {name: digits, subset: 100}\nprofile: smoke\nattacks: [clean]\nvictims: [sl]\n"
                        "executor: {name: slurm}\n")
    monkeypatch.setenv("SBATCH_EXPORT", "NONE")
    one_error_line(*run_cli(capsys, "run", str(m), "--dry-run", "--results", str(tmp_path / "r")),
                   "SBATCH_EXPORT=NONE (in this environment) is refused: without ALL")
    assert not (tmp_path / "r").exists()
    monkeypatch.setenv("SBATCH_EXPORT", "ALL")
    code, _ = run_cli(capsys, "run", str(m), "--dry-run", "--results", str(tmp_path / "r"))
    assert code == 0
