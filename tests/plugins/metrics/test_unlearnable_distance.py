from __future__ import annotations

import json
import math

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from benchmark.config import parse_matrix, resolve
from benchmark.registry import get_registry
from benchmark.runner import Runner
from benchmark.trace import EpochEvent
from plugins.metrics.unlearnable_distance import KEYS, EpochSnapshots, UnlearnableDistance
from plugins.victims.sl import SL

# ------------------------------------------------------------------------------ the listener


def test_snapshots_copy_the_scored_epochs_and_a_new_loop_replaces_the_old():
    model = nn.Linear(2, 2)
    snaps = EpochSnapshots(every=2)
    for e in range(1, 6):
        with torch.no_grad():
            model.weight.fill_(float(e))
        snaps(EpochEvent("supervised", e, 5, loss=1.0 / e, model=model))
        snaps(EpochEvent("pretrain", e, 5, loss=0.0, model=model))  # other phases are ignored
    assert snaps.epochs == [2, 4, 5] and snaps.losses == [0.5, 0.25, 0.2]
    assert [s["weight"][0, 0].item() for s in snaps.states] == [2.0, 4.0, 5.0]  # copies, not the live weights
    snaps(EpochEvent("supervised", 1, 2, loss=0.9, model=model))
    snaps(EpochEvent("supervised", 2, 2, loss=0.8, model=model))
    assert snaps.epochs == [2] and len(snaps) == 1


def test_snapshots_beyond_the_memory_budget_go_to_disk_and_come_back_equal():
    model = nn.Linear(4, 3)  # 15 floats: 60 bytes per snapshot
    snaps = EpochSnapshots(every=1, memory_bytes=130)
    for e in range(1, 5):
        with torch.no_grad():
            model.weight.fill_(float(e))
        snaps(EpochEvent("supervised", e, 4, loss=1.0, model=model))
    assert [type(s).__name__ for s in snaps.states][:2] == ["dict", "dict"] and all(not isinstance(s, dict) for s in snaps.states[2:])
    assert [snaps.state(i)["weight"][0, 0].item() for i in range(4)] == [1.0, 2.0, 3.0, 4.0]
    assert snaps.state(3)["bias"].shape == (3,)


# ----------------------------------------------------------------------------- in the runner


def _runner(tmp_path, name: str, **over) -> Runner:
    m = {
        "name": "ud",
        "dataset": {"name": "digits", "subset": 200},
        "profile": "smoke",
        "seeds": [0],
        "attacks": ["clean", "random-noise"],
        "victims": ["sl"],
        "defenses": ["none"],
        "metrics": ["accuracy", "unlearnable-distance"],
        **over,
    }
    return Runner(resolve(parse_matrix(m), get_registry()), tmp_path / name, log=lambda s: None, progress=False)


@pytest.fixture
def fits(monkeypatch):
    """Counts every training of the ``sl`` victim."""
    calls: list[int] = []
    fit = SL.fit

    def counting(self, train, ctx, hooks):
        calls.append(ctx.seed)
        return fit(self, train, ctx, hooks)

    monkeypatch.setattr(SL, "fit", counting)
    return calls


def _references(r: Runner) -> list[tuple[dict, dict[str, torch.Tensor]]]:
    out = []
    for meta_path in sorted((r.root / "artifacts").glob("*/meta.json")):
        meta = json.loads(meta_path.read_text())
        if meta["spec"]["kind"] == "ud-clean-reference":
            out.append((meta, torch.load(meta_path.parent / "data.pt", weights_only=True)))
    return out


