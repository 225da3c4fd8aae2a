"""The plugin contracts, checked: :func:`check_plugin` runs every check of a plugin's kind at its
``smoke`` profile on a tiny synthetic dataset (uint8 ``[64, 3, 16, 16]``, 4 classes, CPU), then
runs it in a one-cell matrix with the kit's stubs (:func:`benchmark.testing.run_cell`).

A breach raises :class:`ContractError` (an ``AssertionError``) naming the plugin and the contract
(``attack.budget``, ``victim.hooks``...), with the contract's statement; ``docs/writing-plugins.md``
explains each one under the same name.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import torch
from torch import nn

from benchmark.data.dataset import DataSplits, ImageDataset
from benchmark.interfaces import UNITS, Attack, Budget, CellArtifacts, Defense, Metric, Poison, RunContext, TrainHooks, Victim, release
from benchmark.output_checks import RESERVED_META, CountingHooks, hooks_problem
from benchmark.params import PROFILES, Params, resolve_params
from benchmark.plugin import Plugin
from benchmark.store import ArtifactCache
from benchmark.testing.stubs import KitContrastive, KitNone, KitSupervised, synthetic_dataset
from benchmark.trace import CurveRecorder

#: Every contract, by the name a :class:`ContractError` and ``docs/writing-plugins.md`` give it.
CONTRACTS: dict[str, str] = {
    "plugin.registrable": "a subclass of its kind's base class (benchmark.Attack, Victim, Defense, Metric, DatasetSource) "
    "with a `name` (lowercase letters, digits and single hyphens, at most 64 characters) and a `Params` subclass of benchmark.Params whose defaults validate at every profile",
    "plugin.docstring": "the class docstring cites the paper, the threat model (or role), the tensor shapes, the source it follows and every deviation",
    "plugin.version": "`version` is a non-empty string, part of every cache key: bump it whenever results change",
    "plugin.profiles": f"`profiles` names only {', '.join(PROFILES)} and each profile's params validate",
    "attack.poison": "generate(train, ctx) returns a benchmark.Poison",
    "attack.release": "poison.x is uint8 of train.x's shape; with a delta, poison.x == benchmark.release(train.x, delta) "
    "(class-wise: release(train.x, delta[train.y])); the runner checks it on every poison it generates",
    "attack.budget": "every image of poison.x is within attack.budget() of its clean image (the runner checks it on every poison)",
    "attack.alignment": "poison.kind is samplewise, classwise or none; a sample-wise delta is [N, C, H, W] indexed like the "
    "training set, a class-wise one [K, C, H, W] indexed by label (the runner checks the kind and shape on every poison it generates)",
    "attack.meta": "poison.meta is a JSON dict (numbers, strings, lists, dicts) without the keys uebench writes itself "
    "(kind, surrogate, wall_s, reads, numerics, x_sha256, package): it goes into every cell record (the runner checks it)",
    "attack.input": "generate does not change the training set it is given",
    "attack.determinism": "the same seeds give the same poison: randomness comes from ctx.generator(...) or torch's global RNG, "
    "which the runner seeds with the job's seed",
    "victim.model": "fit(train, ctx, hooks) returns an nn.Module mapping float [B, C, H, W] in [0, 1] to logits [B, K] "
    "(the runner checks the logits' shape in every cell)",
    "victim.paradigm": "paradigm is 'supervised' or 'contrastive' (defenses decide where they apply by it)",
    "victim.hooks": "a supervised victim computes every training step's loss through hooks.loss(model, x, y, criterion), "
    "so training-stage defenses apply (the runner checks it whenever a train-stage defense applies)",
    "victim.input": "fit does not change the training set it is given",
    "victim.determinism": "the same seed gives the same model: randomness comes from ctx.generator(...) or torch's global RNG, "
    "which the runner seeds with the cell's seed",
    "defense.stage": "stage is none, data, train or model, and the class overrides exactly the method of its stage "
    "(data: transform, train: train_hooks, model: repair; none: none of them)",
    "defense.transform": "transform returns uint8 images of the same shape with the same labels and indices (the runner "
    "checks these in every cell), does not change its input, and is deterministic for a seed",
    "defense.train-hooks": "train_hooks(ctx).loss(model, x, y, criterion) returns a finite scalar with a gradient for the model",
    "defense.repair": "repair(model, holdout, ctx) returns a model with the same inputs and logits [B, K] "
    "and leaves the hold-out unchanged (the runner checks both in every cell)",
    "defense.applies-to": "applies_to(victim) returns a bool (False: the cell is n/a, not an error)",
    "metric.values": "compute(cell, ctx) returns a non-empty dict of output name -> float (the runner checks it in every cell)",
    "metric.units": f"every output's unit (Metric.unit, Metric.units) is one of {', '.join(UNITS)}; a fraction is in [0, 1] or NaN",
    "metric.audit-tolerance": "audit_tolerance maps output keys of compute (or '*') to finite numbers >= 0",
    "metric.observer": "observer(ctx) returns None or a callable taking a benchmark.trace.EpochEvent",
    "metric.determinism": "compute on the same cell gives the same values",
    "cell.runs": "the plugin runs in a one-cell matrix through the real runner (record ok, or n/a for a defense that does not apply)",
}


class ContractError(AssertionError):
    """A plugin breaks a contract: ``contract`` is its name in :data:`CONTRACTS`."""

    def __init__(self, cls: type, contract: str, detail: str) -> None:
        self.contract = contract
        self.plugin = cls
        kind, name = getattr(cls, "kind", "plugin"), getattr(cls, "name", None) or cls.__qualname__
        super().__init__(
            f"{kind} {name!r} ({cls.__module__}.{cls.__qualname__}) breaks contract {contract!r}: {detail}\n"
            f"  contract {contract}: {CONTRACTS[contract]} (docs/writing-plugins.md, Contracts)"
        )


def require(ok: Any, cls: type, contract: str, detail: str) -> None:
    """Raise :class:`ContractError` unless ``ok``."""
    if not ok:
        raise ContractError(cls, contract, detail)


@contextmanager
def _breach(cls: type, contract: str, what: str) -> Iterator[None]:
    """A plugin method that raises breaks ``contract``: the error says which call and why."""
    try:
        yield
    except ContractError:
        raise
    except Exception as e:  # the plugin's own failure, reported as its contract
        from benchmark.registry import one_line

        raise ContractError(cls, contract, f"{what} raised {one_line(e)}") from e


def smoke_instance(cls: type[Plugin], params: dict[str, Any] | None = None) -> Any:
    """``cls`` at its ``smoke`` profile (``params`` override it)."""
    return cls(resolve_params(cls, "smoke", params or {}))


@contextmanager
def smoke_context(seed: int = 0) -> Iterator[RunContext]:
    """A CPU :class:`RunContext` at the ``smoke`` profile with a temporary artifact cache."""
    with tempfile.TemporaryDirectory(prefix="uebench-kit-") as tmp:
        yield RunContext(device=torch.device("cpu"), seed=seed, profile="smoke", cache=ArtifactCache(tmp))


def described(obj: Any) -> str:
    """What a plugin method returned, for a contract's message: the type, and for a tensor (or a
    dataset's images) the dtype and shape, e.g. ``ImageDataset torch.uint8 (64, 3, 8, 8)``,
    ``Tensor torch.float32 (64, 3, 16, 16)``, ``float 0.031``."""
    from benchmark.errors import shorten

    x = obj.x if isinstance(obj, ImageDataset) else obj
    if isinstance(x, torch.Tensor):
        return f"{type(obj).__name__} {x.dtype} {tuple(x.shape)}"
    if isinstance(obj, (str, int, float, bool, type(None))):
        return f"{type(obj).__name__} {shorten(obj, 40)}"
    return type(obj).__name__


def _seeded(seed: int, fn: Callable[[], Any]) -> Any:
    """``fn()`` with torch's global RNG seeded as the runner does before a job."""
    torch.manual_seed(seed)
    return fn()


