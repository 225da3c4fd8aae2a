"""``bench audit``: a deterministic, budgeted choice of cells; each rebuilt from its record alone
(same key), recomputed from scratch (poison included) and compared with the record."""

from __future__ import annotations

import json
import subprocess

import pytest

from benchmark.audit import Candidate, Comparison, candidates, choose, commit_seed, tolerance
from benchmark.config import parse_matrix, resolve
from benchmark.errors import UserError
from benchmark.interfaces import Metric
from benchmark.rebuild import rebuild, rebuild_matrix
from benchmark.registry import get_registry
from benchmark.runner import Runner
from plugins.metrics.accuracy import Accuracy
from plugins.metrics.unlearnable_distance import UnlearnableDistance
from tests.test_cli import bench

MATRIX = {
    "name": "audited",
    "dataset": {"name": "digits", "subset": 300, "holdout": "5%"},
    "profile": "smoke",
    "seeds": [0],
    "attacks": ["clean", {"name": "em", "label": "em-small", "params": {"eps": "4/255"}}],
    "victims": ["sl"],
    "defenses": ["none", "iss-bdr"],
}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    root = tmp_path_factory.mktemp("audit") / "res"
    Runner(resolve(parse_matrix(MATRIX), get_registry()), root, progress=False, log=lambda m: None).run()
    return root


def records(root):
    return sorted((json.loads(p.read_text()) for p in (root / "cells").glob("*.json")), key=lambda r: r["key"])


def cand(key, poison, poison_s, cell_s):
    return Candidate({"key": key, "spec": {"poison": poison}, "attack": "a", "victim": "v", "defense": "d", "seed": 0}, poison_s, cell_s)


def test_choice_is_deterministic_and_fits_the_budget():
    cands = [cand(f"k{i}", f"p{i % 3}", 100.0, 50.0) for i in range(12)]
    a, _ = choose(cands, 3, 10_000, "abc")
    b, _ = choose(list(reversed(cands)), 3, 10_000, "abc")
    assert [c.record["key"] for c in a] == [c.record["key"] for c in b] and len(a) == 3
    c, _ = choose(cands, 3, 10_000, "other seed")
    assert [x.record["key"] for x in c] != [x.record["key"] for x in a]
    # budget: a poison is paid once; a cell that does not fit is skipped, a later one may fit
    chosen, skipped = choose([cand("a", "p", 100, 50), cand("b", "p", 100, 50), cand("c", "q", 500, 50)], 5, 220, "s")
    assert sorted(x.record["key"] for x in chosen) == ["a", "b"]
    assert [x.record["key"] for x, _ in skipped] == ["c"] and "does not fit" in skipped[0][1]
    gpu = cand("g", "p", 1, 1)
    gpu.record["provenance"] = {"device": "cuda:0"}
    chosen, skipped = choose([gpu], 1, 1000, "s", device="cpu")
    assert not chosen and "recorded on cuda: its cost on cpu is unknown" in skipped[0][1]
    assert choose([gpu], 1, 1000, "s", device="cuda")[0] == [gpu]


def test_a_cell_that_reused_its_siblings_victim_is_priced_with_that_training():
    def rec(key, defense, timing, wall_s, seed=0):
        specs = {k: {"name": k} for k in ("dataset_spec", "dataset_source", "attack_spec", "victim_spec", "defense_spec")}
        specs["defense_spec"] = {"name": defense}
        return {"key": key, "status": "ok", "seed": seed, "attack_seed": 0, "metric_specs": [{"name": "accuracy"}],
                "poison_meta": {"wall_s": 200.0}, "timing": timing, "wall_s": wall_s, **specs}
    recs = [
        rec("a", "none", {"victim_s": 300.0, "victim_reused": False}, 310.0),
        rec("b", "recovery", {"victim_s": 0.0, "victim_reused": True, "repair_s": 15.0}, 19.0),
        rec("c", "finetune", {"victim_s": 0.0, "victim_reused": True}, 12.0, seed=1),  # no sibling with seed 1
        rec("d", "none", None, 120.0, seed=2),  # an old record without a timing block: its wall time
        rec("e", "scratch", {"victim_s": 0.0, "victim_reused": True}, 5.0, seed=2),
        rec("f", "ueraser", {"victim_s": 900.0, "victim_reused": False}, 905.0),  # trains another victim
        rec("g", "i-bau", {"victim_s": 280.0, "victim_reused": False, "repair_s": 40.0}, 330.0),  # trained it (a sibling)
        # read an artifact another cell made (UD's clean reference): the audit makes it again
        rec("h", "none", {"victim_s": 90.0, "victim_reused": False, "artifacts": [{"kind": "r", "key": "x", "created_s": 140.0}]}, 100.0, seed=3),
        # names the cell that trained its victim: that one's training, whatever the siblings
        rec("i", "sau", {"victim_s": 0.0, "victim_reused": True, "victim_from": "f", "repair_s": 9.0}, 10.0),
    ]
    cost = {c.record["key"]: c.cell_s for c in candidates(recs)[0]}
    assert cost == {"a": 310.0, "b": 319.0, "c": 12.0, "d": 120.0, "e": 125.0, "f": 905.0, "g": 330.0, "h": 240.0, "i": 910.0}