def test_one_clean_reference_per_victim_defense_seed_trained_once_and_equal_to_the_clean_cell(tmp_path, fits):
    # no clean cell: the metric trains the clean run itself, once per (victim, defense, seed)
    a = _runner(tmp_path, "a", attacks=["random-noise", "em"], defenses=["none", "iss-bdr"], seeds=[0, 1])
    assert a.run().exit_code == 0
    assert len(fits) == 8 + 4  # 8 cells + one reference per (defense, seed), not one per cell
    refs = _references(a)
    assert len(refs) == 4 and {m["meta"]["source"] for m, _ in refs} == {"trained by the metric"}
    # the matrix's own clean cell fills the same reference instead of training it again
    fits.clear()
    b = _runner(tmp_path, "b", attacks=["clean", "random-noise", "em"], defenses=["none", "iss-bdr"], seeds=[0, 1])
    assert b.run().exit_code == 0
    assert len(fits) == 12  # the cells only
    refs_b = _references(b)
    assert {m["meta"]["source"] for m, _ in refs_b} == {"the clean cell's run"}
    by_key_a = {m["spec"]["defense"]["name"] + str(m["spec"]["seed"]): t for m, t in refs}
    for m, t in refs_b:  # same spec, same numbers: the metric's clean run is the runner's clean cell
        ta = by_key_a[m["spec"]["defense"]["name"] + str(m["spec"]["seed"])]
        assert torch.equal(t["s_plus"], ta["s_plus"]) and torch.equal(t["s_minus"], ta["s_minus"])
    recs_a = {(x["attack"], x["defense"], x["seed"]): x["metrics"] for x in a.store.records()}
    recs_b = {(x["attack"], x["defense"], x["seed"]): x["metrics"] for x in b.store.records()}
    for k, v in recs_a.items():
        assert recs_b[k]["ud"] == v["ud"] or (math.isnan(v["ud"]) and math.isnan(recs_b[k]["ud"]))
    for d in ("none", "iss-bdr"):
        for seed in (0, 1):
            assert recs_b[("clean", d, seed)]["ud"] == 1.0  # exactly, by construction
            assert recs_b[("clean", d, seed)]["ud_lp"] == recs_b[("clean", d, seed)]["ud_lp_clean"]
    # every other cell notes the reference it read and what making it cost (the clean cell's training
    # and scoring, from before its victim trained): what recomputing that cell alone adds (bench audit)
    timing_b = {(x["attack"], x["defense"], x["seed"]): x["timing"] for x in b.store.records()}
    for (attack, d, seed), t in timing_b.items():
        if attack == "clean":
            assert "artifacts" not in t  # it made the reference, read nothing made by others
            continue
        (read,) = t["artifacts"]
        assert read["kind"] == "ud-clean-reference"
        assert read["created_s"] >= timing_b[("clean", d, seed)]["victim_s"] > 0
    made_by_a = [x["timing"].get("artifacts") for x in a.store.records()]
    assert sum(m is None for m in made_by_a) == 4 and all(m[0]["created_s"] > 0 for m in made_by_a if m)


def test_the_record_holds_numbers_only(tmp_path):
    r = _runner(tmp_path, "res", attacks=["random-noise"])
    assert r.run().exit_code == 0
    (rec,) = r.store.records()
    assert set(rec["metrics"]) == {"accuracy", *KEYS}
    assert all(type(v) is float for v in rec["metrics"].values())
    text = json.dumps(rec)
    assert "tensor" not in text.lower() and len(text) < 20_000
    assert rec["metrics"]["ud_lp_clean"] > 0 and rec["metrics"]["ud_beta"] > 0


def test_params_and_profiles():
    p = UnlearnableDistance.Params()
    assert (p.eps, p.iterations, p.lr_ascent, p.lr_descent, p.every, p.augment, p.reference_loss) == (0.05, 10, 0.1, 0.1, 1, True, "running")
    assert p.scoring_images is None and p.steps is None  # the faithful procedure is the default
    with pytest.raises(ValidationError):
        UnlearnableDistance.Params(every=0)


def test_the_clean_reference_runs_in_the_cells_context_with_a_trace_of_its_own(monkeypatch):
    import dataclasses
    from types import SimpleNamespace

    import plugins.metrics.unlearnable_distance as ud
    from benchmark.interfaces import RunContext

    seen: list[RunContext] = []

    class Stop(Exception):
        pass

    def fake_fit(train, victim, defense, ctx):
        seen.append(ctx)
        torch.rand(3)  # draws from the global generator: must be undone afterwards
        raise Stop

    monkeypatch.setattr(ud, "defend_and_fit", fake_fit)
    ctx = RunContext(seed=3, profile="quick", data_key="abc", precision="bfloat16")
    cell = SimpleNamespace(splits=SimpleNamespace(train=None), victim=SimpleNamespace(display="sl"), defense=SimpleNamespace(display="none"))
    before = torch.get_rng_state()
    with pytest.raises(Stop):
        UnlearnableDistance(UnlearnableDistance.Params()).train_reference(cell, ctx)  # type: ignore[arg-type]
    (rctx,) = seen
    assert torch.equal(torch.get_rng_state(), before)
    assert rctx.trace is not ctx.trace and rctx.trace.active and not ctx.trace.active
    for f in dataclasses.fields(RunContext):  # every other field: the cell's (a field added later included)
        if f.name != "trace":
            assert getattr(rctx, f.name) == getattr(ctx, f.name), f.name
