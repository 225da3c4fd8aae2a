"""Random noise on the training images, redrawn every time an image is used: the fixed version of
the EM repository's "add uniform noise" baseline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from benchmark.interfaces import SUPERVISED_ONLY, Defense, RunContext, TrainHooks, Victim
from benchmark.params import Params

Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def add_noise(
    x: torch.Tensor, scale: float, distribution: Literal["gaussian", "uniform"], generator: torch.Generator | None
) -> torch.Tensor:
    """``clamp(x + n, 0, 1)`` with fresh zero-mean noise ``n`` per pixel of the float batch
    ``[B, C, H, W]``: ``N(0, scale^2)`` or ``U(-scale, scale)``. ``generator`` (CPU) draws the noise
    of CPU tensors; on an accelerator the device's own RNG does (seeded by the runner), so no step
    copies noise from the host."""
    gen = generator if x.device.type == "cpu" else None
    if distribution == "gaussian":
        n = torch.randn(x.shape, generator=gen, dtype=x.dtype, device=x.device).mul_(scale)
    else:
        n = torch.rand(x.shape, generator=gen, dtype=x.dtype, device=x.device).mul_(2 * scale).sub_(scale)
    return (x + n).clamp_(0, 1)


class NoiseHooks(TrainHooks):
    """The loss on each float batch ``[B, C, H, W]`` in [0, 1] with fresh noise added (see :func:`add_noise`)."""

    def __init__(self, scale: float, distribution: Literal["gaussian", "uniform"], generator: torch.Generator) -> None:
        self.scale = scale
        self.distribution = distribution
        self.generator = generator

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, criterion: Criterion) -> torch.Tensor:
        return criterion(model(add_noise(x, self.scale, self.distribution, self.generator)), y)


class GaussianNoise(Defense):
    """Fresh zero-mean noise on every training image at every step: ``N(0, (8/255)^2)`` per pixel
    by default, ``{distribution: uniform}`` for ``U(-8/255, 8/255)``; clamped to [0, 1].

    Source: the EM repository's ``configs/cifar10/resnet18_add-uniform-noise.yaml`` /
    ``dataset.py`` baseline. Stage ``train``: a hook on the float batch ``[B, C, H, W]`` in [0, 1]
    (after the victim's crop/flip, so the zero padding of the crop is noised too), batched on the
    device. Applies to supervised victims only (the contrastive loops take no supervised hooks:
    N/A).

    Deviation (a pitfall fixed, spec §1.4): the EM repository adds ``U(0, 8)`` pixel units *once*
    to each image, a positive-only shift that never changes; here the noise is zero-mean and
    redrawn every time an image is loaded, which is what "random noise as a countermeasure" means.
    """

    name = "gaussian-noise"
    stage = "train"

    class Params(Params):
        scale: float = Field(8 / 255, ge=0, le=1)  # noise std (gaussian) or half-width (uniform), on [0, 1] pixels
        # zero-mean Gaussian or uniform noise, redrawn at every step
        distribution: Literal["gaussian", "uniform"] = "gaussian"

    applies_note = SUPERVISED_ONLY

    def applies_to(self, victim: Victim) -> bool:
        return victim.paradigm == "supervised"

    def train_hooks(self, ctx: RunContext) -> TrainHooks:
        return NoiseHooks(self.params.scale, self.params.distribution, ctx.generator("gaussian-noise.draws"))


PLUGINS = [GaussianNoise]