def test_a_record_rebuilds_to_its_own_key(recorded):
    for rec in records(recorded):
        m = rebuild_matrix(rec)
        assert m["threads"] == rec["provenance"]["threads"] and m["seeds"] == [rec["seed"]]
        assert m["precision"] == "float32"  # the record's own numerics, whatever device recomputes it
        resolved = rebuild(rec)
        assert resolved.attacks[0].display == rec["attack"]  # labels survive, though not in the key
    em = next(r for r in records(recorded) if r["attack"] == "em-small")
    stale = {**em, "attack_spec": {**em["attack_spec"], "version": "0"}}
    with pytest.raises(UserError, match="attack 'em' is version 0 there"):
        rebuild(stale)
    other = {**em, "attack_spec": {**em["attack_spec"], "params": {**em["attack_spec"]["params"], "eps": 8 / 255}}}
    with pytest.raises(UserError, match="the rebuilt cell has key"):
        rebuild(other)


def test_audit_recomputes_identical_values_and_fails_on_a_changed_record(recorded, tmp_path):
    p = bench("audit", str(recorded), "--cells", "4", "--budget", "60", "--strict", "--json", str(tmp_path / "a.json"))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "4 of 4 values identical to the record" in p.stdout and "audit passed" in p.stdout
    assert "generating poison em" in p.stderr  # poisons recomputed too, in a temporary directory
    out = json.loads((tmp_path / "a.json").read_text())
    assert out["ok"] and len(out["comparisons"]) == 4
    # one recorded value off by 5 points: the audit names the cell, both values and the tolerance
    rec = next(r for r in records(recorded) if r["attack"] == "em-small" and r["defense"] == "none")
    rec["metrics"]["accuracy"] += 0.05
    (tmp_path / "one" / "cells").mkdir(parents=True)
    (tmp_path / "one" / "cells" / f"{rec['key']}.json").write_text(json.dumps(rec))
    p = bench("audit", str(tmp_path / "one"), "--cells", "4", "--budget", "60")
    assert p.returncode == 1
    line = next(x for x in p.stdout.splitlines() if x.startswith("em-small × sl × none"))
    recorded_pct = rec["metrics"]["accuracy"] * 100
    assert "DIFFERS" in line and f"{recorded_pct:.4g}" in line and "±3" in line and "-5" in line, line
    assert "audit FAILED: 1 values beyond tolerance" in p.stdout


def test_nothing_fits_and_seed_from_commit(recorded, tmp_path):
    p = bench("audit", str(recorded), "--cells", "2", "--budget", "0.0001")
    # an audit that could check nothing has not passed (exit 1), and says why
    assert p.returncode == 1 and "0 cells recomputed" in p.stdout and "does not fit" in p.stdout
    assert "audit FAILED: it checked nothing (every drawn cell was skipped, see above)" in p.stdout
    with pytest.raises(UserError, match="not inside a git checkout"):
        commit_seed(tmp_path)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    assert len(commit_seed(tmp_path)) == 40