# ------------------------------------------------------------------------------------------ plugin


def check_declaration(cls: type[Plugin]) -> None:
    """What the registry needs of any plugin, and what every plugin documents."""
    from benchmark.plugin_checks import class_problem, stage_problem

    kind = getattr(cls, "kind", None)
    require(kind in ("attack", "victim", "defense", "metric", "dataset"), cls, "plugin.registrable",
            f"kind is {kind!r}: subclass benchmark.Attack, Victim, Defense, Metric or DatasetSource")
    problem = class_problem(cast(str, kind), getattr(cls, "name", None), cls)  # a kind: required just above
    if kind == "defense" and problem is not None and stage_problem(cls) == problem:
        problem = None  # the registry refuses it for its stage: check_defense names the finer contract, defense.stage
    require(problem is None, cls, "plugin.registrable", f"the registry would list it as broken: it {problem}")
    require(isinstance(cls.Params, type) and issubclass(cls.Params, Params), cls, "plugin.registrable", "Params is not a benchmark.Params")
    doc = (cls.__doc__ or "").strip()
    require(doc and cls.__doc__ is not getattr(cls.__mro__[1], "__doc__", None), cls, "plugin.docstring", "the class has no docstring of its own")
    require(isinstance(cls.version, str) and cls.version.strip(), cls, "plugin.version", f"version is {cls.version!r}")
    unknown = [p for p in getattr(cls, "profiles", {}) if p not in PROFILES]
    require(not unknown, cls, "plugin.profiles", f"unknown profile {unknown[:1]}")
    for profile in PROFILES:
        with _breach(cls, "plugin.profiles", f"resolve_params at profile {profile!r}"):
            resolve_params(cls, profile, {})


