"""The training trace: events, subscribers, what the runner records, who may emit."""

from __future__ import annotations

import math
import sys

import pytest
import torch

from benchmark.config import parse_matrix, resolve
from benchmark.interfaces import RunContext
from benchmark.registry import get_registry
from benchmark.runner import Runner
from benchmark.ssl.probe import ProbeRecipe, fit_linear
from benchmark.trace import CurveRecorder, EpochEvent, Trace

# ----------------------------------------------------------------------------------- the trace


def test_emit_calls_subscribers_in_order_and_unsubscribe_removes_one():
    trace, calls = Trace(), []
    assert not trace.active
    stop_a = trace.subscribe(lambda e: calls.append(("a", e.epoch)))
    trace.subscribe(lambda e: calls.append(("b", e.epoch)))
    assert trace.active
    trace.emit(EpochEvent("supervised", 1, 2, 0.5))
    stop_a()
    stop_a()  # twice is harmless
    trace.emit(EpochEvent("supervised", 2, 2, 0.4))
    assert calls == [("a", 1), ("b", 1), ("b", 2)]


def test_numbers_are_json_ready_without_the_model():
    e = EpochEvent("pretrain", 3, 10, 1.23456789, lr=0.1, model=torch.nn.Linear(2, 2))
    assert e.numbers() == {"phase": "pretrain", "epoch": 3, "epochs": 10, "loss": 1.234568, "accuracy": None, "lr": 0.1}
    rec = CurveRecorder()
    rec(e)
    assert rec.events == [e.numbers()]


def test_the_probe_emits_one_event_per_epoch_with_its_training_loss_and_accuracy():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(60, 5, generator=g)
    y = (feats[:, 0] > 0).long()
    trace, rec = Trace(), CurveRecorder()
    trace.subscribe(rec)
    recipe = ProbeRecipe(epochs=4, batch_size=16, lr=0.5)
    torch.manual_seed(0)  # the layer's initialization
    layer = fit_linear(feats, y, 2, recipe, torch.Generator().manual_seed(1), trace)
    assert [(e["phase"], e["epoch"], e["epochs"]) for e in rec.events] == [("probe", i, 4) for i in range(1, 5)]
    assert rec.events[-1]["loss"] < rec.events[0]["loss"] and rec.events[-1]["accuracy"] > 0.8
    # emitting changes nothing: the same layer without a trace
    torch.manual_seed(0)
    plain = fit_linear(feats, y, 2, recipe, torch.Generator().manual_seed(1))
    assert torch.equal(plain.weight, layer.weight) and torch.equal(plain.bias, layer.bias)


# ------------------------------------------------------- a victim with its own loop, a defense that trains

PLUGINS = '''
import torch
import torch.nn.functional as F
from benchmark import Defense, Victim, build_classifier, hookimpl
from benchmark.trace import EpochEvent
from benchmark.training import SGDRecipe, train_supervised


class OwnLoop(Victim):
    """A third-party victim with its own training loop (full-batch gradient descent)."""
    name = "own-loop"
    def fit(self, train, ctx, hooks):
        model = build_classifier("small-cnn", train.shape[0], train.num_classes, *train.mean_std(), ctx.device)
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        x, y = train.x.float() / 255, train.y
        for epoch in range(3):
            model.train()
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            acc = (logits.argmax(1) == y).float().mean().item()
            ctx.trace.emit(EpochEvent("supervised", epoch + 1, 3, loss.item(), acc, 0.05, model))
        return model.eval()


class Trains(Defense):
    """A data-stage defense that trains a model of its own (say, a denoiser) with the shared loop."""
    name = "trains"
    stage = "data"
    def transform(self, train, ctx):
        model = build_classifier("small-cnn", train.shape[0], train.num_classes, *train.mean_std(), ctx.device)
        train_supervised(model, train, SGDRecipe(epochs=4, batch_size=32), ctx)
        return train


@hookimpl
def register_victims():
    return [OwnLoop]

@hookimpl
def register_defenses():
    return [Trains]
'''


@pytest.fixture
def own_plugins(tmp_path, monkeypatch):
    (tmp_path / "trace_plugins.py").write_text(PLUGINS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "trace_plugins", raising=False)
    from benchmark.registry import DEFAULT_PLUGINS

    monkeypatch.setenv("UEBENCH_PLUGINS", ",".join([*DEFAULT_PLUGINS, "trace_plugins"]))


def test_a_victim_with_its_own_loop_gives_curves_and_ud_and_a_defense_s_training_stays_out(tmp_path, own_plugins):
    m = parse_matrix(
        {
            "name": "t",
            "dataset": {"name": "digits", "subset": 120},
            "profile": "smoke",
            "attacks": ["clean", "random-noise"],
            "victims": ["own-loop", "simclr"],
            "defenses": ["none", "trains"],
            "metrics": ["accuracy", "unlearnable-distance"],
        }
    )
    r = Runner(resolve(m, get_registry()), tmp_path / "res", log=lambda s: None, progress=False)
    assert r.run().exit_code == 0
    recs = {(x["attack"], x["victim"], x["defense"]): x for x in r.store.records()}
    for attack in ("clean", "random-noise"):
        for defense in ("none", "trains"):
            rec = recs[(attack, "own-loop", defense)]
            # the victim's 3 epochs only: the defense's 4-epoch model is not in the cell's trace
            assert [(c["phase"], c["epoch"]) for c in rec["curves"]] == [("supervised", e) for e in (1, 2, 3)]
            assert all(0 <= c["accuracy"] <= 1 and c["loss"] > 0 for c in rec["curves"])
            assert math.isfinite(rec["metrics"]["ud"]) and rec["metrics"]["ud_lp_clean"] > 0
        assert recs[("clean", "own-loop", "none")]["metrics"]["ud"] == 1.0
        # a contrastive victim: pretraining and probe epochs in its curves; no supervised loop, so no UD
        ssl = recs[(attack, "simclr", "none")]
        assert {c["phase"] for c in ssl["curves"]} == {"pretrain", "probe"}
        assert math.isnan(ssl["metrics"]["ud"]) and 0 <= ssl["metrics"]["accuracy"] <= 1


def test_run_context_trace_is_per_context():
    a, b = RunContext(), RunContext()
    assert a.trace is not b.trace
