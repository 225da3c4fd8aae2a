"""How a cell trains its victim: the one code path the runner and a metric that retrains a
reference (the unlearnable distance's clean run) share, so both produce the same model.

The seed, then the defense's data stage, then ``Victim.fit`` with the defense's training hooks.
The defense's own stages run on a context with a trace of their own: the cell's trace carries
the victim's training only (its curves, and what metrics observe), whatever the defense trains.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import Defense, RunContext, Victim
from benchmark.trace import Trace


def defense_context(ctx: RunContext) -> RunContext:
    """``ctx`` for a defense's data stage: the same device, seed, cache and log, and a
    separate trace (a defense that trains a model of its own does not appear in the cell's trace)."""
    return replace(ctx, trace=Trace())


def defend_and_fit(train: ImageDataset, victim: Victim, defense: Defense, ctx: RunContext) -> tuple[nn.Module, ImageDataset]:
    """Seed torch with ``ctx.seed``, apply ``defense``'s data stage to ``train`` (uint8 ``[N,C,H,W]``)
    and fit ``victim`` on the result with ``defense``'s training hooks, emitting the victim's epochs
    on ``ctx.trace``. Returns ``(model, defended training set)``; the model stage (repair) is the
    caller's."""
    torch.manual_seed(ctx.seed)
    train = defense.transform(train, defense_context(ctx))
    model = victim.fit(train, ctx, defense.train_hooks(ctx))
    return model, train