# ------------------------------------------------------------------------------------------ attack


def check_attack(cls: type[Attack], data: ImageDataset | None = None, params: dict[str, Any] | None = None) -> Poison:
    """Every attack contract at the smoke profile; returns the poison."""
    from benchmark.data.split import make_splits

    given = data or synthetic_dataset()
    data = make_splits(given, synthetic_dataset(8)).train  # the order the runner gives the attack
    attack = smoke_instance(cls, params)
    with _breach(cls, "attack.budget", "budget()"):
        budget = attack.budget()
    require(isinstance(budget, Budget), cls, "attack.budget", f"budget() returned {described(budget)}, not a benchmark.interfaces.Budget")
    before = data.x.clone()
    with smoke_context() as ctx, _breach(cls, "attack.poison", "generate(train, ctx)"):
        p = _seeded(0, lambda: attack.generate(data, ctx))
    require(isinstance(p, Poison), cls, "attack.poison", f"generate returned {type(p).__name__}")
    require(torch.equal(data.x, before), cls, "attack.input", "the training images changed during generate")
    require(isinstance(p.x, torch.Tensor) and p.x.dtype == torch.uint8 and p.x.shape == data.x.shape, cls, "attack.release",
            f"poison.x is {getattr(p.x, 'dtype', type(p.x).__name__)} {tuple(getattr(p.x, 'shape', ()))}, "
            f"expected torch.uint8 {tuple(data.x.shape)}")
    bad = budget.violation(data.x, p.x)
    require(bad is None, cls, "attack.budget", f"{bad} ({budget})")
    require(p.kind in ("samplewise", "classwise", "none"), cls, "attack.alignment", f"kind is {p.kind!r}")
    if p.delta is not None:
        n, k = len(data), data.num_classes
        want = (n, *data.shape) if p.kind == "samplewise" else (k, *data.shape)
        require(p.kind != "none" and tuple(p.delta.shape) == want, cls, "attack.alignment",
                f"a {p.kind} delta has shape {tuple(p.delta.shape)}, expected {want}")
        per_image = p.delta if p.kind == "samplewise" else p.delta[data.y]
        released = release(data.x, per_image.float())
        diff = (released.int() - p.x.int()).abs().max().item()
        require(diff == 0, cls, "attack.release",
                f"poison.x differs from release(train.x, delta) by up to {diff}/255: release with benchmark.release, "
                "or return delta=None when the poison is not x + delta")
        if budget.norm == "linf":
            worst = p.delta.abs().max().item()
            require(worst <= budget.eps + 1e-6, cls, "attack.budget", f"|delta| reaches {worst:.5g} > eps {budget.eps:.5g}")
    require(isinstance(p.meta, dict), cls, "attack.meta", f"poison.meta is {type(p.meta).__name__}, not a dict")
    taken = sorted(RESERVED_META & p.meta.keys())
    require(not taken, cls, "attack.meta", f"poison.meta uses {', '.join(map(repr, taken))}, which uebench writes itself")
    try:
        json.dumps(p.meta, allow_nan=True)
    except (TypeError, ValueError) as e:
        raise ContractError(cls, "attack.meta", f"poison.meta is not JSON: {e}") from None
    run = _cell(cls, attack=(cls, params or {}), data=given)
    require(run.poison is not None and torch.equal(run.poison.x, p.x), cls, "attack.determinism",
            "the runner's poison (same seeds) differs from a direct generate() with the same seeds")
    return p


