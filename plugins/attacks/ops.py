"""OPS: the one-pixel shortcut (Wu, Chen, Xie & Huang, "One-Pixel Shortcut: on the Learning
Preference of Deep Neural Networks", ICLR 2023; code cychomatica/One-Pixel-Shotcut, also in
lafeat/apbench ``attack/ops_poisons.py``)."""

from __future__ import annotations

import torch
from pydantic import Field

from benchmark.data.dataset import ImageDataset
from benchmark.errors import UserError
from benchmark.interfaces import Attack, Budget, Poison, RunContext, release
from benchmark.params import Params


def corner_colours(channels: int) -> torch.Tensor:
    """The ``2^C`` extreme colours ``{0, 1}^C`` as ``[2^C, C]`` (bit ``C-1-j`` is channel ``j``)."""
    codes = torch.arange(2**channels)
    return torch.stack([(codes >> (channels - 1 - j)) & 1 for j in range(channels)], dim=1).float()


def pixel_scores(x: torch.Tensor, colours: torch.Tensor) -> torch.Tensor:
    """OPS's search objective for one class: for every colour ``c`` and position ``(i, j)``,
    ``mean / std`` of ``|c - x[:, :, i, j]|`` over the class's images and channels (population
    std). ``x`` float ``[n, C, H, W]`` in [0, 1]; returns ``[K_colours, H, W]``. A high score means
    the colour is far from, and uniformly far from, what the class has at that position."""
    scores = []
    for col in colours:
        d = (col.view(1, -1, 1, 1) - x).abs()
        mean = d.mean(dim=(0, 1))
        std = d.std(dim=(0, 1), correction=0).clamp_min(1e-12)
        scores.append(mean / std)
    return torch.stack(scores)


class OPS(Attack):
    """One pixel per image set to an extreme colour, the same position and colour for a whole
    class: a model-free shortcut (Wu et al., ICLR 2023; cychomatica/One-Pixel-Shotcut).

    Threat model: **L0**, ``eps`` = 1 pixel position per image (all channels of that position
    may change, to anything), class-wise in (position, colour), released per sample.
    ``delta`` ``[N, C, H, W]`` (nonzero at one position per image).

    Search (the official ``pixel_search``): for each class in turn, score every (position, colour
    in ``{0,1}^C``) by ``mean / std`` of ``|colour - x|`` over the class's images (and channels)
    and take the best (position, colour) pair not already taken by an earlier class; every image
    of the class gets that pixel set to the colour. ``pixels`` > 1 takes the top ``pixels`` pairs
    (the official ``sparsity``; then the L0 budget is ``pixels``).

    Deviations from the official code: vectorized over positions (same scores); an exhausted
    ``pixels`` ranking skips pairs already used instead of overwriting them; the release rounds
    to nearest (exact here: the pixel becomes 0 or 255).
    """

    name = "ops"

    class Params(Params):
        pixels: int = Field(1, ge=1)  # pixels set per image, the L0 budget (the official sparsity); 1 in the paper

    profiles = {"quick": {}, "smoke": {}}

    def budget(self) -> Budget:
        return Budget("l0", float(self.params.pixels))

    def generate(self, train: ImageDataset, ctx: RunContext) -> Poison:
        c, h, w = train.shape
        if self.params.pixels > h * w:  # a setting this data cannot take: one line, no failed cell kept
            raise UserError(f"attack {self.display!r}: pixels {self.params.pixels} exceeds the {h * w} pixel positions of "
                            f"this dataset's {h}x{w} images; give at most {h * w}")
        colours = corner_colours(c)
        delta = torch.zeros(train.x.shape, dtype=torch.float32)
        used = torch.zeros(len(colours), h, w, dtype=torch.bool)
        chosen: list[list[int]] = []
        for k in range(train.num_classes):
            idx = (train.y == k).nonzero().flatten()
            if len(idx) == 0:
                continue
            x = train.x[idx].float().div(255)
            scores = pixel_scores(x, colours).masked_fill(used, float("-inf"))
            top = scores.flatten().topk(self.params.pixels).indices
            for flat in top.tolist():
                col, i, j = flat // (h * w), (flat // w) % h, flat % w
                used[col, i, j] = True
                delta[idx, :, i, j] = colours[col].view(1, -1) - x[:, :, i, j]
                chosen.append([k, i, j, col])
        meta = {"pixels": self.params.pixels, "choices": ";".join(f"class {k}: ({i},{j}) colour {col}" for k, i, j, col in chosen)}
        return Poison(x=release(train.x, delta), delta=delta, kind="samplewise", meta=meta)


PLUGINS = [OPS]