def test_each_value_is_judged_by_the_tolerance_its_metric_declares():
    class Unmeasured(Metric):
        """Declares no audit tolerance. Test-only."""

        name = "test-unmeasured"

        def compute(self, cell, ctx):
            return {"x": 1.0}

    assert tolerance("accuracy", Accuracy) == 3.0 and tolerance("accuracy", Accuracy, strict=True) == 0.0
    assert tolerance("x", Unmeasured) == 0.0 and tolerance("x", None) == 0.0  # not measured: identical only
    # UD is a plain number (EM 0.64, clean 1.0): accuracy's 3 points would accept anything
    ud = tolerance("ud", UnlearnableDistance)
    assert ud == 0.6 and tolerance("ud_lp_clean", UnlearnableDistance) == 1.0
    assert Comparison("c", "k", "ud", 0.64, 1.14, ud).ok and not Comparison("c", "k", "ud", 0.64, 1.36, ud).ok
    assert not Comparison("c", "k", "x", 1.0, 1.0001, tolerance("x", Unmeasured)).ok


def test_the_audit_says_where_a_recomputation_ran_differently_from_its_record(recorded, tmp_path):
    """A value beyond tolerance comes with its cause when the audit can see one: another machine in
    ``numerics``, or a trained poison whose stopping test flipped (``poison_meta``'s iteration count)."""
    rec = next(r for r in records(recorded) if r["attack"] == "em-small" and r["defense"] == "none")
    assert isinstance(rec["poison_meta"]["outer_iterations"], int)
    real = rec["poison_meta"]["outer_iterations"]
    rec["numerics"]["device_name"] = "Another CPU"
    rec["poison_meta"]["outer_iterations"] = real + 1
    (tmp_path / "r" / "cells").mkdir(parents=True)
    (tmp_path / "r" / "cells" / f"{rec['key']}.json").write_text(json.dumps(rec))
    p = bench("audit", str(tmp_path / "r"), "--cells", "1", "--budget", "60", "--json", str(tmp_path / "a.json"))
    assert p.returncode == 0, p.stdout + p.stderr  # another CPU's poison: not checkable here (the next test)
    line = next(x for x in p.stdout.splitlines() if "ran differently from its record" in x)
    assert line.strip().startswith("em-small × sl × none (seed 0)"), line
    assert "numerics device_name: 'Another CPU' -> " in line and f"poison outer_iterations: {real + 1} -> {real}" in line, line
    assert "wall_s" not in line  # timings always differ: not a cause
    assert "x_sha256" not in line  # the regenerated poison is the recorded one, byte for byte
    assert json.loads((tmp_path / "a.json").read_text())["changes"] == {"em-small × sl × none (seed 0)": line.split(": ", 1)[1].split("; ")}
    # another poison, byte for byte: its digest (shortened) says so
    rec["poison_meta"]["x_sha256"] = "0" * 64
    (tmp_path / "r" / "cells" / f"{rec['key']}.json").write_text(json.dumps(rec))
    p = bench("audit", str(tmp_path / "r"), "--cells", "1", "--budget", "60")
    line = next(x for x in p.stdout.splitlines() if "ran differently from its record" in x)
    assert "poison x_sha256: '000000000000' -> '" in line and line.split("x_sha256: '000000000000' -> '")[1][12] == "'", line
    # a record that predates the digest: its absence is not a change
    del rec["poison_meta"]["x_sha256"]
    (tmp_path / "r" / "cells" / f"{rec['key']}.json").write_text(json.dumps(rec))
    p = bench("audit", str(tmp_path / "r"), "--cells", "1", "--budget", "60")
    line = next(x for x in p.stdout.splitlines() if "ran differently from its record" in x)
    assert "x_sha256" not in line and f"poison outer_iterations: {real + 1} -> {real}" in line, line
    # an unchanged record: no such line
    p = bench("audit", str(recorded), "--cells", "1", "--budget", "60")
    assert "ran differently" not in p.stdout, p.stdout


