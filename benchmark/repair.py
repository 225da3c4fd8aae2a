"""What model-stage defenses share: repairing a trained classifier with the clean hold-out.

A ``model``-stage defense (:class:`~benchmark.interfaces.Defense`) gets the victim's trained
classifier and the matrix's clean hold-out (``dataset.holdout``: class-balanced clean originals
the victim never trained on; :func:`benchmark.data.split.make_splits`) and returns a repaired copy.
The helpers here keep those repairs reproducible whatever ran before them in the process
(:func:`seeded`), emit one ``"repair"`` :class:`~benchmark.trace.EpochEvent` per pass, and give
the loops their common pieces: frozen-BN training mode, hold-out batches, a fresh initialization.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import RunContext
from benchmark.params import Params
from benchmark.streams import StreamName
from benchmark.trace import EpochEvent

#: the ``phase`` of the epoch events a repair emits (one per pass over the hold-out)
PHASE = "repair"


class FinetuneParams(Params):
    """The hold-out fine-tuning budget SAU's loop runs (Wei et al., NeurIPS 2023, spec §1.6): Adam
    (amsgrad) at lr 1e-4, batch 256, 100 epochs, BatchNorm frozen in eval mode. ``sau`` adds its
    shared-adversarial terms to it; ``finetune`` is the same budget without them (SAU's ablation)."""

    epochs: int = Field(100, ge=1)  # passes over the clean hold-out
    batch_size: int = Field(256, ge=1)  # hold-out images per optimizer step
    lr: float = Field(1e-4, gt=0)  # Adam lr (constant)
    amsgrad: bool = True  # the AMSGrad variant of Adam
    weight_decay: float = Field(0.0, ge=0)  # Adam weight decay (L2)
    bn: Literal["eval", "train"] = "eval"  # BatchNorm in the repair: eval (the victim's statistics frozen) or train


#: the quick and smoke budgets both repairs use: batch 64 and 25 epochs, so that the 250-image quick
#: hold-out still gets 100 optimizer steps (at batch 256 it would get one per epoch)
FINETUNE_PROFILES: dict[str, dict[str, object]] = {"quick": {"epochs": 25, "batch_size": 64}, "smoke": {"epochs": 1, "batch_size": 16}}


@contextmanager
def seeded(ctx: RunContext, stream: StreamName | int) -> Iterator[torch.Generator]:
    """Run a repair with torch's global RNG forked and seeded from ``ctx.seed`` and the random
    ``stream`` (:mod:`benchmark.streams`)
    (restored afterwards), and yield a CPU generator of the same seed for explicit draws.

    A repair's numbers then depend only on its inputs, not on how many random numbers the victim's
    training (or a cached copy of it) consumed before."""
    seed = ctx.stream_seed(stream)
    devices = [ctx.device] if ctx.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield torch.Generator().manual_seed(seed)


def repair_mode(model: nn.Module, bn: str = "eval") -> nn.Module:
    """``model`` ready for a repair step: every parameter trainable; BatchNorm (and dropout) in
    eval mode with ``bn="eval"`` (I-BAU's and SAU's default: running statistics frozen at the
    victim's values), in train mode with ``bn="train"``."""
    model.requires_grad_(True)
    return model.train(bn == "train")


def reinitialized(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every submodule's parameters (and BatchNorm statistics) drawn
    afresh by its own ``reset_parameters`` (torch's default initialization, from the global RNG).
    Buffers that are not parameters of a layer (the classifier's input normalization) are kept."""
    fresh = copy.deepcopy(model)
    for m in fresh.modules():
        reset = getattr(m, "reset_parameters", None)
        if callable(reset):
            reset()
    return fresh


def holdout_batches(
    n: int, batch_size: int, generator: torch.Generator | None, device: torch.device | None = None
) -> Iterator[torch.Tensor]:
    """Index batches over ``range(n)`` (the last one may be short, as a ``DataLoader`` without
    ``drop_last``): a fresh permutation from ``generator``, or in order without one."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    if device is not None:
        order = order.to(device)
    for s in range(0, n, batch_size):
        yield order[s : s + batch_size]


def shuffled_once(data: ImageDataset, generator: torch.Generator) -> ImageDataset:
    """``data`` in one seeded random order. The hold-out is drawn class by class and sorted, so a
    loop that walks it in a fixed order (I-BAU's ``shuffle=False`` loader, whose test-set source
    is not sorted by class) must see it shuffled once first."""
    return data.select(torch.randperm(len(data), generator=generator))


def emit(ctx: RunContext, epoch: int, epochs: int, loss: torch.Tensor | float, model: nn.Module, lr: float = math.nan) -> None:
    """One ``"repair"`` event (one host sync: the pass's mean loss)."""
    ctx.trace.emit(EpochEvent(PHASE, epoch, epochs, float(loss), math.nan, lr, model))


def check_holdout(holdout: ImageDataset | None, name: str) -> ImageDataset:
    """The hold-out, or a clear error when a model-stage defense runs without one."""
    if holdout is None or len(holdout) == 0:
        raise ValueError(f"defense {name!r} repairs a model with the clean hold-out, but the split has none: set dataset.holdout")
    return holdout
