"""This CPU against the cost model's (`benchmark/calibration.py`): the probe, its cache, the `cpu (here)` row."""

from __future__ import annotations

import json
import time

import pytest
import torch

from benchmark import calibration
from benchmark.calibration import Calibration, calibrate, probe_rate
from benchmark.cost import CostModel, Estimate, Sizes, load_costs, render

COSTS = {"cpu_probe": {"rate": 800.0, "measured": "somewhere"}}


class Probe:
    """A probe that counts its calls and returns (rate, seconds)."""

    def __init__(self, rate: float) -> None:
        self.rate, self.calls = rate, 0

    def __call__(self) -> tuple[float, float]:
        self.calls += 1
        return self.rate, 2.0


def test_the_factor_is_the_reference_over_this_cpu_and_the_line_says_so():
    c = Calibration(cpu="Some CPU", torch="x", rate=200.0, reference=800.0, seconds=3.0, measured=time.time())
    assert c.factor == pytest.approx(4.0)
    line = c.describe()
    assert "Some CPU" in line and "200 img/s" in line and "800 where" in line and "x 4.00" in line and "cached" not in line


def test_a_probe_is_kept_for_a_day_for_this_cpu_and_torch_only(tmp_path):
    path = tmp_path / "c" / "calibration.json"
    probe = Probe(400.0)
    first = calibrate(COSTS, probe, path)
    assert first is not None and probe.calls == 1 and first.factor == pytest.approx(2.0) and not first.cached
    again = calibrate(COSTS, probe, path)
    assert again is not None and probe.calls == 1 and again.cached and again.rate == 400.0 and "(cached)" in again.describe()
    # the reference comes from costs.yaml, not from the file: a new reference applies at once
    moved = calibrate({"cpu_probe": {"rate": 1200.0}}, probe, path)
    assert moved is not None and probe.calls == 1 and moved.factor == pytest.approx(3.0)
    kept = json.loads(path.read_text())
    for stale in ({"measured": time.time() - 25 * 3600}, {"measured": time.time() + 3600}, {"cpu": "another CPU"},
                  {"torch": "0.0"}, {"rate": 0.0}):
        path.write_text(json.dumps({**kept, **stale}))
        calls = probe.calls
        assert calibrate(COSTS, probe, path) is not None and probe.calls == calls + 1, stale
        path.write_text(json.dumps(kept))
    for broken in ("", "{", "[]", json.dumps({"cpu": 1})):
        path.write_text(broken)
        calls = probe.calls
        got = calibrate(COSTS, probe, path)
        assert got is not None and not got.cached and probe.calls == calls + 1, broken


def test_without_a_reference_there_is_no_probe_and_an_unwritable_cache_costs_only_time(tmp_path):
    probe = Probe(400.0)
    assert calibrate({"rates": {}}, probe, tmp_path / "c.json") is None and probe.calls == 0
    blocker = tmp_path / "file"
    blocker.write_text("")
    got = calibrate(COSTS, probe, blocker / "sub" / "calibration.json")  # its directory cannot be made
    assert got is not None and got.factor == pytest.approx(2.0) and probe.calls == 1


def test_the_real_probe_trains_and_leaves_the_thread_count_alone():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        rate, seconds = probe_rate(min_seconds=0.0, images=128)
        assert rate > 0 and seconds > 0 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_costs_yaml_names_the_reference_probe_and_its_source():
    ref = load_costs()["cpu_probe"]
    assert ref["rate"] > 0 and "sl-small-cnn" in ref["measured"]


def test_the_here_row_is_the_cpu_row_times_the_factor():
    est = Estimate(["cpu", "d"], {"cpu": [("a", 60.0)], "d": [("a", 1.0)]},
                   {"cpu": [("a", 120.0), ("a", 120.0)], "d": [("a", 1.0)]}, [], [], 2, Sizes(1, 1, 0))
    here = Calibration(cpu="Slow CPU", torch="x", rate=100.0, reference=300.0, seconds=1.0, measured=time.time())
    model = CostModel({"rates": {"cpu": {"device": "ref"}, "d": {"device": "dev"}}})
    rows = render(est, model, here).splitlines()
    # cpu: poison 1 min, cells 4 min, 5 min in all; 2 slots: poison then 2 cells in parallel = 3 min; x3 here
    cpu = next(r for r in rows if r.startswith("  cpu  "))
    mine = next(r for r in rows if r.startswith("  cpu (here)"))
    assert cpu.split()[1:] == ["1.0", "min", "4.0", "min", "5.0", "min", "5.0", "min", "3.0", "min"]
    assert mine.split()[2:] == ["3.0", "min", "12.0", "min", "15.0", "min", "15.0", "min", "9.0", "min"]
    assert rows.index(mine) == rows.index(cpu) + 1 and any("Slow CPU" in r for r in rows)
    assert "cpu (here)" not in render(est, model)


def test_a_cpu_dry_run_adds_the_here_row_once_a_day_and_none_when_nothing_is_left(tmp_path, monkeypatch, capsys):
    from benchmark.cli import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    probe = Probe(731.0 / 2.5)
    monkeypatch.setattr(calibration, "probe_rate", probe)
    m = tmp_path / "m.yaml"
    m.write_text("name: t\ndataset: {name: digits, subset: 200}\nprofile: smoke\nattacks: [clean]\nvictims: [sl]\n")
    assert main(["run", str(m), "--results", str(tmp_path / "r"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "cpu (here)" in out and "the cpu row x 2.50" in out and probe.calls == 1
    assert (tmp_path / "cache" / "uebench" / "calibration.json").exists()
    assert main(["run", str(m), "--results", str(tmp_path / "r"), "--dry-run"]) == 0
    assert "(cached)" in capsys.readouterr().out and probe.calls == 1
    # jobs a scheduler runs elsewhere: no probe of this machine
    slurm = tmp_path / "s.yaml"
    slurm.write_text(m.read_text() + "executor: {name: slurm}\n")
    assert main(["run", str(slurm), "--results", str(tmp_path / "r"), "--dry-run"]) == 0
    assert "cpu (here)" not in capsys.readouterr().out
    # nothing left to do: nothing to price, no probe
    (tmp_path / "cache" / "uebench" / "calibration.json").unlink()
    monkeypatch.setattr("benchmark.runner.Runner.needs_work", lambda self, cell: False)
    assert main(["run", str(m), "--results", str(tmp_path / "r"), "--dry-run"]) == 0
    assert "cpu (here)" not in capsys.readouterr().out and probe.calls == 1