def test_a_poison_that_stops_otherwise_on_another_cpu_is_not_checked_here_and_another_cell_is(recorded, tmp_path):
    """A trained poison regenerated on another CPU model can run one outer iteration more or less
    (EM, PUE), or stop alike with other bytes: another poison, whose cells may move by 5 to 20 points
    (benchmarks/README.md).
    The audit shows those values as ``another poison``, neither passes nor fails them, and draws the
    next cell in its order in their place; on the record's own CPU model it is a failure."""
    recs = records(recorded)
    em = next(r for r in recs if r["attack"] == "em-small" and r["defense"] == "none")
    here = em["numerics"]["device_name"]
    real = em["poison_meta"]["outer_iterations"]
    flipped = {**em, "numerics": {**em["numerics"], "device_name": "Another CPU"},
               "poison_meta": {**em["poison_meta"], "outer_iterations": real + 1},
               "metrics": {**em["metrics"], "accuracy": em["metrics"]["accuracy"] + 0.09}}  # 9 points off
    clean = next(r for r in recs if r["attack"] == "clean" and r["defense"] == "none")
    root = tmp_path / "r"
    (root / "cells").mkdir(parents=True)
    for r in (flipped, clean):
        (root / "cells" / f"{r['key']}.json").write_text(json.dumps(r))
    seed = next(s for s in (f"s{i}" for i in range(100))  # a seed that draws the EM cell first
                if choose(candidates([flipped, clean])[0], 1, 3600, s)[0][0].record["key"] == em["key"])
    p = bench("audit", str(root), "--cells", "1", "--budget", "60", "--seed", seed, "--json", str(tmp_path / "a.json"))
    assert p.returncode == 0, p.stdout + p.stderr
    line = next(x for x in p.stdout.splitlines() if x.startswith("em-small × sl × none"))
    assert "another poison" in line and "DIFFERS" not in line and line.split()[-6:-3] == [f"{100 * flipped['metrics']['accuracy']:.4g}", "–", "–"], line
    why = next(x for x in p.stdout.splitlines() if "not checked here" in x)
    assert f"outer_iterations {real + 1} -> {real}" in why and f"this {here}" in why and "audit it on a Another CPU" in why, why
    # its poison was regenerated, its victim not trained (the poison alone shows it is another)
    assert "its victim not trained" in p.stderr and "[1] em-small" not in p.stderr and "[1] clean" in p.stderr, p.stderr
    assert "1 cells recomputed, 1 poisons regenerated only (another poison)" in p.stdout  # the clean cell was drawn in its place ...
    assert any(x.startswith("clean × sl × none") and "identical" in x for x in p.stdout.splitlines()), p.stdout
    assert "1 of 1 values identical to the record (1 cells not checkable on this CPU: another poison)" in p.stdout
    out = json.loads((tmp_path / "a.json").read_text())
    assert out["ok"] and list(out["unverifiable"]) == ["em-small × sl × none (seed 0)"]
    # ... when it fits: the victim not trained gives its recorded cost back (EM: poison 10 s + victim
    # 100 s recorded, a budget of 140 s: 130 s left for the next cell); with no budget left for the
    # next cell, the audit checks nothing and says so
    timed = {**flipped, "wall_s": 100.0, "timing": {}, "poison_meta": {**flipped["poison_meta"], "wall_s": 10.0}}
    (root / "cells" / f"{em['key']}.json").write_text(json.dumps(timed))
    for clean_s, drawn in ((120.0, True), (200.0, False)):
        (root / "cells" / f"{clean['key']}.json").write_text(json.dumps({**clean, "wall_s": clean_s, "timing": {}}))
        p = bench("audit", str(root), "--cells", "1", "--budget", f"{140 / 60:.6f}", "--seed", seed)
        assert p.returncode == 0 and f"{int(drawn)} cells recomputed, 1 poisons regenerated only" in p.stdout, p.stdout
        assert f"{int(drawn)} of {int(drawn)} values identical" in p.stdout, p.stdout
    (root / "cells" / f"{clean['key']}.json").write_text(json.dumps(clean))
    # a CPU of the same name whose torch dispatched to another instruction set is another CPU too (two
    # EPYC generations: AVX-512 and AVX2 kernels round differently, as the PUE cell that failed an audit showed)
    other_isa = {**flipped, "numerics": {**em["numerics"], "cpu_capability": "AVX9000"}}
    (root / "cells" / f"{em['key']}.json").write_text(json.dumps(other_isa))
    p = bench("audit", str(root), "--cells", "1", "--budget", "60", "--seed", seed)
    assert p.returncode == 0 and f"audit it on a {here} (AVX9000)" in p.stdout, p.stdout
    # the same outcomes but other bytes, on another CPU: another poison too (PUE x ueraser-lite moved
    # 20 points so between an AMD EPYC (AVX2) and an Intel Xeon (AVX-512) with four outer iterations each)
    bytes_only = {**em, "numerics": {**em["numerics"], "device_name": "Another CPU"},
                  "poison_meta": {**em["poison_meta"], "x_sha256": "0" * 64},
                  "metrics": {**em["metrics"], "accuracy": em["metrics"]["accuracy"] + 0.2}}
    (root / "cells" / f"{em['key']}.json").write_text(json.dumps(bytes_only))
    p = bench("audit", str(root), "--cells", "1", "--budget", "60", "--seed", seed)
    assert p.returncode == 0 and "another poison" in p.stdout and "x_sha256 '000000000000' -> '" in p.stdout, p.stdout
    # ... and on the record's own CPU model other bytes are a failure
    (root / "cells" / f"{em['key']}.json").write_text(json.dumps({**bytes_only, "numerics": em["numerics"]}))
    p = bench("audit", str(root), "--cells", "1", "--budget", "60", "--seed", seed)
    assert p.returncode == 1 and "audit FAILED: 1 values beyond tolerance" in p.stdout, p.stdout
    # the same flip on the record's own CPU model is a failure, and so is it under --strict
    same = {**flipped, "numerics": em["numerics"]}
    (root / "cells" / f"{em['key']}.json").write_text(json.dumps(same))
    p = bench("audit", str(root), "--cells", "1", "--budget", "60", "--seed", seed)
    assert p.returncode == 1 and "another poison" not in p.stdout and "audit FAILED: 1 values beyond tolerance" in p.stdout, p.stdout
    (root / "cells" / f"{em['key']}.json").write_text(json.dumps(flipped))
    p = bench("audit", str(root), "--cells", "1", "--budget", "60", "--seed", seed, "--strict")
    assert p.returncode == 1 and "another poison" not in p.stdout, p.stdout