# ------------------------------------------------------------------------------------------ victim


def _logits(cls: type, contract: str, model: Any, data: ImageDataset, what: str) -> torch.Tensor:
    require(isinstance(model, nn.Module), cls, contract, f"{what} returned {type(model).__name__}, not an nn.Module")
    with torch.no_grad(), _breach(cls, contract, f"the model of {what} on float [4, {', '.join(map(str, data.shape))}]"):
        out = model.eval()(data.float_batch(torch.arange(4)))
    require(isinstance(out, torch.Tensor) and tuple(out.shape) == (4, data.num_classes), cls, contract,
            f"logits of {what} have shape {tuple(getattr(out, 'shape', ()))}, expected (4, {data.num_classes})")
    return out


def check_victim(cls: type[Victim], data: ImageDataset | None = None, params: dict[str, Any] | None = None) -> nn.Module:
    """Every victim contract at the smoke profile; returns the trained model."""
    data = data or synthetic_dataset()
    victim = smoke_instance(cls, params)
    require(victim.paradigm in ("supervised", "contrastive"), cls, "victim.paradigm", f"paradigm is {victim.paradigm!r}")
    before = data.x.clone()
    hooks, curves = CountingHooks(), CurveRecorder()
    with smoke_context() as ctx, _breach(cls, "victim.model", "fit(train, ctx, hooks)"):
        ctx.trace.subscribe(curves)
        model = _seeded(0, lambda: victim.fit(data, ctx, hooks))
    out = _logits(cls, "victim.model", model, data, "fit")
    require(torch.equal(data.x, before), cls, "victim.input", "the training images changed during fit")
    if victim.paradigm == "supervised":
        problem = hooks_problem(hooks.calls, curves.events) or (None if hooks.calls else "never called hooks.loss")
        require(problem is None, cls, "victim.hooks", f"fit {problem} (train with benchmark.training.train_supervised, "
                "or call hooks.loss for every batch of your loop)")
    with smoke_context() as ctx:
        again = _seeded(0, lambda: victim.fit(data, ctx, TrainHooks()))
    require(torch.equal(_logits(cls, "victim.model", again, data, "fit"), out), cls, "victim.determinism",
            "two fits with the same seeds give different logits")
    _cell(cls, victim=(cls, params or {}), data=data)
    return model


# ----------------------------------------------------------------------------------------- defense


def _overrides(cls: type, method: str) -> bool:
    return getattr(cls, method) is not getattr(Defense, method)


