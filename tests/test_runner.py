from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from benchmark.config import parse_matrix, resolve
from benchmark.cost import longest_poison_first
from benchmark.registry import get_registry
from benchmark.runner import Runner

REPO = Path(__file__).resolve().parents[1]
BASE = {
    "name": "t",
    "dataset": {"name": "digits", "subset": 200},
    "profile": "smoke",
    "attacks": ["clean", "random-noise"],
    "victims": ["sl"],
    "defenses": ["none", "iss-bdr"],
}


def runner(tmp_path, **over):
    m = parse_matrix({**BASE, **over})
    return Runner(resolve(m, get_registry()), tmp_path / "res", log=lambda s: None, progress=False)


def test_runs_all_cells_then_skips_them(tmp_path):
    r = runner(tmp_path)
    s = r.run()
    assert (s.ok, s.skipped, s.failed) == (4, 0, [])
    recs = r.store.records()
    assert len(recs) == 4 and all(x["status"] == "ok" for x in recs)
    rec = recs[0]
    assert 0 <= rec["metrics"]["accuracy"] <= 1
    for k in ("torch", "uebench", "device", "pid", "python"):
        assert k in rec["provenance"]
    assert rec["wall_s"] >= 0 and rec["spec"]["victim"]["params"]["epochs"] == 2
    s2 = runner(tmp_path).run()
    assert (s2.ok, s2.skipped) == (0, 4)
    # one poison per attack, generated once
    assert len(list((tmp_path / "res" / "artifacts").iterdir())) == 2


def test_workers_start_the_longest_poison_first_and_split_the_attacks(tmp_path):
    """Longest-processing-time-first: with 2 workers the EM poison (minutes by the cost model) is
    worker 0's first job, not the last after the free poisons' cells; worker 1 starts on another
    attack; a single runner keeps the matrix order."""
    m = parse_matrix({**BASE, "attacks": ["clean", "random-noise", "em-class"]})
    r = resolve(m, get_registry())
    firsts = []
    for w in range(2):
        run = Runner(r, tmp_path / "res", log=lambda s: None, progress=False, worker=(w, 2))
        assert [run.plan.jobs[j].attack.name for j in longest_poison_first(r, run.plan.jobs)] == ["em-class", "clean", "random-noise"]
        firsts.append(run.pending()[0].job.attack.name)
        assert len(run.pending()) == 6
    assert firsts == ["em-class", "clean"]
    alone = Runner(r, tmp_path / "res", log=lambda s: None, progress=False)
    assert [c.job.attack.name for c in alone.pending()][::2] == ["clean", "random-noise", "em-class"]


def test_changing_one_param_recomputes_only_dependents(tmp_path):
    runner(tmp_path).run()
    s = runner(tmp_path, defenses=["none", {"name": "iss-bdr", "params": {"bits": 3}}]).run()
    assert (s.ok, s.skipped) == (2, 2)


def test_a_metric_with_new_params_recomputes_the_cell_and_a_subset_of_metrics_does_not(tmp_path):
    def cert(sigma):
        return ["accuracy", {"name": "certified-learnability", "params": {"draws": 2, "sigma": sigma}}]

    kw = {"attacks": ["clean"], "defenses": ["none"]}
    assert runner(tmp_path, metrics=cert(0.01), **kw).run().ok == 1
    assert runner(tmp_path, metrics=cert(0.01), **kw).run().skipped == 1
    assert runner(tmp_path, metrics=cert(0.02), **kw).run().ok == 1  # stale certification: recomputed
    assert runner(tmp_path, metrics=["accuracy"], **kw).run().skipped == 1  # what is asked was computed


def test_precision_bfloat16_autocasts_on_a_cpu_and_the_record_says_so(tmp_path):
    kw = {"attacks": ["random-noise"], "defenses": ["none"]}
    fp, bf = runner(tmp_path / "fp", **kw), runner(tmp_path / "bf", precision="bfloat16", **kw)
    assert fp.run().ok == bf.run().ok == 1
    (a,), (b,) = fp.store.records(), bf.store.records()
    assert a["key"] == b["key"]  # the same cell, computed with other numerics (as on a GPU)
    assert (a["numerics"]["dtype"], b["numerics"]["dtype"]) == ("float32", "bfloat16-autocast")
    assert [e["loss"] for e in a["curves"]] != [e["loss"] for e in b["curves"]]


