"""The local executor: worker processes split one matrix through the results directory's locks."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from benchmark.config import parse_matrix, resolve
from benchmark.errors import ConfigError
from benchmark.executors import execute
from benchmark.executors.local import LocalParams, _plan_workers
from benchmark.registry import get_registry
from tests.test_runner import BASE, _bench, _write_matrix, interrupt_after_two_cells


def _resolved(**over):
    return resolve(parse_matrix({**BASE, **over}), get_registry())


def test_two_workers_compute_every_cell_once_and_every_poison_once(tmp_path):
    logs: list[str] = []
    r = _resolved(executor={"name": "local", "params": {"workers": 2}}, seeds=[0, 1])
    s = execute(r, tmp_path / "res", log=logs.append)
    assert (s.planned, s.ok, s.skipped, s.failed) == (8, 8, 0, [])
    recs = [json.loads(p.read_text()) for p in (tmp_path / "res" / "cells").glob("*.json")]
    assert len(recs) == 8 and all(x["status"] == "ok" for x in recs)
    assert len({x["provenance"]["pid"] for x in recs}) == 2  # both workers did cells
    assert len(list((tmp_path / "res" / "artifacts").iterdir())) == 2  # one poison per attack
    assert "2 workers x 1 threads" in logs[0]
    again = execute(r, tmp_path / "res", log=logs.append)  # a rerun finds everything done
    assert (again.ok, again.skipped) == (0, 8)


def test_results_match_the_inline_executor(tmp_path):
    """Same cells, same values, bit for bit: every job runs the matrix's ``threads`` whatever the
    executor (the thread count changes float reductions), so a cell does not depend on which
    process computed it, nor on the thread count of the process that started the run."""
    import torch

    local = _resolved(executor={"name": "local", "params": {"workers": 2}}, attacks=["em"])
    inline = _resolved(attacks=["em"])
    execute(local, tmp_path / "a", log=lambda m: None)
    torch.set_num_threads(2)  # the caller's thread count must not matter (restored by conftest)
    execute(inline, tmp_path / "b", log=lambda m: None, progress=False)
    vals = {}
    for d in ("a", "b"):
        recs = [json.loads(p.read_text()) for p in (tmp_path / d / "cells").glob("*.json")]
        vals[d] = {(x["defense"], x["seed"]): x["metrics"]["accuracy"] for x in recs}
        assert all(x["provenance"]["threads"] == 1 for x in recs)
    assert vals["a"] == vals["b"]
    poisons = [sorted(p.name for p in (tmp_path / d / "artifacts").iterdir()) for d in ("a", "b")]
    digests = [[json.loads((tmp_path / d / "artifacts" / k / "meta.json").read_text())["sha256"] for k in ks]
               for d, ks in zip(("a", "b"), poisons)]
    assert digests[0] == digests[1]  # the same EM poison, byte for byte


def test_worker_plan_defaults(monkeypatch):
    import os

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    assert _plan_workers(LocalParams(workers=2), "cpu") == (2, 1, ["cpu"] * 2)
    assert _plan_workers(LocalParams(), "cpu", threads=2)[:2] == (max(1, cpus // 2), 2)
    assert _plan_workers(LocalParams(workers=3), "cpu", cap=2) == (2, 1, ["cpu"] * 2)
    # under taskset or a container's cpuset: the cores this process may use, not the machine's
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert _plan_workers(LocalParams(), "cpu")[0] == 3


def test_bad_executor_params_are_config_errors():
    with pytest.raises(ConfigError, match=r"executor.params.worker.*unknown key 'worker'.*allowed: workers"):
        _resolved(executor={"name": "local", "params": {"worker": 2}})
    with pytest.raises(ConfigError, match="executor.params.workers"):
        _resolved(executor={"name": "local", "params": {"workers": 0}})
    with pytest.raises(ConfigError, match=r"executor.params.workers: unknown key 'workers' \(allowed: none\)"):
        _resolved(executor={"name": "inline", "params": {"workers": 2}})
    with pytest.raises(ConfigError, match=r"executor.name: unknown executor 'slurm-ish'; did you mean 'slurm'"):
        _resolved(executor="slurm-ish")


def test_cli_workers_interrupt_then_resume(tmp_path):
    # 60-epoch cells (several seconds each, a minute for the matrix), so the run is still going
    # when the signal arrives even on a loaded machine
    m = _write_matrix(tmp_path, seeds=[0, 1, 2], victims=[{"name": "sl", "params": {"epochs": 60}}])
    res = tmp_path / "res"
    proc = _bench("run", str(m), "--results", str(res), "--workers", "2")
    cells = res / "cells"
    interrupt_after_two_cells(proc, cells)
    finished = {p.name for p in cells.glob("*.json")}
    assert 2 <= len(finished) < 12
    proc2 = _bench("run", str(m), "--results", str(res), "--workers", "2")
    _, err2 = proc2.communicate(timeout=600)
    assert proc2.returncode == 0, err2
    assert len(list(cells.glob("*.json"))) == 12
    assert "12 cells:" in err2 and f"{len(finished)} already done" in err2


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids += [int(k) for k in (task / "children").read_text().split()]
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its exit status waits to be read


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads the process tree from /proc")
def test_workers_end_with_their_parent(tmp_path):
    """SIGKILL of `bench run --workers 2` (an OOM killer, a scheduler) ends its workers at once:
    they do not go on computing cells nobody waits for, and end without a BrokenPipeError traceback."""
    m = _write_matrix(tmp_path, seeds=[0, 1, 2], victims=[{"name": "sl", "params": {"epochs": 15}}])
    res = tmp_path / "res"
    proc = _bench("run", str(m), "--results", str(res), "--workers", "2")
    cells = res / "cells"
    deadline = time.time() + 240
    while time.time() < deadline and not (cells.exists() and any(cells.glob("*.json"))):
        time.sleep(0.2)
    workers = [k for k in _children(proc.pid) if b"spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes()]
    assert len(workers) == 2
    os.kill(proc.pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=60)  # returns once every holder of its stderr (the workers) is gone
    assert proc.returncode == -signal.SIGKILL
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers)
    assert "Traceback" not in err and "BrokenPipeError" not in err
    finished = len(list(cells.glob("*.json")))
    time.sleep(2)
    assert len(list(cells.glob("*.json"))) == finished < 12
