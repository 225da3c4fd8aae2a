"""What the runner checks of every plugin's output, in every cell: the cheap half of the contracts
:func:`benchmark.testing.check_plugin` tests, so that a broken third-party plugin fails its cell
with the contract it broke instead of producing a plausible number.

Each function returns ``None`` when the output is fine, else one line saying what is wrong (the
runner raises :class:`PluginOutputError` with the plugin's name in front). None of them draws
random numbers or changes a model, so a cell computes the same numbers with or without them.
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import nn

from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import UNITS, Budget, Poison, RunContext, TrainHooks, release

#: keys of a poison's stored meta that the runner writes (the poison's kind and surrogate, its cost,
#: what it read, its numerics and digests, a copy's origin, a third party's package): an attack's own meta must not use them
RESERVED_META = frozenset({"kind", "surrogate", "wall_s", "reads", "numerics", "x_sha256", "train_sha256", "same_as", "package"})


class PluginError(RuntimeError):
    """A plugin returned something its contract does not allow, or a metric crashed: the cell fails
    with this one line, which names the plugin."""


class CountingHooks(TrainHooks):
    """``inner``'s training hooks (plain ERM by default) with the calls of ``loss`` counted in
    ``calls``: a victim that never calls it makes a train-stage defense a silent no-op."""

    def __init__(self, inner: TrainHooks | None = None) -> None:
        self.inner = inner or TrainHooks()
        self.calls = 0

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        self.calls += 1
        return self.inner.loss(model, x, y, criterion)

    def __getattr__(self, name: str) -> Any:  # anything else of the defense's hooks
        if name == "inner":  # not set yet (a copy being built)
            raise AttributeError(name)
        return getattr(self.inner, name)


def hooks_problem(calls: int, events: list[dict[str, Any]]) -> str | None:
    """A supervised victim's use of its training hooks: ``calls`` of ``hooks.loss`` during a fit that
    emitted the epoch ``events`` (:class:`~benchmark.trace.CurveRecorder`'s). Every training step goes
    through ``hooks.loss``, so there is at least one call per ``supervised`` epoch; a fit that
    emitted no epoch did not train (``epochs: 0``) and is not blamed."""
    epochs = sum(1 for e in events if e.get("phase") == "supervised")
    if events and calls == 0:
        return "never called hooks.loss"
    if calls < epochs:
        return f"called hooks.loss {calls} time{'s' if calls != 1 else ''} in {epochs} supervised epochs"
    return None


def poison_problem(train: ImageDataset, p: Any, budget: Budget) -> str | None:
    """An attack's :class:`~benchmark.interfaces.Poison` for ``train`` (uint8 ``[N, C, H, W]``):
    uint8 images of the training set's shape within ``budget``; a ``kind`` the runner knows; a
    ``delta`` of that kind's shape whose release is ``p.x``; JSON ``meta``."""
    if not isinstance(p, Poison):
        return f"generate returned {type(p).__name__}, not a benchmark.Poison"
    x = p.x
    want = tuple(train.x.shape)
    if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8 or tuple(x.shape) != want:
        return f"poison.x is {getattr(x, 'dtype', type(x).__name__)} {tuple(getattr(x, 'shape', ()))}, expected torch.uint8 {want}"
    bad = budget.violation(train.x, x)
    if bad:
        return f"broke its budget {budget}: {bad}"
    if p.kind not in ("samplewise", "classwise", "none"):
        return f"poison.kind is {p.kind!r}: samplewise, classwise or none"
    if p.delta is not None:
        shape = (len(train) if p.kind == "samplewise" else train.num_classes, *train.shape)
        if p.kind == "none" or not isinstance(p.delta, torch.Tensor) or tuple(p.delta.shape) != shape:
            return f"a {p.kind} delta has shape {tuple(getattr(p.delta, 'shape', ()))}, expected {shape}"
        per_image = p.delta if p.kind == "samplewise" else p.delta[train.y.to(p.delta.device)]
        diff = int((release(train.x, per_image.detach().float()).int() - x.int()).abs().max().item()) if len(x) else 0
        if diff:
            return (f"poison.x differs from release(train.x, delta) by up to {diff}/255: release with benchmark.release, "
                    "or return delta=None when the poison is not x + delta")
    if not isinstance(p.meta, dict):
        return f"poison.meta is {type(p.meta).__name__}, not a dict"
    taken = sorted(RESERVED_META & p.meta.keys())
    if taken:
        return f"poison.meta uses the key {taken[0]!r}, which uebench sets itself ({', '.join(sorted(RESERVED_META))})"
    try:
        json.dumps(p.meta, allow_nan=True)
    except (TypeError, ValueError) as e:
        return f"poison.meta is not JSON: {e}"
    return None


def transform_problem(train: ImageDataset, out: Any) -> str | None:
    """A data-stage defense's output: an :class:`ImageDataset` of uint8 images of the input's
    shape, with the input's labels and indices (a defense changes pixels, not which images or
    labels the victim gets)."""
    if not isinstance(out, ImageDataset):
        return f"transform returned {type(out).__name__}, not a benchmark.ImageDataset"
    if out.x.dtype != torch.uint8 or out.x.shape != train.x.shape:
        return f"transform returned {out.x.dtype} {tuple(out.x.shape)}, expected torch.uint8 {tuple(train.x.shape)}"
    if not (torch.equal(out.y.cpu(), train.y.cpu()) and torch.equal(out.index.cpu(), train.index.cpu())):
        return "transform changed the labels or the order of the images (it may change pixels only)"
    return None


def logits_problem(model: Any, test: ImageDataset, ctx: RunContext, what: str) -> str | None:
    """The model a victim (or a repair) returns: an ``nn.Module`` mapping float ``[B, C, H, W]`` in
    [0, 1] to logits ``[B, num_classes]``; tried on two test images as the metrics run it (eval
    mode, no gradients, the cell's autocast), and every submodule left in the mode it was in."""
    from benchmark.registry import one_line
    from benchmark.training import autocast, to_model

    if not isinstance(model, nn.Module):
        return f"{what} returned {type(model).__name__}, not an nn.Module"
    modes = [(m, m.training) for m in model.modules()]
    n = min(2, len(test))
    try:
        with torch.no_grad(), autocast(ctx):
            out = model.eval()(to_model(test.float_batch(torch.arange(n), ctx.device)))
    except Exception as e:  # noqa: BLE001 - the plugin's model, named by the caller
        return f"the model {what} returned fails on {n} test images: {one_line(e)}"
    finally:
        for m, was in modes:
            m.training = was
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (n, test.num_classes):
        return f"the model {what} returned gives {type(out).__name__} {tuple(getattr(out, 'shape', ()))} for {n} images, expected logits {(n, test.num_classes)}"
    return None


def metric_problem(values: Any, unit_of: Any) -> str | None:
    """A metric's ``compute`` output: a non-empty mapping of string keys to real numbers (not
    booleans), each key's unit one the reports know, a ``fraction`` in [0, 1] (or NaN)."""
    if not isinstance(values, Mapping) or not values:
        return f"compute returned {type(values).__name__} {values!r:.60}, expected a dict of str to float"
    for key, value in values.items():
        if not isinstance(key, str):
            return f"compute returned the key {key!r:.40}, not a string"
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return f"compute returned {key} = {value!r:.40} ({type(value).__name__}), expected a float"
        unit = unit_of(key)
        if unit not in UNITS:
            return f"the unit of {key!r} is {unit!r}: one of {', '.join(UNITS)}"
        try:
            v = float(value)
        except OverflowError:
            v = math.inf
        if math.isinf(v):
            return f"{key} is infinite: return NaN where a value is undefined"
        if unit == "fraction" and not (math.isnan(v) or 0.0 <= v <= 1.0):
            return f"{key} = {v:.6g} is declared a fraction but is outside [0, 1]"
    return None


def loss_problem(events: list[dict[str, Any]]) -> str | None:
    """The first training epoch (a cell's recorded curve: :meth:`EpochEvent.numbers` dicts) whose
    mean loss is not finite: a diverged training (or a defense's hook returning NaN) would be
    recorded as a model that learned nothing, the number a working protection gives."""
    for e in events:
        loss = e.get("loss")
        if loss is None or not math.isfinite(loss):
            return (f"the training loss is {'NaN' if loss is None else loss} at epoch {e.get('epoch')} of {e.get('epochs')} "
                    f"({e.get('phase')}): a diverged training measures nothing about the protection")
    return None


def default_budget_note(attack: Any) -> str:
    """What to add to a budget violation of ``attack`` held to the default budget without saying so:
    an attack with no ``eps`` param that does not override :meth:`~benchmark.interfaces.Attack.budget`
    gets L-inf 8/255 (``""`` for any other attack)."""
    from benchmark.interfaces import Attack

    if type(attack).budget is not Attack.budget or "eps" in type(attack.params).model_fields:
        return ""
    return " (its budget is the default L-inf 8/255: it has no `eps` param; override Attack.budget() to declare its threat model)"


@contextlib.contextmanager
def plugin_call(who: str) -> Iterator[None]:
    """Name the plugin call under way (``attack 'em' (generate)``): an exception it raises is tagged
    ``uebench_call = who`` (the innermost call wins), which the runner puts before the cell's error.
    A :class:`PluginError` names its plugin already; Ctrl-C and user errors are not the plugin's."""
    from benchmark.errors import UserError

    try:
        yield
    except (PluginError, KeyboardInterrupt, UserError):
        raise
    except BaseException as e:
        if not getattr(e, "uebench_call", None):
            with contextlib.suppress(AttributeError, TypeError):  # an exception type without a __dict__
                e.uebench_call = who  # type: ignore[attr-defined]
        raise