def test_deterministic_given_seed(tmp_path):
    a = runner(tmp_path / "a", attacks=["random-noise"], defenses=["none"]).run()
    b = runner(tmp_path / "b", attacks=["random-noise"], defenses=["none"]).run()
    ra = Runner.__new__(Runner)
    recs_a = json.loads(next((tmp_path / "a" / "res" / "cells").glob("*.json")).read_text())
    recs_b = json.loads(next((tmp_path / "b" / "res" / "cells").glob("*.json")).read_text())
    assert recs_a["metrics"] == recs_b["metrics"] and a.ok == b.ok == 1 and ra is not None
    # the poison's digest names the generation: equal for the same poison, another for another one
    assert recs_a["poison_meta"]["x_sha256"] == recs_b["poison_meta"]["x_sha256"]
    runner(tmp_path / "c", attacks=["random-noise"], defenses=["none"], attack_seed=1).run()
    recs_c = json.loads(next((tmp_path / "c" / "res" / "cells").glob("*.json")).read_text())
    assert len(recs_c["poison_meta"]["x_sha256"]) == 64 and recs_c["poison_meta"]["x_sha256"] != recs_a["poison_meta"]["x_sha256"]


def test_poison_digest_hashes_the_images_with_their_shape():
    import hashlib

    import torch

    from benchmark.poison_artifact import poison_digest

    x = torch.arange(24, dtype=torch.uint8).reshape(2, 3, 2, 2)
    assert poison_digest(x) == hashlib.sha256(b"(2, 3, 2, 2)|torch.uint8|" + bytes(range(24))).hexdigest()
    assert poison_digest(x) != poison_digest(x.reshape(2, 12)) and poison_digest(x) != poison_digest(x.flip(0))


def _write_matrix(tmp_path, **over):
    p = tmp_path / "m.yaml"
    p.write_text(yaml.safe_dump({**BASE, **over}))
    return p


