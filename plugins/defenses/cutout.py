"""Cutout (DeVries & Taylor, "Improved Regularization of Convolutional Neural Networks with
Cutout", 2017) as a baseline against unlearnable examples (APBench ``util.Cutout``; the ISS
repository's ``augmentations.Cutout``)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from pydantic import Field
from torch import nn

from benchmark.augment import to_device
from benchmark.interfaces import SUPERVISED_ONLY, Defense, RunContext, TrainHooks, Victim
from benchmark.params import Params

Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cutout(x: torch.Tensor, length: int, generator: torch.Generator) -> torch.Tensor:
    """Zero one ``length`` x ``length`` square per sample of a float batch ``[B, C, H, W]``, all
    channels: centre ``(cy, cx)`` uniform over the pixels, rows ``[cy - length//2, cy + length//2)``
    and columns likewise, clipped at the borders (so a square near an edge is smaller), as the
    reference ``Cutout`` does. Random draws from the CPU ``generator``."""
    b, _, h, w = x.shape
    cy = to_device(torch.randint(0, h, (b,), generator=generator), x.device)
    cx = to_device(torch.randint(0, w, (b,), generator=generator), x.device)
    half = length // 2
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    in_rows = (rows >= (cy - half).clamp(0, h)[:, None]) & (rows < (cy + half).clamp(0, h)[:, None])  # [B, H]
    in_cols = (cols >= (cx - half).clamp(0, w)[:, None]) & (cols < (cx + half).clamp(0, w)[:, None])  # [B, W]
    hole = (in_rows[:, :, None] & in_cols[:, None, :]).unsqueeze(1)  # [B, 1, H, W]
    return x.masked_fill(hole, 0.0)


class CutoutHooks(TrainHooks):
    """Cutout on every training batch (after the victim's crop/flip), then the plain loss."""

    def __init__(self, length: int, generator: torch.Generator) -> None:
        self.length = length
        self.generator = generator

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, criterion: Criterion) -> torch.Tensor:
        return criterion(model(cutout(x, self.length, self.generator)), y)


class Cutout(Defense):
    """Cutout: a fresh 16 x 16 black square on every training image at every step.

    Source: APBench ``util.Cutout(16)`` (appended after ``ToTensor``, after crop/flip), the same
    class in the ISS repository. Stage ``train`` (it must be redrawn every epoch, so it is a hook on
    the float batch ``[B, C, H, W]`` in [0, 1], after the victim's crop/flip), batched on the device,
    per-sample random from the run's generator. Applies to supervised victims only (the contrastive
    victims' loops do not take supervised hooks: those cells are N/A). A negative control: the
    UEraser paper (Table 2) reports that Cutout does not remove EM-style poisons.
    """

    name = "cutout"
    stage = "train"

    class Params(Params):
        length: int = Field(16, ge=1)  # side in pixels of the zeroed square (smaller where it crosses a border)

    applies_note = SUPERVISED_ONLY

    def applies_to(self, victim: Victim) -> bool:
        return victim.paradigm == "supervised"

    def train_hooks(self, ctx: RunContext) -> TrainHooks:
        return CutoutHooks(self.params.length, ctx.generator("cutout.masks"))


PLUGINS = [Cutout]
