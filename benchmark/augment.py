"""Batched, per-sample-random augmentations on float tensors ``[B, C, H, W]`` in [0, 1].

Random numbers come from a CPU ``torch.Generator`` (reproducible on any device); the image work
happens on the tensors' device. Every op is differentiable with respect to the input, so attacks
can optimize through them (TAP, AAP). No PIL, no per-sample Python.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad by ``padding`` and crop back to ``H x W`` at a random offset per sample
    (torchvision ``RandomCrop(size, padding)``)."""
    if padding <= 0:
        return x
    b, c, h, w = x.shape
    xp = F.pad(x, (padding, padding, padding, padding))
    oy = torch.randint(0, 2 * padding + 1, (b,), generator=generator).to(x.device)
    ox = torch.randint(0, 2 * padding + 1, (b,), generator=generator).to(x.device)
    rows = (oy[:, None] + torch.arange(h, device=x.device)).view(b, 1, h, 1).expand(b, c, h, w + 2 * padding)
    cols = (ox[:, None] + torch.arange(w, device=x.device)).view(b, 1, 1, w).expand(b, c, h, w)
    return xp.gather(2, rows).gather(3, cols)


def random_flip(x: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Horizontal flip of each sample with probability ``p``."""
    mask = (torch.rand(x.shape[0], generator=generator) < p).to(x.device).view(-1, 1, 1, 1)
    return torch.where(mask, x.flip(3), x)


def crop_flip(x: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """The standard CIFAR training augmentation: random crop (zero padding 4) + horizontal flip."""
    return random_flip(random_crop(x, padding, generator), generator)
