"""Conformance checks a plugin author runs on their own plugin (uebench runs them on every
registered plugin in its test suite)::

    from benchmark.testing import check_plugin
    check_plugin(MyAttack)          # raises AssertionError with a message on a contract breach

Each check instantiates the plugin at its ``smoke`` profile and exercises its contract on a tiny
synthetic dataset (uint8 ``[N, 3, 16, 16]``, 4 classes) on the CPU.
"""

from __future__ import annotations

import tempfile

import torch
from torch import nn

from benchmark.data.dataset import DataSplits, ImageDataset
from benchmark.interfaces import UNITS, Attack, CellArtifacts, Defense, Metric, Poison, RunContext, TrainHooks, Victim
from benchmark.params import resolve_params
from benchmark.plugin import Plugin
from benchmark.store import ArtifactCache


def synthetic_dataset(n: int = 64, classes: int = 4, size: int = 16, seed: int = 0) -> ImageDataset:
    """Learnable toy images: a class-dependent colour plus noise. uint8 ``[n, 3, size, size]``."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    base = torch.rand(classes, 3, 1, 1, generator=g) * 200 + 25
    x = base[y] + torch.randn(n, 3, size, size, generator=g) * 25
    return ImageDataset(x.clamp(0, 255).round().to(torch.uint8), y, tuple(f"class{i}" for i in range(classes)))


def smoke_instance(cls: type[Plugin]) -> Plugin:
    return cls(resolve_params(cls, "smoke", {}))


def smoke_context(seed: int = 0) -> RunContext:
    return RunContext(device=torch.device("cpu"), seed=seed, profile="smoke", cache=ArtifactCache(tempfile.mkdtemp(prefix="uebench-conf-")))


def check_attack(cls: type[Attack], data: ImageDataset | None = None) -> Poison:
    """Shape, dtype, budget, determinism for one seed."""
    data = data or synthetic_dataset()
    attack = smoke_instance(cls)
    torch.manual_seed(0)
    p = attack.generate(data, smoke_context())
    assert isinstance(p, Poison), f"{cls.name}.generate must return a Poison, got {type(p).__name__}"
    assert p.x.dtype == torch.uint8 and p.x.shape == data.x.shape, f"{cls.name}: poison x must be uint8 {tuple(data.x.shape)}"
    bad = attack.budget().violation(data.x, p.x)
    assert bad is None, f"{cls.name}: {bad}"
    if p.delta is not None and attack.budget().norm == "linf":
        assert p.delta.abs().max() <= attack.budget().eps + 1e-6, f"{cls.name}: |delta| exceeds eps"
    torch.manual_seed(0)
    again = attack.generate(data, smoke_context())
    assert torch.equal(again.x, p.x), f"{cls.name}: two runs with the same seed differ"
    return p


def check_victim(cls: type[Victim], data: ImageDataset | None = None) -> nn.Module:
    data = data or synthetic_dataset()
    victim = smoke_instance(cls)
    torch.manual_seed(0)
    model = victim.fit(data, smoke_context(), TrainHooks())
    assert isinstance(model, nn.Module), f"{cls.name}.fit must return an nn.Module"
    with torch.no_grad():
        out = model.eval()(data.float_batch(torch.arange(4)))
    assert out.shape == (4, data.num_classes), f"{cls.name}: logits must be [B, {data.num_classes}], got {tuple(out.shape)}"
    return model


def check_defense(cls: type[Defense], data: ImageDataset | None = None) -> None:
    data = data or synthetic_dataset()
    defense = smoke_instance(cls)
    ctx = smoke_context()
    assert defense.stage in ("none", "data", "train", "model"), f"{cls.name}: unknown stage {defense.stage!r}"
    out = defense.transform(data, ctx)
    assert out.x.dtype == torch.uint8 and out.x.shape == data.x.shape, f"{cls.name}: transform must keep uint8 {tuple(data.x.shape)}"
    assert torch.equal(out.y, data.y), f"{cls.name}: transform must not change labels"
    from benchmark.models import build_classifier

    model = build_classifier("small-cnn", 3, data.num_classes, [0.5] * 3, [0.25] * 3)
    x, y = data.float_batch(torch.arange(8)), data.y[:8]
    loss = defense.train_hooks(ctx).loss(model.train(), x, y, nn.functional.cross_entropy)
    assert loss.ndim == 0, f"{cls.name}: train_hooks().loss must return a scalar"
    if defense.stage == "model":
        repaired = defense.repair(model.eval(), data, ctx)
        assert isinstance(repaired, nn.Module)


def check_metric(cls: type[Metric], data: ImageDataset | None = None) -> dict[str, float]:
    from benchmark.models import build_classifier
    from plugins.defenses.none import NoDefense
    from plugins.victims.sl import SL

    data = data or synthetic_dataset()
    metric = smoke_instance(cls)
    model = build_classifier("small-cnn", 3, data.num_classes, [0.5] * 3, [0.25] * 3).eval()
    cell = CellArtifacts(model, DataSplits(data, data, data), data, Poison(x=data.x), SL(), NoDefense())
    out = metric.compute(cell, smoke_context())
    assert isinstance(out, dict) and out, f"{cls.name}.compute must return a non-empty dict"
    assert all(isinstance(v, float) for v in out.values()), f"{cls.name}: metric values must be floats"
    for key in out:
        assert cls.unit_of(key) in UNITS, f"{cls.name}: unit of {key!r} is {cls.unit_of(key)!r}; allowed: {', '.join(UNITS)}"
        if cls.unit_of(key) == "fraction":  # NaN allowed (no value)
            assert out[key] != out[key] or 0.0 <= out[key] <= 1.0, f"{cls.name}: {key} = {out[key]} is declared a fraction but is outside [0, 1]"
    return out


def check_plugin(cls: type[Plugin]) -> object:
    """Run the conformance check matching ``cls.kind``."""
    assert getattr(cls, "name", None), "a plugin needs a name"
    assert cls.__doc__, f"{cls.name}: a plugin needs a docstring (paper, threat model, shapes)"
    for profile in ("paper", "quick", "smoke"):
        resolve_params(cls, profile, {})
    checks = {"attack": check_attack, "victim": check_victim, "defense": check_defense, "metric": check_metric}
    return checks[cls.kind](cls) if cls.kind in checks else None