def test_a_poison_that_reused_another_jobs_artifact_is_priced_with_it(tmp_path):
    """CP-C starts from the class-wise delta CP-S made (cached): its own generation takes a moment,
    but the audit, recomputing it alone, makes that delta again. The poison records what it read
    (``poison_meta.reads``, with the seconds each took to make) and the audit prices it in; a record
    from before ``reads`` whose poison says it reused something (``classwise_cached``) has no known
    cost and is skipped, named, rather than priced at its moment."""
    m = {"name": "reads", "dataset": {"name": "digits", "subset": 200}, "profile": "smoke", "seeds": [0],
         "attacks": ["cp", {"name": "cp", "label": "cp-c", "params": {"mode": "classwise"}}], "victims": ["sl"], "defenses": ["none"]}
    Runner(resolve(parse_matrix(m), get_registry()), tmp_path / "res", progress=False, log=lambda m: None).run()
    recs = {r["attack"]: r for r in records(tmp_path / "res")}
    cpc = recs["cp-c"]["poison_meta"]
    assert cpc["classwise_cached"] and len(cpc["reads"]) == 1, cpc  # the class-wise delta, and nothing else
    made = sum(a["created_s"] for a in cpc["reads"])
    assert made > 0 and recs["cp"]["poison_meta"]["reads"] == []  # CP-S made the delta itself
    priced = {c.record["attack"]: c for c in candidates(list(recs.values()))[0]}
    assert priced["cp-c"].poison_s == pytest.approx(cpc["wall_s"] + made) and not priced["cp-c"].unpriced
    # the same record before poisons kept their reads
    old = {**recs["cp-c"], "poison_meta": {k: v for k, v in cpc.items() if k != "reads"}}
    (c,) = candidates([old])[0]
    assert c.poison_s == cpc["wall_s"] and c.unpriced == "classwise_cached"
    chosen, skipped = choose([c], 1, 10_000, "s")
    assert not chosen and "reused an artifact made by another job (classwise_cached)" in skipped[0][1]


