"""Median filter of the training images: a cheap baseline against sparse and high-frequency
perturbations (the ISS repository's ``augmentations.py``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import Defense, RunContext
from benchmark.params import OddKernel, Params

#: images per chunk (the unfolded windows are kernel_size**2 times the chunk)
_CHUNK = 1024


def median_filter_u8(x: torch.Tensor, kernel_size: int = 3) -> torch.Tensor:
    """Median of each ``kernel_size`` x ``kernel_size`` window, every channel on its own, of uint8
    ``[N, C, H, W]`` images; borders replicate the edge pixels (OpenCV ``medianBlur``'s border).
    The window has an odd number of pixels, so the median is one of them: the result is exact uint8."""
    n, c, h, w = x.shape
    pad = kernel_size // 2
    out = torch.empty_like(x)
    for s in range(0, n, _CHUNK):
        chunk = x[s : s + _CHUNK]
        b = chunk.shape[0]
        f = F.pad(chunk.float().view(b * c, 1, h, w), (pad, pad, pad, pad), mode="replicate")
        windows = F.unfold(f, kernel_size)  # [b*c, k*k, h*w]
        out[s : s + _CHUNK] = windows.median(dim=1).values.view(b, c, h, w).to(torch.uint8)
    return out


class MedianFilter(Defense):
    """3x3 median filter of every training image (test images untouched).

    Source: the ISS repository (liuzrcc/ImageShortcutSqueezing, ``augmentations.py``: OpenCV
    ``medianBlur`` with a 3x3 aperture). Stage ``data``: uint8 ``[N, C, H, W]`` -> same shape,
    computed once (deterministic), before the victim's crop/flip. Applies to every victim.

    Deviation (a pitfall fixed, spec §1.4): the ISS code calls OpenCV after ``ToTensor`` on a
    C x H x W float array, which OpenCV reads as an H=C image with W channels: that path filters
    the wrong axes. Here the median runs on the uint8 H x W image of each channel, as intended,
    with replicated borders (OpenCV's border for ``medianBlur``).
    """

    name = "median-filter"
    stage = "data"

    class Params(Params):
        kernel_size: OddKernel = 3  # side in pixels of the square median window (odd)

    def transform(self, train: ImageDataset, ctx: RunContext) -> ImageDataset:
        return train.with_images(median_filter_u8(train.x, self.params.kernel_size))


PLUGINS = [MedianFilter]