def check_defense(cls: type[Defense], data: ImageDataset | None = None, params: dict[str, Any] | None = None) -> None:
    """Every defense contract at the smoke profile."""
    data = data or synthetic_dataset()
    defense = smoke_instance(cls, params)
    stage = defense.stage
    own = {"data": "transform", "train": "train_hooks", "model": "repair"}
    require(stage in ("none", *own), cls, "defense.stage", f"stage is {stage!r}")
    for st, method in own.items():
        if st == stage:
            require(_overrides(cls, method), cls, "defense.stage", f"a {stage}-stage defense must implement {method}")
        else:
            require(not _overrides(cls, method), cls, "defense.stage",
                    f"a {stage}-stage defense overrides {method} (the runner treats a {stage}-stage defense by its stage)")
    for v in (KitSupervised(), KitContrastive()):
        with _breach(cls, "defense.applies-to", f"applies_to({v.paradigm} victim)"):
            ok = defense.applies_to(v)
        require(isinstance(ok, bool), cls, "defense.applies-to", f"applies_to returned {type(ok).__name__}")
    before = data.x.clone()
    with smoke_context() as ctx, _breach(cls, "defense.transform", "transform(train, ctx)"):
        out = _seeded(0, lambda: defense.transform(data, ctx))
    expected = f"expected ImageDataset {torch.uint8} {tuple(data.x.shape)}"
    require(isinstance(out, ImageDataset), cls, "defense.transform", f"transform returned {described(out)}, {expected}")
    require(out.x.dtype == torch.uint8 and out.x.shape == data.x.shape, cls, "defense.transform",
            f"transform returned {described(out)}, {expected}")
    require(torch.equal(out.y, data.y) and torch.equal(out.index, data.index), cls, "defense.transform", "labels or indices changed")
    require(torch.equal(data.x, before), cls, "defense.transform", "the input images changed in place")
    with smoke_context() as ctx, _breach(cls, "defense.transform", "a second transform(train, ctx)"):
        again = _seeded(0, lambda: defense.transform(data, ctx))
    require(isinstance(again, ImageDataset) and torch.equal(again.x, out.x), cls, "defense.transform", "two transforms with the same seeds differ")
    with smoke_context() as ctx:
        model = _seeded(0, lambda: KitSupervised().fit(data, ctx, TrainHooks()))
        x, y = data.float_batch(torch.arange(8)), data.y[:8]
        with _breach(cls, "defense.train-hooks", "train_hooks(ctx).loss(model, x, y, criterion)"):
            loss = defense.train_hooks(ctx).loss(model.train(), x, y, nn.functional.cross_entropy)
        require(isinstance(loss, torch.Tensor) and loss.ndim == 0 and bool(torch.isfinite(loss)), cls, "defense.train-hooks",
                f"loss is {loss!r:.80}, expected a finite scalar tensor")
        require(loss.requires_grad, cls, "defense.train-hooks", "the loss has no gradient")
        if stage == "model":
            holdout = synthetic_dataset(16, data.num_classes, data.shape[1], 2, data.shape[0])
            kept = (holdout.x.clone(), holdout.y.clone())
            with _breach(cls, "defense.repair", "repair(model, holdout, ctx)"):
                repaired = _seeded(0, lambda: defense.repair(model.eval(), holdout, ctx))
            _logits(cls, "defense.repair", repaired, data, "repair")
            require(torch.equal(holdout.x, kept[0]) and torch.equal(holdout.y, kept[1]), cls, "defense.repair",
                    "the hold-out's images or labels changed in place")
    for victim in ("kit-supervised", "kit-contrastive"):
        run = _cell(cls, defense=(cls, params or {}), victim=victim, data=data, holdout=16 if stage == "model" else 0)
        applies = defense.applies_to(KitSupervised() if victim == "kit-supervised" else KitContrastive())
        require(run.status == ("ok" if applies else "n/a"), cls, "cell.runs", f"with {victim}: status {run.status} ({run.error})")


