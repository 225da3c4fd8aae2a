"""Random noise at the attack budget: the control every unlearnable-examples paper reports."""

from __future__ import annotations

import torch
from pydantic import Field

from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import Attack, Poison, RunContext, release
from benchmark.params import Params


class RandomNoise(Attack):
    """Sample-wise uniform noise ``U(-eps, eps)`` per pixel, L-inf ``eps`` = 8/255 (Huang et al.,
    ICLR 2021, Table 1's "random noise" row). ``delta`` float ``[N, C, H, W]``.

    Noise of this size barely changes what a model learns: a poison that works must do far better.
    """

    name = "random-noise"

    class Params(Params):
        eps: float = Field(8 / 255, ge=0, le=1)  # noise drawn from U(-eps, eps) per pixel, on [0, 1] pixels; 8/255

    def generate(self, train: ImageDataset, ctx: RunContext) -> Poison:
        eps = self.params.eps
        delta = (torch.rand(train.x.shape, generator=ctx.generator("random-noise.delta")) * 2 - 1) * eps
        return Poison(x=release(train.x, delta), delta=delta, kind="samplewise", meta={"eps": eps})


PLUGINS = [RandomNoise]