def _bench(*args, **kw):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "benchmark", *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def interrupt_after_two_cells(proc: subprocess.Popen, cells: Path, sig: int = signal.SIGINT) -> None:
    """Ctrl-C (or ``sig``) a running `bench run` once two cells are on disk; it exits 130 (143 for
    SIGTERM) with one clear message."""
    deadline = time.time() + 240
    while time.time() < deadline and len(list(cells.glob("*.json")) if cells.exists() else []) < 2:
        time.sleep(0.2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == (143 if sig == signal.SIGTERM else 130), err
    assert "rerun the same command to resume" in err and "Traceback" not in err
    assert "leaked semaphore" not in err  # workers stop by themselves, not killed holding their locks


def test_interrupt_then_resume_loses_nothing(tmp_path):
    m = _write_matrix(tmp_path, attacks=["clean", "random-noise"], defenses=["none", "iss-bdr"], seeds=[0, 1])
    res = tmp_path / "res"
    proc = _bench("run", str(m), "--results", str(res))
    cells = res / "cells"
    interrupt_after_two_cells(proc, cells)
    finished = {p.name: json.loads(p.read_text()) for p in cells.glob("*.json")}
    assert 2 <= len(finished) < 8
    assert not list(cells.glob(".*.tmp"))  # no half-written file
    proc2 = _bench("run", str(m), "--results", str(res))
    _out2, err2 = proc2.communicate(timeout=600)
    assert proc2.returncode == 0, err2
    assert f"{len(finished)} already done" in err2
    after = {p.name: json.loads(p.read_text()) for p in cells.glob("*.json")}
    assert len(after) == 8
    for name, rec in finished.items():  # finished cells were not recomputed
        assert after[name]["started"] == rec["started"] and after[name]["provenance"]["pid"] == rec["provenance"]["pid"]


def test_two_runners_share_one_results_dir(tmp_path):
    m = _write_matrix(tmp_path, seeds=[0, 1])
    res = tmp_path / "res"
    procs = [_bench("run", str(m), "--results", str(res), "--quiet") for _ in range(2)]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs
    computed = sum(int(e.split(" computed")[0].rsplit(" ", 1)[1]) for e in errs)
    assert computed == 8  # every cell computed exactly once across the two runners
    assert len(list((res / "cells").glob("*.json"))) == 8


def test_records_keep_curves_dataset_checksum_and_metric_observations(tmp_path):
    """Every cell stores its training curves (one entry per epoch, from the trace) and the sha256
    of the dataset content; a metric's observer sees every epoch's live model."""
    from benchmark.interfaces import Metric
    from plugins.metrics.accuracy import Accuracy

    seen: list[tuple[str, int, int]] = []

    class EpochCounter(Accuracy):
        name = "accuracy"

        def observer(self, ctx):
            def listen(event):
                seen.append((event.phase, event.epoch, sum(p.numel() for p in event.model.parameters())))
            return listen

    r = runner(tmp_path, attacks=["clean"], defenses=["none"])
    r.r.metrics[0] = EpochCounter(r.r.metrics[0].params)
    assert isinstance(r.r.metrics[0], Metric)
    r.run()
    (rec,) = r.store.records()
    epochs = r.r.victims[0].params.epochs
    assert [c["epoch"] for c in rec["curves"]] == list(range(1, epochs + 1))
    assert all(c["phase"] == "supervised" and c["loss"] > 0 and 0 <= c["accuracy"] <= 1 for c in rec["curves"])
    assert [(p, e) for p, e, _ in seen] == [("supervised", e) for e in range(1, epochs + 1)]
    assert len(rec["dataset_sha256"]) == 64
    again = runner(tmp_path / "other", attacks=["clean"], defenses=["none"], seeds=[1])
    again.run()
    assert again.store.records()[0]["dataset_sha256"] == rec["dataset_sha256"]


def test_sigterm_stops_cleanly_then_resume_loses_nothing(tmp_path):
    """A scheduler's time limit or `kill`: exit 143, one line, finished cells kept, a rerun resumes."""
    m = _write_matrix(tmp_path, seeds=[0, 1], victims=[{"name": "sl", "params": {"epochs": 15}}])
    res = tmp_path / "res"
    proc = _bench("run", str(m), "--results", str(res))
    interrupt_after_two_cells(proc, res / "cells", signal.SIGTERM)
    finished = len(list((res / "cells").glob("*.json")))
    assert 2 <= finished < 8
    proc2 = _bench("run", str(m), "--results", str(res), "--quiet")
    _, err2 = proc2.communicate(timeout=600)
    assert proc2.returncode == 0 and f"{finished} already done" in err2, err2


def test_model_stage_cells_reuse_the_plain_victim_with_identical_numbers(tmp_path):
    over = {
        "attacks": ["clean"],
        "defenses": ["none", "finetune", "iss-bdr", "scratch"],
        "seeds": [0, 1],
        "dataset": {"name": "digits", "subset": 200, "holdout": 20},
    }
    fits = []
    r1 = runner(tmp_path / "a", **over)
    fit = r1.r.victims[0].fit
    r1.r.victims[0].fit = lambda *a, **k: fits.append(1) or fit(*a, **k)  # type: ignore[method-assign]
    assert r1.run().exit_code == 0
    assert len(fits) == 4  # none x 2 seeds and iss-bdr x 2 seeds; finetune and scratch reuse none's victims
    r2 = runner(tmp_path / "b", **over)
    r2.reuse_victims = False
    assert r2.run().exit_code == 0
    for cell in r1.plan.cells:
        a, b = r1.store.get(cell.key), r2.store.get(cell.key)
        assert a["metrics"] == b["metrics"], cell.label
        assert a["curves"] == b["curves"], cell.label
    ft_cell = next(c for c in r1.plan.cells if c.defense.name == "finetune")
    rec = r1.store.get(ft_cell.key)
    assert [e["phase"] for e in rec["curves"]][-1] == "repair" and rec["curves"][0]["phase"] == "supervised"
    assert rec["timing"]["victim_reused"] and rec["timing"]["repair_s"] > 0
    none_cell = next(c for c in r1.plan.cells if c.defense.name == "none" and c.seed == ft_cell.seed)
    none = r1.store.get(none_cell.key)
    assert not none["timing"]["victim_reused"] and none["timing"]["victim_s"] > 0 and "repair_s" not in none["timing"]
    assert rec["timing"]["victim_from"] == none_cell.key and "victim_from" not in none["timing"]  # who trained it


def test_done_cells_computed_on_other_data_are_named_when_the_run_loads_the_data(tmp_path):
    """A source whose identity does not name its content (a third party's) and whose files changed:
    the finished cells keep their keys, so the run reuses them, but it says they were computed on
    other data (their records' dataset_sha256) instead of mixing old and new numbers silently."""
    logs: list[str] = []
    m = parse_matrix({**BASE, "attacks": ["clean"], "defenses": ["none"]})
    first = Runner(resolve(m, get_registry()), tmp_path / "res", log=logs.append, progress=False)
    first.run()
    (path,) = (tmp_path / "res" / "cells").glob("*.json")
    rec = json.loads(path.read_text())
    rec["dataset_sha256"] = "0" * 64  # as if computed before the files changed
    path.write_text(json.dumps(rec))
    m = parse_matrix({**BASE, "attacks": ["clean"], "defenses": ["none"], "seeds": [0, 1]})
    again = Runner(resolve(m, get_registry()), tmp_path / "res", log=logs.append, progress=False)
    assert again.run().ok == 1  # seed 1; seed 0 reused
    [line] = [line for line in logs if "other data" in line]
    assert line.startswith("warning: 1 done cells (first: clean") and "dataset_sha256 differs" in line and path.name in line
    logs.clear()
    rec["dataset_sha256"] = again.dataset_sha256
    path.write_text(json.dumps(rec))
    m = parse_matrix({**BASE, "attacks": ["clean"], "defenses": ["none"], "seeds": [0, 1, 2]})
    Runner(resolve(m, get_registry()), tmp_path / "res", log=logs.append, progress=False).run()
    assert not any("other data" in line for line in logs)


def test_done_cells_of_another_precision_are_named_when_reused(tmp_path):
    """The precision is not in the keys (an execution detail, as the device): a float32 results
    directory rerun with `precision: bfloat16` reuses its cells, and says so."""
    logs: list[str] = []
    m = parse_matrix({**BASE, "attacks": ["clean"], "defenses": ["none"]})
    Runner(resolve(m, get_registry()), tmp_path / "res", log=logs.append, progress=False).run()
    assert not any("computed in" in line for line in logs)
    m = parse_matrix({**BASE, "attacks": ["clean"], "defenses": ["none"], "precision": "bfloat16"})
    s = Runner(resolve(m, get_registry()), tmp_path / "res", log=logs.append, progress=False).run()
    assert (s.ok, s.skipped) == (0, 1)
    [line] = [line for line in logs if "computed in" in line]
    assert line.startswith("warning: 1 done cells were computed in float32, where this run computes in bfloat16-autocast")


def test_not_applicable_cells_computed_nothing_and_are_not_counted_as_reused_in_another_precision(tmp_path):
    logs: list[str] = []
    over = {"attacks": ["clean"], "victims": [{"name": "simclr"}], "defenses": ["at"]}  # AT does not apply to simclr
    Runner(resolve(parse_matrix({**BASE, **over}), get_registry()), tmp_path / "res", log=logs.append, progress=False).run()
    assert [r["status"] for r in Runner(resolve(parse_matrix({**BASE, **over}), get_registry()), tmp_path / "res").store.records()] == ["n/a"]
    s = Runner(resolve(parse_matrix({**BASE, **over, "precision": "bfloat16"}), get_registry()), tmp_path / "res",
               log=logs.append, progress=False).run()
    assert s.skipped == 1 and not any("computed in" in line for line in logs)


def test_reused_cells_take_the_matrix_labels_so_one_setting_stays_one_row(tmp_path):
    """A label is not in the key: renamed in the matrix, the reused cells were still shown under the
    old name, and a dataset label changed along with a new seed split one setting into two sections."""
    from benchmark.report.leaderboard import render

    logs: list[str] = []
    m = parse_matrix({**BASE, "defenses": ["none"]})
    Runner(resolve(m, get_registry()), tmp_path / "res", log=logs.append, progress=False).run()
    m = parse_matrix({**BASE, "defenses": ["none"], "seeds": [0, 1], "dataset": {**BASE["dataset"], "label": "sk-digits"},
                      "attacks": ["clean", {"name": "random-noise", "label": "noise"}]})
    again = Runner(resolve(m, get_registry()), tmp_path / "res", log=logs.append, progress=False)
    assert again.run().ok == 2
    assert "2 done cells renamed as this matrix now names them (a label or the profile's name changed)" in logs
    recs = again.store.records()
    assert {(r["dataset"], r["attack"]) for r in recs} == {("sk-digits", "clean"), ("sk-digits", "noise")}
    md = render(recs, "res")
    assert "## sk-digits" in md and "## digits" not in md and "| noise |" in md
    logs.clear()
    Runner(resolve(m, get_registry()), tmp_path / "res", log=logs.append, progress=False).run()
    assert not any("renamed" in line for line in logs)  # once
    # another matrix sharing the cells, with other labels, leaves them as the matrix that made them names them
    other = parse_matrix({**BASE, "name": "other", "defenses": ["none"], "seeds": [0, 1]})
    Runner(resolve(other, get_registry()), tmp_path / "res", log=logs.append, progress=False).run()
    assert not any("renamed" in line for line in logs)
    assert {(r["dataset"], r["attack"]) for r in again.store.records()} == {("sk-digits", "clean"), ("sk-digits", "noise")}