def test_a_poison_that_cannot_be_regenerated_is_an_audit_error_not_a_crash(recorded, monkeypatch):
    """The poison is regenerated before the victim: a broken attack plugin there is one error line of
    the audit (the cell is not recomputed, nothing compared), as a cell that fails would be."""
    from benchmark.audit import audit

    def broken(self, job):
        raise RuntimeError("broken attack plugin")

    monkeypatch.setattr(Runner, "poison", broken)
    res = audit(recorded, cells=1, budget_min=60, seed="s0", log=lambda m: None)
    assert not res.ok and not res.comparisons
    assert len(res.errors) == 1 and res.errors[0].endswith("its poison could not be regenerated: broken attack plugin"), res.errors


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        ({"wall_s": "slow"}, "its wall_s is not a number ('slow')"),
        ({"timing": [1]}, "its timing is a list, not a mapping"),
        ({"poison_meta": "x"}, "its poison_meta is a str, not a mapping"),
        ({"provenance": 3}, "its provenance is a int, not a mapping"),
        ({"timing": {"artifacts": [{"created_s": "x"}]}}, "its timing.artifacts[].created_s is not a number ('x')"),
    ],
)
def test_a_damaged_record_is_listed_as_unauditable_not_a_crash(recorded, edit, why):
    recs = records(recorded)
    broken = {**recs[0], **edit}
    ok, bad = candidates([broken, *recs[1:]])
    assert [(r["key"], w) for r, w in bad] == [(broken["key"], f"a damaged record: {why}")]
    assert len(ok) == len(recs) - 1
    assert candidates([{**recs[0], "provenance": None, "spec": None}])[0][0].poison == ""  # absent blocks are not damage


def test_records_no_audit_can_check_fail_the_audit(recorded, tmp_path):
    """A record the tables and claims read but the audit cannot rebuild (a damaged field, specs
    removed, no key) was only logged, and a tampered value hid behind it: now each is an error."""
    recs = records(recorded)
    (tmp_path / "cells").mkdir()
    for r in recs:
        (tmp_path / "cells" / f"{r['key']}.json").write_text(json.dumps(r))
    hidden = {**recs[0], "timing": "x", "metrics": {"accuracy": 0.01}}
    (tmp_path / "cells" / f"{hidden['key']}.json").write_text(json.dumps(hidden))
    keyless = {k: v for k, v in recs[1].items() if k != "key"}
    (tmp_path / "cells" / "copy.json").write_text(json.dumps(keyless))
    from benchmark.audit import audit

    res = audit(tmp_path, cells=0, budget_min=60, seed="s0", log=lambda m: None)
    assert not res.ok and len(res.errors) == 2, res.errors
    assert any(f"[{hidden['key']}]: cannot be audited: a damaged record: its timing is a str" in e for e in res.errors)
    assert any("[None]: cannot be audited: the record names no cell key" in e for e in res.errors)


def test_an_audit_that_draws_nothing_fails_and_keep_must_be_a_new_directory(recorded, tmp_path):
    p = bench("audit", str(recorded), "--cells", "0")
    assert p.returncode == 1 and "audit FAILED: it checked nothing (no finished record to draw, or --cells 0)" in p.stdout
    (tmp_path / "cells").mkdir()
    p = bench("audit", str(tmp_path))
    assert p.returncode == 1 and "it checked nothing" in p.stdout
    p = bench("audit", str(recorded), "--keep", str(recorded))
    assert p.returncode == 2 and "already holds records: the audit would find its cells done" in p.stderr


def test_audit_json_goes_into_a_folder_it_creates(recorded, tmp_path):
    from benchmark.cli import main

    out = tmp_path / "new" / "audit.json"
    assert main(["audit", str(recorded), "--cells", "0", "--json", str(out)]) == 1  # it checked nothing: written all the same
    assert json.loads(out.read_text())["seed"] == "0"


def test_a_cell_on_a_carved_test_split_rebuilds_to_its_key_and_recomputes(tmp_path):
    """Data with a training split only (``dataset.test_from_train``): the audit rebuilds the same
    split from the record and recomputes the same value."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (120, 8, 8, 1), dtype=np.uint8)
    y = np.arange(120) % 3
    x[y == 1, :4] //= 4  # learnable classes
    x[y == 2, 4:] //= 4
    np.savez(tmp_path / "train-only.npz", x_train=x, y_train=y)
    m = {**MATRIX, "dataset": {"name": "npz", "path": str(tmp_path / "train-only.npz"), "test_from_train": "25%"},
         "attacks": ["clean"], "defenses": ["none"]}
    root = tmp_path / "res"
    Runner(resolve(parse_matrix(m), get_registry()), root, progress=False, log=lambda m: None).run()
    (rec,) = records(root)
    assert rec["dataset_spec"]["test_from_train"] == "25%" and rec["status"] == "ok"
    assert rebuild(rec).matrix.dataset.test_from_train == "25%"  # rebuild checks the key too
    p = bench("audit", str(root), "--cells", "1", "--budget", "60", "--strict")
    assert p.returncode == 0 and "1 of 1 values identical to the record" in p.stdout, p.stdout + p.stderr
