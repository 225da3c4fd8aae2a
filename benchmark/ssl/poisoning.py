"""The loop pieces the contrastive poisoning attacks share (CP, TUE, TP): two differentiable views
of a perturbed batch, a contrastive model phase, the signed L-inf step on a perturbation, and the
per-epoch cosine learning rate of CP's code.

Perturbations live in [0, 1] pixel units (``[N, C, H, W]`` sample-wise or ``[K, C, H, W]``
class-wise); a model phase sees ``perturb(idx, x)`` for each batch, so each attack decides how its
perturbation is added (indexed by dataset index or by label, clamped to the image box or not).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from benchmark.augment import contrastive_view
from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import RunContext
from benchmark.streams import StreamName
from benchmark.training import autocast, to_model

#: maps a batch (dataset indices ``[B]``, clean float images ``[B, C, H, W]``) to its perturbed images
Perturb = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def two_views(x: torch.Tensor, generator: torch.Generator, view: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent :func:`~benchmark.augment.contrastive_view` draws of ``x`` (differentiable
    in ``x``), channels_last."""
    return to_model(contrastive_view(x, generator, **view)), to_model(contrastive_view(x, generator, **view))


def model_phase(
    objective: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: ImageDataset,
    index_batches: Iterable[torch.Tensor],
    perturb: Perturb,
    generator: torch.Generator,
    view: dict[str, Any],
    ctx: RunContext,
) -> float:
    """One SGD step of ``objective`` (train mode) per index batch, on two views of
    ``perturb(idx, x)``. Returns the mean loss (one host sync, at the end)."""
    objective.train()
    total = torch.zeros((), device=ctx.device)
    steps = 0
    for idx in index_batches:
        x = data.float_batch(idx, ctx.device)
        y = data.y[idx.to(data.y.device)].to(ctx.device, non_blocking=True)
        with torch.no_grad():
            v1, v2 = two_views(perturb(idx, x), generator, view)
        with autocast(ctx):
            loss = objective(v1, v2, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach().float()
        steps += 1
    return float(total) / max(1, steps)


def linf_step(delta: torch.Tensor, grad: torch.Tensor, alpha: float, eps: float) -> torch.Tensor:
    """``clamp(delta - alpha * sign(grad), -eps, eps)``: one signed step that *minimizes* the loss,
    projected on the L-inf ball (not on the image box: the forward clamps ``x + delta``)."""
    return (delta - alpha * grad.sign()).clamp_(-eps, eps)


def cosine_epoch_lr(base: float, epoch: int, epochs: int, min_ratio: float = 1e-3) -> float:
    """CP's ``adjust_learning_rate`` (SupContrast): set once per epoch ``epoch`` = 1..E,
    ``eta_min + (base - eta_min) (1 + cos(pi epoch / E)) / 2`` with ``eta_min = base * min_ratio``."""
    eta_min = base * min_ratio
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * epoch / epochs)) / 2


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


class seeded:
    """Context manager: the global torch RNG seeded from ``ctx`` and a random ``stream`` (:mod:`benchmark.streams`) and
    restored afterwards, so a model built inside is the same whatever ran before (a cached or a
    freshly computed intermediate result)."""

    def __init__(self, ctx: RunContext, stream: StreamName | int) -> None:
        self.seed = ctx.stream_seed(stream)

    def __enter__(self) -> None:
        self.fork = torch.random.fork_rng(devices=[])
        self.fork.__enter__()
        torch.manual_seed(self.seed)

    def __exit__(self, *exc: object) -> None:
        self.fork.__exit__(*exc)  # type: ignore[arg-type]  # the (type, value, traceback) Python passed in
