"""What the runner checks of every plugin's output (benchmark/output_checks.py): each broken output
fails its cell with one line naming the plugin and the contract, where it used to give an "ok" cell
with a plausible number."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import Budget, Poison, RunContext, release
from benchmark.output_checks import logits_problem, loss_problem, metric_problem, poison_problem, transform_problem
from tests.test_bad_inputs import run_cli, write


def data(n: int = 6, k: int = 3) -> ImageDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, 4, 4), generator=g, dtype=torch.uint8)
    return ImageDataset(x, torch.arange(n) % k, tuple("abcdefghij"[:k]))


def test_a_poison_is_checked_for_shape_budget_kind_release_and_meta():
    train, budget = data(), Budget("linf", 8 / 255)
    delta = torch.full((6, 3, 4, 4), 4 / 255)
    good = Poison(x=release(train.x, delta), delta=delta, kind="samplewise", meta={"a": [1.0]})
    assert poison_problem(train, good, budget) is None
    assert poison_problem(train, Poison(x=train.x.clone()), Budget("none", 0)) is None
    assert poison_problem(train, train.x, budget) == "generate returned Tensor, not a benchmark.Poison"
    assert poison_problem(train, Poison(x=train.x[:5]), budget) == (
        "poison.x is torch.uint8 (5, 3, 4, 4), expected torch.uint8 (6, 3, 4, 4)")  # a shape, not a budget breach
    assert poison_problem(train, Poison(x=train.x.float()), budget) == (
        "poison.x is torch.float32 (6, 3, 4, 4), expected torch.uint8 (6, 3, 4, 4)")
    far = release(train.x, torch.full((6, 3, 4, 4), 0.5))
    assert poison_problem(train, Poison(x=far), budget).startswith("broke its budget L-inf 8/255: linf distance 128 of image 0 exceeds the budget 8")
    assert poison_problem(train, Poison(x=good.x, delta=delta, kind="sample-wise"), budget) == (
        "poison.kind is 'sample-wise': samplewise, classwise or none")
    assert poison_problem(train, Poison(x=good.x, delta=delta[:3], kind="classwise"), budget) is None  # one delta per class
    assert poison_problem(train, Poison(x=good.x, delta=delta, kind="classwise"), budget) == (
        "a classwise delta has shape (6, 3, 4, 4), expected (3, 3, 4, 4)")
    other = Poison(x=release(train.x, -delta), delta=delta, kind="samplewise")  # x is not what delta releases
    assert poison_problem(train, other, budget).startswith("poison.x differs from release(train.x, delta) by up to")
    assert poison_problem(train, Poison(x=good.x, meta={"t": torch.tensor(1.0)}), budget).startswith("poison.meta is not JSON")
    assert poison_problem(train, Poison(x=good.x, meta=[1, 2]), budget) == "poison.meta is list, not a dict"
    assert poison_problem(train, Poison(x=good.x, meta={"kind": "gaussian"}), budget).startswith(
        "poison.meta uses the key 'kind', which uebench sets itself")


def test_a_transform_keeps_the_shape_labels_and_order():
    train = data()
    assert transform_problem(train, train.with_images(255 - train.x)) is None
    assert transform_problem(train, train.x) == "transform returned Tensor, not a benchmark.ImageDataset"
    cropped = ImageDataset(train.x[:, :, :3, :3].contiguous(), train.y, train.classes)
    assert transform_problem(train, cropped) == "transform returned torch.uint8 (6, 3, 3, 3), expected torch.uint8 (6, 3, 4, 4)"
    relabelled = ImageDataset(train.x, torch.zeros_like(train.y), train.classes)
    assert transform_problem(train, relabelled) == "transform changed the labels or the order of the images (it may change pixels only)"


def test_a_model_gives_one_logit_per_class_and_keeps_its_mode():
    test = data()
    ctx = RunContext(seed=0)
    good = nn.Sequential(nn.Flatten(), nn.Linear(48, 3), nn.Dropout(0.5)).train()
    good[1].eval()  # a frozen part: every submodule keeps its own mode
    assert logits_problem(good, test, ctx, "fit") is None
    assert [m.training for m in good.modules()] == [True, True, False, True]
    narrow = nn.Sequential(nn.Flatten(), nn.Linear(48, 7))
    assert logits_problem(narrow, test, ctx, "fit") == "the model fit returned gives Tensor (2, 7) for 2 images, expected logits (2, 3)"
    assert logits_problem(None, test, ctx, "repair") == "repair returned NoneType, not an nn.Module"
    fixed = nn.Sequential(nn.Flatten(), nn.Unflatten(0, (4, 1)))  # only takes batches of 4
    assert logits_problem(fixed, test, ctx, "fit").startswith("the model fit returned fails on 2 test images: RuntimeError: ")


def test_metric_values_are_real_numbers_of_known_units():
    unit = {"acc": "fraction", "loss": "number", "pct": "percentage"}.__getitem__
    assert metric_problem({"acc": 0.5, "loss": 3.0}, unit) is None
    assert metric_problem({"acc": math.nan}, unit) is None
    assert metric_problem(0.5, unit) == "compute returned float 0.5, expected a dict of str to float"
    assert metric_problem({}, unit) == "compute returned dict {}, expected a dict of str to float"
    assert metric_problem({"acc": "high"}, unit) == "compute returned acc = 'high' (str), expected a float"
    assert metric_problem({"acc": True}, unit) == "compute returned acc = True (bool), expected a float"
    assert metric_problem({"acc": 3.0}, unit) == "acc = 3 is declared a fraction but is outside [0, 1]"
    assert metric_problem({"pct": 3.0}, unit) == "the unit of 'pct' is 'percentage': one of fraction, percent, ratio, number"
    assert metric_problem({"loss": math.inf}, unit) == "loss is infinite: return NaN where a value is undefined"
    assert metric_problem({"loss": 10**400}, unit) == "loss is infinite: return NaN where a value is undefined"


def test_a_non_finite_training_loss_is_a_diverged_training():
    curve = [{"phase": "supervised", "epoch": 1, "epochs": 2, "loss": 2.3}, {"phase": "supervised", "epoch": 2, "epochs": 2, "loss": 0.5}]
    assert loss_problem(curve) is None and loss_problem([]) is None
    assert loss_problem([*curve, {"phase": "repair", "epoch": 1, "epochs": 5, "loss": None}]).startswith(
        "the training loss is NaN at epoch 1 of 5 (repair)")  # NaN is stored as null
    assert loss_problem([{**curve[0], "loss": math.inf}]).startswith("the training loss is inf at epoch 1 of 2")


BROKEN_OUTPUTS = '''
import torch
from torch import nn
from benchmark import Defense, Metric, Params, TrainHooks, Victim, hookimpl
from benchmark.data.dataset import ImageDataset
from benchmark.trace import EpochEvent
from benchmark.training import train_supervised


class Relabel(Defense):
    "Sets every label to 0 (a broken data-stage defense)."
    name, stage = "relabel", "data"
    def transform(self, train, ctx):
        return ImageDataset(train.x.clone(), torch.zeros_like(train.y), train.classes, train.index)


class NanHooks(TrainHooks):
    def loss(self, model, x, y, criterion):
        return criterion(model(x), y) * float("nan")


class NanLoss(Defense):
    "A training hook whose loss is NaN."
    name, stage = "nan-loss", "train"
    def train_hooks(self, ctx):
        return NanHooks()


class InPlace(Defense):
    "Squeezes the bits of the images it is given, in place."
    name, stage = "in-place", "data"
    def transform(self, train, ctx):
        train.x.bitwise_and_(0xC0)
        return train


class EveryVictim(Defense):
    "A train-stage defense that claims to apply to contrastive victims too."
    name, stage = "every-victim", "train"
    def train_hooks(self, ctx):
        return TrainHooks()


class Narrow(Victim):
    "A classifier with 7 logits for the data's 10 classes."
    name = "narrow"
    def fit(self, train, ctx, hooks):
        return nn.Sequential(nn.Flatten(), nn.LazyLinear(7))


class NoHooks(Victim):
    "Trains (it reports an epoch, as training loops do) without ever calling hooks.loss."
    name = "no-hooks"
    def fit(self, train, ctx, hooks):
        model = nn.Sequential(nn.Flatten(), nn.LazyLinear(train.num_classes))
        with torch.no_grad():
            loss = nn.functional.cross_entropy(model(train.float_batch(torch.arange(2))), train.y[:2])
        ctx.trace.emit(EpochEvent("supervised", 1, 1, loss.item()))
        return model


class OnceHooks(Victim):
    "Trains two epochs (it reports them) but calls hooks.loss on one batch only."
    name = "once-hooks"
    def fit(self, train, ctx, hooks):
        model = nn.Sequential(nn.Flatten(), nn.LazyLinear(train.num_classes))
        loss = hooks.loss(model, train.float_batch(torch.arange(2)), train.y[:2], nn.functional.cross_entropy)
        for epoch in (1, 2):
            ctx.trace.emit(EpochEvent("supervised", epoch, 2, loss.item()))
        return model


class Scalar(Metric):
    "Returns a bare float."
    name = "scalar"
    def compute(self, cell, ctx):
        return 0.5


class Crash(Metric):
    "Raises."
    name = "crash"
    def compute(self, cell, ctx):
        raise KeyError("no such curve")


class Collide(Metric):
    "Returns another metric's output name."
    name = "collide"
    def compute(self, cell, ctx):
        return {"accuracy": 0.0}


class Triple(Metric):
    "A fraction of 3."
    name, unit = "triple", "fraction"
    def compute(self, cell, ctx):
        return {"triple": 3.0}


@hookimpl
def register_defenses():
    return [Relabel, NanLoss, InPlace, EveryVictim]

@hookimpl
def register_victims():
    return [Narrow, NoHooks, OnceHooks]

@hookimpl
def register_metrics():
    return [Scalar, Crash, Triple, Collide]
'''


@pytest.mark.parametrize(
    ("matrix", "error"),
    [
        ("victims: [sl]\ndefenses: [relabel]", "defense 'relabel' transform changed the labels or the order of the images"),
        ("victims: [sl]\ndefenses: [nan-loss]", "victim 'sl' with defense 'nan-loss': the training loss is NaN at epoch 1 of 2 (supervised)"),
        ("victims: [narrow]", "victim 'narrow' the model fit returned gives Tensor (2, 7) for 2 images, expected logits (2, 10)"),
        ("victims: [no-hooks]\ndefenses: [cutout]", "victim 'no-hooks' never called hooks.loss, so the train-stage defense 'cutout' changed nothing"),
        ("victims: [once-hooks]\ndefenses: [cutout]", ("victim 'once-hooks' called hooks.loss 1 time in 2 supervised epochs, "
         "so the train-stage defense 'cutout' missed training steps")),
        ("victims: [sl]\nmetrics: [accuracy, scalar]", "metric 'scalar' compute returned float 0.5, expected a dict of str to float"),
        ("victims: [sl]\nmetrics: [crash]", "metric 'crash' failed: KeyError: 'no such curve'"),
        ("victims: [sl]\nmetrics: [accuracy, collide]", "metric 'collide' returned 'accuracy', which metric 'accuracy' already returned"),
        ("victims: [simclr]\ndefenses: [every-victim]", ("defense 'every-victim' is a train-stage defense, which acts through hooks.loss, "
         "but applies to the contrastive victim 'simclr'")),
        ("victims: [sl]\nmetrics: [triple]", "metric 'triple' triple = 3 is declared a fraction but is outside [0, 1]"),
    ],
    ids=["labels", "nan-loss", "logits", "hooks", "hooks-once", "metric-float", "metric-crash", "metric-collision", "contrastive-hooks", "metric-fraction"],
)
def test_a_broken_plugin_output_fails_its_cell_naming_the_plugin(tmp_path, capsys, monkeypatch, matrix, error):
    (tmp_path / "broken_outputs.py").write_text(BROKEN_OUTPUTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    from benchmark.registry import DEFAULT_PLUGINS

    monkeypatch.setenv("UEBENCH_PLUGINS", ",".join([*DEFAULT_PLUGINS, "broken_outputs"]))
    m = write(tmp_path, "dataset: {name: digits, subset: 100}\nprofile: smoke\nattacks: [clean]\n" + matrix + "\n")
    code, err = run_cli(capsys, "run", str(m), "--results", str(tmp_path / "res"), "--quiet")
    assert code == 1, err
    [record] = [json.loads(p.read_text()) for p in (tmp_path / "res" / "cells").glob("*.json")]
    assert record["status"] == "failed" and record["error"].startswith("PluginError: " + error), record["error"]


def test_a_defense_that_writes_into_the_poison_in_place_fails_and_the_next_cell_trains_on_the_poison(tmp_path, capsys, monkeypatch):
    (tmp_path / "broken_outputs.py").write_text(BROKEN_OUTPUTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    from benchmark.registry import DEFAULT_PLUGINS

    monkeypatch.setenv("UEBENCH_PLUGINS", ",".join([*DEFAULT_PLUGINS, "broken_outputs"]))
    base = "dataset: {name: digits, subset: 100}\nprofile: smoke\nattacks: [random-noise]\nvictims: [sl]\n"
    results = {}
    for name, defenses in (("both", "[in-place, none]"), ("alone", "[none]")):
        m = write(tmp_path, base + f"defenses: {defenses}\n", f"{name}.yaml")
        run_cli(capsys, "run", str(m), "--results", str(tmp_path / name), "--quiet")
        results[name] = {r["defense"]: r for r in (json.loads(p.read_text()) for p in (tmp_path / name / "cells").glob("*.json"))}
    assert results["both"]["in-place"]["error"].startswith(
        "PluginError: defense 'in-place' changed the training set it was given in place (transform must leave its input alone")
    assert results["both"]["none"]["metrics"] == results["alone"]["none"]["metrics"]  # not the squeezed images


def test_an_untrained_victim_under_a_train_stage_defense_is_not_blamed_for_skipping_hooks(tmp_path, capsys):
    m = write(tmp_path, "dataset: {name: digits, subset: 100}\nprofile: smoke\nattacks: [clean]\n"
                        "victims: [{name: sl, params: {epochs: 0}}]\ndefenses: [cutout]\n")
    code, err = run_cli(capsys, "run", str(m), "--results", str(tmp_path / "res"), "--quiet")
    assert code == 0, err


def test_the_plugin_guide_names_every_reserved_meta_key():
    import re

    from benchmark.output_checks import RESERVED_META
    from tests.conftest import REPO

    guide = (REPO / "docs" / "writing-plugins.md").read_text()
    listed = re.search(r"the keys uebench writes itself: (.*?)\.\n", guide, re.DOTALL)
    assert listed is not None
    assert set(re.findall(r"`(\w+)`", listed.group(1))) == set(RESERVED_META)
