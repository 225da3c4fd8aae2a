"""Executors are plugins: a third-party executor registers through the hook and touches no core
file; the matrix's executor block and the command line's -E are validated by its own Params."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.config import ExecutorSpec, parse_matrix, resolve
from benchmark.errors import ConfigError, UserError
from benchmark.executors import execute
from benchmark.executors.slurm import SlurmParams
from benchmark.executors.slurm_queue import my_jobs
from benchmark.registry import DEFAULT_PLUGINS, get_registry
from tests.test_runner import BASE

THIRD_PARTY = '''
from pydantic import Field
from benchmark import Executor, Params, hookimpl
from benchmark.runner import Runner

RUNS = []

class Twice(Executor):
    """Runs the inline runner, then checks again (a toy)."""
    name = "twice"
    version = "3"

    class Params(Params):
        label: str = Field("x", min_length=1)

    def run(self, resolved, results, options):
        RUNS.append(self.params.label)
        Runner(resolved, results, log=lambda m: None, progress=False).run()
        return Runner(resolved, results, log=lambda m: None, progress=False).run()

@hookimpl
def register_executors():
    return [Twice]
'''


@pytest.fixture
def third_party(tmp_path, monkeypatch):
    (tmp_path / "twice_executor.py").write_text(THIRD_PARTY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "twice_executor", raising=False)
    monkeypatch.setenv("UEBENCH_PLUGINS", ",".join([*DEFAULT_PLUGINS, "twice_executor"]))


def test_builtin_executors_are_listed_like_any_plugin():
    names = get_registry().names("executor")
    assert names == ["inline", "local", "slurm"]
    rows = {e.name: e for e in get_registry().entries() if e.kind == "executor"}
    assert rows["slurm"].version == "1" and rows["slurm"].package == "uebench"


def test_a_third_party_executor_runs_a_matrix(tmp_path, third_party):
    r = resolve(parse_matrix({**BASE, "attacks": ["clean"], "defenses": ["none"], "executor": {"name": "twice", "params": {"label": "y"}}}),
                get_registry())
    s = execute(r, tmp_path / "res")
    assert (s.planned, s.skipped) == (1, 1)  # the second pass found the cell done
    assert sys.modules["twice_executor"].RUNS == ["y"]
    with pytest.raises(ConfigError, match=r"executor.params.lable: unknown key 'lable'; did you mean 'label'"):
        resolve(parse_matrix({**BASE, "executor": {"name": "twice", "params": {"lable": "y"}}}), get_registry())
    with pytest.raises(ConfigError, match=r"executor.name: unknown executor 'twise'; did you mean 'twice'"):
        resolve(parse_matrix({**BASE, "executor": "twise"}), get_registry())
    out = subprocess.run([sys.executable, "-m", "benchmark", "plugins"], capture_output=True, text=True,
                         env={**__import__("os").environ, "PYTHONPATH": f"{Path(__file__).parents[2]}:{tmp_path}"})
    assert any(ln.split()[:3] == ["executor", "twice", "3"] for ln in out.stdout.splitlines()), out.stdout


def test_executor_modules_import_without_a_circle():
    """config.py looks executors up in the registry: importing an executor module first (as a
    spawned worker or a SLURM task does) works."""
    for mod in ("benchmark.executors.local", "benchmark.executors.slurm", "benchmark.config", "benchmark.runner"):
        out = subprocess.run([sys.executable, "-c", f"import {mod}"], capture_output=True, text=True,
                             env={**__import__("os").environ, "PYTHONPATH": str(Path(__file__).parents[2])})
        assert out.returncode == 0, out.stderr
    src = (Path(__file__).parents[2] / "benchmark" / "config.py").read_text()
    assert "benchmark.executors" not in src and "LocalParams" not in src


def test_command_line_executor_overrides():
    from benchmark.cli_matrix import executor_override as _executor_override

    base = ExecutorSpec(name="slurm", params={"partition": "cpu", "sbatch": {"qos": "low"}})
    got = _executor_override(base, None, ["gpus=2", "sbatch.account=lab", "setup=[module load cuda]", "mem=16G"], None)
    assert got.name == "slurm" and got.params == {"partition": "cpu", "gpus": 2, "mem": "16G", "setup": ["module load cuda"],
                                                   "sbatch": {"qos": "low", "account": "lab"}}
    assert base.params == {"partition": "cpu", "sbatch": {"qos": "low"}}  # not changed in place
    assert _executor_override(base, "inline", [], None) == ExecutorSpec(name="inline")  # another executor: no params
    assert _executor_override(ExecutorSpec(), None, [], 3) == ExecutorSpec(name="local", params={"workers": 3})
    with pytest.raises(UserError, match="--workers runs the local executor"):
        _executor_override(base, "slurm", [], 3)
    with pytest.raises(UserError, match="KEY=VALUE"):
        _executor_override(base, None, ["gpus"], None)


def test_slurm_params_are_validated():
    assert SlurmParams().time == 1440 and SlurmParams(mem="16G").mem == "16G"
    for bad, match in (({"mem": "lots"}, "memory syntax"), ({"gpus": True}, "expected a number"), ({"time": 0}, "greater"),
                       ({"sbatch": {"array": "0-3"}}, "which the executor sets itself"), ({"partiton": "gpu"}, "partiton")):
        with pytest.raises(Exception, match=match):
            SlurmParams(**bad)
    with pytest.raises(ConfigError, match=r"executor.params.partiton: unknown key 'partiton'; did you mean 'partition'"):
        resolve(parse_matrix({**BASE, "executor": {"name": "slurm", "params": {"partiton": "gpu"}}}), get_registry())


def test_squeue_output_is_read_array_task_by_array_task(monkeypatch):
    from benchmark.executors import slurm_queue as slurm

    out = "12|RUNNING|None\n13_[2-4%2]|PENDING|JobArrayTaskLimit\n13_0|COMPLETED|None\n14_1|CANCELLED+|None\n"

    class Done:
        returncode, stdout, stderr = 0, out, ""

    monkeypatch.setattr(slurm.shutil, "which", lambda c: "/usr/bin/" + c)
    monkeypatch.setattr(slurm.subprocess, "run", lambda *a, **k: Done())
    assert my_jobs() == {"12": ("RUNNING", "None"), "13_2": ("PENDING", "JobArrayTaskLimit"), "13_3": ("PENDING", "JobArrayTaskLimit"),
                         "13_4": ("PENDING", "JobArrayTaskLimit"), "13_0": ("COMPLETED", "None"), "14_1": ("CANCELLED", "None")}
    monkeypatch.setattr(slurm.shutil, "which", lambda c: None)
    assert my_jobs() is None


def test_slurm_without_slurm_is_one_line_exit_2(tmp_path):
    import os

    m = tmp_path / "m.yaml"
    m.write_text("name: t\ndataset: {name: digits, subset: 100}\nprofile: smoke\nattacks: [clean]\nvictims: [sl]\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]), "PATH": f"{tmp_path}:/usr/bin/nonexistent"}
    out = subprocess.run([sys.executable, "-m", "benchmark", "run", str(m), "--results", str(tmp_path / "r"), "--executor", "slurm"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 2 and out.stderr.startswith("error: the slurm executor needs SLURM's sbatch, squeue, srun"), out.stderr
    assert "Traceback" not in out.stderr
    bad = subprocess.run([sys.executable, "-m", "benchmark", "run", str(m), "--executor", "slurm", "-E", "gpu=1"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 2 and "executor.params.gpu: unknown key 'gpu'; did you mean 'gpus'" in bad.stderr
