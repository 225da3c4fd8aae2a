"""Momentum (EMA) target encoders and the MoCo queue of negative keys."""

from __future__ import annotations

import copy
import math
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn

M = TypeVar("M", bound=nn.Module)


def momentum_copy(module: M) -> M:
    """A frozen deep copy of ``module`` to serve as its EMA target (MoCo key encoder, BYOL target)."""
    target = copy.deepcopy(module)
    target.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """``target <- momentum * target + (1 - momentum) * online`` on parameters. Buffers (BN running
    statistics) are the target's own: it runs in train mode on its own batches."""
    t_params: list[torch.Tensor] = list(target.parameters())
    o_params = [p.detach() for p in online.parameters()]
    torch._foreach_lerp_(t_params, o_params, 1.0 - momentum)


def cosine_momentum(base: float, step: int, total_steps: int, final: float = 1.0) -> float:
    """BYOL's schedule: ``final - (final - base) * (cos(pi * step / total) + 1) / 2``."""
    frac = min(1.0, step / max(1, total_steps))
    return final - (final - base) * (math.cos(math.pi * frac) + 1) / 2


class KeyQueue(nn.Module):
    """MoCo's FIFO queue ``[K, D]`` of L2-normalized keys, initialized random; ``enqueue`` writes a
    batch of keys at the pointer, wrapping around (He et al. 2020)."""

    queue: torch.Tensor
    ptr: torch.Tensor

    def __init__(self, size: int, dim: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.register_buffer("queue", F.normalize(torch.randn(size, dim, generator=generator), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        k = F.normalize(keys.detach().float(), dim=1)[: len(self.queue)]
        idx = (int(self.ptr) + torch.arange(len(k), device=k.device)) % len(self.queue)
        self.queue[idx] = k.to(self.queue.dtype)
        self.ptr.fill_((int(self.ptr) + len(k)) % len(self.queue))