# ------------------------------------------------------------------------------------------ metric


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)


def check_metric(cls: type[Metric], data: ImageDataset | None = None, params: dict[str, Any] | None = None) -> dict[str, float]:
    """Every metric contract at the smoke profile; returns the values on a kit-trained cell."""
    data = data or synthetic_dataset()
    metric = smoke_instance(cls, params)
    with smoke_context() as ctx:
        with _breach(cls, "metric.observer", "observer(ctx)"):
            listener = metric.observer(ctx)
        require(listener is None or callable(listener), cls, "metric.observer", f"observer returned {type(listener).__name__}")
        curves: list[dict[str, Any]] = []
        ctx.trace.subscribe(lambda e: curves.append(e.numbers()))
        if listener is not None:
            ctx.trace.subscribe(listener)
        victim = KitSupervised()
        with _breach(cls, "metric.observer", "the observer, called with the epoch events of a training"):
            model = _seeded(0, lambda: victim.fit(data, ctx, TrainHooks()))
        cell = CellArtifacts(model, DataSplits(data, data, data), data, Poison(x=data.x), victim, KitNone(), curves,
                             {metric.name: listener} if listener is not None else {})
        with _breach(cls, "metric.values", "compute(cell, ctx)"):
            out = _seeded(0, lambda: metric.compute(cell, ctx))
        require(isinstance(out, dict) and out, cls, "metric.values", f"compute returned {out!r:.80}")
        require(all(isinstance(k, str) and isinstance(v, float) for k, v in out.items()), cls, "metric.values",
                f"values must be float: {', '.join(f'{k}={type(v).__name__}' for k, v in out.items())}")
        for key, value in out.items():
            unit = cls.unit_of(key)
            require(unit in UNITS, cls, "metric.units", f"unit of {key!r} is {unit!r}")
            if unit == "fraction":
                require(math.isnan(value) or 0.0 <= value <= 1.0, cls, "metric.units", f"{key} = {value} is declared a fraction but is outside [0, 1]")
        for key, tol in cls.audit_tolerance.items():
            require(key == "*" or key in out, cls, "metric.audit-tolerance", f"{key!r} is not an output of compute ({', '.join(sorted(out))})")
            require(isinstance(tol, (int, float)) and math.isfinite(tol) and tol >= 0, cls, "metric.audit-tolerance", f"{key}: {tol!r}")
        again = _seeded(0, lambda: metric.compute(cell, ctx))
        require(_same(out, again), cls, "metric.determinism", f"{out} then {again}")
    run = _cell(cls, metric=[(cls, params or {})], data=data)
    require(set(out) <= set(run.metrics), cls, "cell.runs", f"the record has {sorted(run.metrics)}, compute gave {sorted(out)}")
    return out


# ---------------------------------------------------------------------------------------- the cell


def _cell(cls: type, **axes: Any) -> Any:
    from benchmark.testing.cell import CellFailed, run_cell

    try:
        return run_cell(**axes)
    except CellFailed as e:
        raise ContractError(cls, "cell.runs", str(e)) from None
    except ContractError:
        raise
    except Exception as e:  # e.g. the registry refuses it, or its params in a matrix
        from benchmark.registry import one_line

        raise ContractError(cls, "cell.runs", one_line(e)) from e


def check_plugin(cls: type[Plugin], data: ImageDataset | None = None, params: dict[str, Any] | None = None) -> object:
    """Every contract of ``cls``'s kind at its smoke profile (``params`` override it), then a
    one-cell run with the kit's stubs. Raises :class:`ContractError` naming the contract broken."""
    if not isinstance(cls, type):
        raise TypeError(f"check_plugin takes a plugin class, got {type(cls).__name__} (pass type(obj))")
    check_declaration(cls)
    checks: dict[str, Callable[..., object]] = {"attack": check_attack, "victim": check_victim, "defense": check_defense, "metric": check_metric}
    check = checks.get(cls.kind)
    return check(cls, data, params) if check else None
