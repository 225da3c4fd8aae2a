"""Batched, per-sample-random augmentations on float tensors ``[B, C, H, W]`` in [0, 1].

Random numbers come from a CPU ``torch.Generator`` (reproducible on any device); the image work
happens on the tensors' device. Every op is differentiable with respect to the input, so attacks
can optimize through them (TAP, AAP). No PIL, no per-sample Python.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
"""A batched augmentation: ``(x [B, C, H, W] in [0, 1], CPU generator) -> same shape``."""


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move a small CPU tensor of random draws to ``device``. On CUDA through pinned memory and
    without blocking: a copy from pageable memory waits for the GPU to finish its queued work."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad by ``padding`` and crop back to ``H x W`` at a random offset per sample
    (torchvision ``RandomCrop(size, padding)``)."""
    if padding <= 0:
        return x
    b, c, h, w = x.shape
    xp = F.pad(x, (padding, padding, padding, padding))
    oy = to_device(torch.randint(0, 2 * padding + 1, (b,), generator=generator), x.device)
    ox = to_device(torch.randint(0, 2 * padding + 1, (b,), generator=generator), x.device)
    rows = (oy[:, None] + torch.arange(h, device=x.device)).view(b, 1, h, 1).expand(b, c, h, w + 2 * padding)
    cols = (ox[:, None] + torch.arange(w, device=x.device)).view(b, 1, 1, w).expand(b, c, h, w)
    return xp.gather(2, rows).gather(3, cols)


def random_flip(x: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Horizontal flip of each sample with probability ``p``."""
    mask = to_device(torch.rand(x.shape[0], generator=generator) < p, x.device).view(-1, 1, 1, 1)
    return torch.where(mask, x.flip(3), x)


def crop_flip(x: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """The standard CIFAR training augmentation: random crop (zero padding 4) + horizontal flip."""
    return random_flip(random_crop(x, padding, generator), generator)


def random_translate(
    x: torch.Tensor,
    generator: torch.Generator,
    max_shift: float = 4.0,
    flip: bool = True,
    fill: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sub-pixel random translation + horizontal flip, per sample, differentiable in ``x``: the
    ``RandomTransform`` of Witches' Brew / TAP (lhfowl/adversarial_poisons and TrustMLRG/TransPoison
    ``village/materials/diff_data_augmentation.py``, ``shift=8`` at 32 px).

    Each sample moves by ``(U(-1, 1) * max_shift, U(-1, 1) * max_shift)`` pixels (continuous),
    resampled bilinearly (``grid_sample``, ``align_corners=True``: zero shift is the identity),
    and is mirrored left-right with probability 1/2 (``flip``). Outside the image the value is
    ``fill`` (``[C]``; ``None``: 0). The official code pads with 0 in *normalized* space, i.e. with
    the normalization mean in pixel space: pass the model's mean to match it.
    """
    b, c, h, w = x.shape
    r = torch.rand(b, 3, generator=generator)
    tx = (r[:, 0] * 2 - 1) * max_shift * 2 / max(1, w - 1)
    ty = (r[:, 1] * 2 - 1) * max_shift * 2 / max(1, h - 1)
    sx = torch.where(r[:, 2] > 0.5, -1.0, 1.0) if flip else torch.ones(b)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx, sx * tx, 1.0, ty
    grid = F.affine_grid(to_device(theta, x.device).to(x.dtype), [b, c, h, w], align_corners=True)
    base = None if fill is None else fill.to(device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    src = x if base is None else x - base
    out = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out if base is None else out + base


# ----------------------------------------------------------------------- contrastive-style views


def _uniform(n: int, lo: float, hi: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return to_device(torch.rand(n, generator=generator) * (hi - lo) + lo, device)


def random_resized_crop(
    x: torch.Tensor,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.2, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> torch.Tensor:
    """Per-sample random resized crop back to ``H x W`` (bilinear, ``affine_grid``/``grid_sample``).

    Area fraction ~ U(scale), log aspect ratio ~ U(log ratio); a crop that would not fit is
    shrunk to fit (torchvision retries up to 10 times, then falls back to a centre crop), so the
    crops are larger on average than torchvision's and the views easier (benchmarks/ssl_views.py).
    :func:`torchvision_resized_crop` samples as torchvision does; the plugins keep this one until the
    contrastive evidence is recomputed with that one (docs/victims.md, "Pretraining").
    """
    b = x.shape[0]
    dev = x.device
    area = torch.rand(b, generator=generator) * (scale[1] - scale[0]) + scale[0]
    logr = torch.rand(b, generator=generator) * (math.log(ratio[1]) - math.log(ratio[0])) + math.log(ratio[0])
    r = torch.exp(logr)
    w = torch.sqrt(area * r).clamp(max=1.0)
    h = torch.sqrt(area / r).clamp(max=1.0)
    cx = (torch.rand(b, generator=generator) * 2 - 1) * (1 - w)
    cy = (torch.rand(b, generator=generator) * 2 - 1) * (1 - h)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w, cx, h, cy
    grid = F.affine_grid(to_device(theta, dev).to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def resized_crop_boxes(
    n: int,
    height: int,
    width: int,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.2, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    tries: int = 10,
) -> torch.Tensor:
    """``n`` crop boxes ``[n, 4]`` (top, left, h, w; int64, CPU) drawn as torchvision's
    ``RandomResizedCrop.get_params`` draws one: up to ``tries`` candidates of area ~ U(scale) x H W
    and log aspect ratio ~ U(log ratio), sides rounded to whole pixels; the first that fits the
    image is kept, at a uniform integer offset; when none fits, the centre crop of the largest
    box within ``ratio``. All candidates are drawn at once (no per-sample Python); the random
    stream differs from torchvision's, the distribution does not."""
    area = height * width
    target = (torch.rand(n, tries, generator=generator) * (scale[1] - scale[0]) + scale[0]) * area
    lo, hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(torch.rand(n, tries, generator=generator) * (hi - lo) + lo)
    w = torch.round(torch.sqrt(target * aspect)).long()
    h = torch.round(torch.sqrt(target / aspect)).long()
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.int().argmax(dim=1, keepdim=True)  # index of the first fitting candidate (0 if none)
    w, h, found = w.gather(1, first)[:, 0], h.gather(1, first)[:, 0], fits.any(dim=1)
    u = torch.rand(n, 2, generator=generator)
    top = (u[:, 0] * (height - h + 1)).long().clamp(max=height - h)
    left = (u[:, 1] * (width - w + 1)).long().clamp(max=width - w)
    in_ratio = width / height  # the fallback, as torchvision: the whole image, cut to the ratio range
    if in_ratio < min(ratio):
        cw, ch = width, round(width / min(ratio))
    elif in_ratio > max(ratio):
        cw, ch = round(height * max(ratio)), height
    else:
        cw, ch = width, height
    fb = torch.tensor([(height - ch) // 2, (width - cw) // 2, ch, cw])
    boxes = torch.stack([top, left, h, w], dim=1)
    return torch.where(found[:, None], boxes, fb)


def resized_crop(x: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Crop each sample of ``x`` ``[B, C, H, W]`` to its box (``[B, 4]`` top, left, h, w, in
    pixels) and resize it back to ``H x W`` bilinearly: torchvision's ``resized_crop`` on a tensor
    (``interpolate``'s half-pixel convention, edge pixels repeated, no pixel outside the box read),
    batched through one ``grid_sample``. Crops are never larger than the image, so antialiasing
    (which only acts when shrinking) does not apply. Differentiable in ``x``."""
    b, _, height, width = x.shape
    bx = to_device(boxes.to(torch.float32), x.device)  # the sample positions in float32 whatever x's dtype
    top, left, bh, bw = bx.unbind(1)

    def axis(start: torch.Tensor, size: torch.Tensor, n: int) -> torch.Tensor:
        # output pixel centre -> source coordinate inside the box, clamped to its outer pixel centres
        pos = start[:, None] + (torch.arange(n, device=x.device, dtype=torch.float32) + 0.5) * (size / n)[:, None]
        pos = torch.maximum(torch.minimum(pos, (start + size - 0.5)[:, None]), (start + 0.5)[:, None])
        return pos * (2.0 / n) - 1.0  # align_corners=False normalisation

    gy, gx = axis(top, bh, height), axis(left, bw, width)
    grid = torch.stack([gx[:, None, :].expand(b, height, width), gy[:, :, None].expand(b, height, width)], dim=-1)
    work = x if x.dtype in (torch.float32, torch.float64) else x.float()  # bf16/fp16: interpolate in float32
    out = F.grid_sample(work, grid.to(work.dtype), mode="bilinear", padding_mode="border", align_corners=False)
    return out.to(x.dtype)


def torchvision_resized_crop(
    x: torch.Tensor,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.2, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> torch.Tensor:
    """torchvision's ``RandomResizedCrop((H, W))`` per sample, batched: :func:`resized_crop_boxes` then
    :func:`resized_crop`. What :func:`random_resized_crop` becomes once the contrastive evidence is
    recomputed with it (benchmarks/ssl_views.py measured the difference; docs/victims.md)."""
    return resized_crop(x, resized_crop_boxes(x.shape[0], x.shape[2], x.shape[3], generator, scale, ratio))


def hsv_hue_shift(x: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """torchvision's ``adjust_hue`` with a factor per sample: RGB ``[B, 3, H, W]`` to HSV, the hue
    moved by ``turns`` ``[B]`` (fraction of a turn, modulo 1), back to RGB. Grey pixels (no chroma)
    are unchanged; one channel is returned as it is (torchvision's rule). Computed in float32 at
    least (bf16/fp16 inputs are cast back). Differentiable in ``x``: at a grey pixel the hue is
    undefined and the gradient is spread evenly over the three channels. ``turns`` may live on the
    CPU (moved here)."""
    if x.shape[1] == 1:
        return x
    dtype = x.dtype
    x = x if dtype in (torch.float32, torch.float64) else x.float()
    turns = to_device(turns, x.device) if turns.device != x.device else turns
    r, g, b = x.unbind(1)
    maxc, minc = x.amax(dim=1), x.amin(dim=1)
    chroma = maxc - minc
    grey = chroma == 0
    safe = torch.where(grey, torch.ones_like(chroma), chroma)
    sat = chroma / torch.where(grey, torch.ones_like(maxc), maxc)
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    is_r = maxc == r
    is_g = (maxc == g) & ~is_r
    sector = torch.where(is_r, bc - gc, torch.where(is_g, 2.0 + rc - bc, 4.0 + gc - rc))
    hue = torch.where(grey, torch.zeros_like(sector), sector) / 6.0
    hue = torch.remainder(hue + turns.to(x.dtype).view(-1, 1, 1), 1.0)
    h6 = hue * 6.0
    i = torch.floor(h6)
    f = h6 - i
    i = i.long() % 6
    p = (maxc * (1 - sat)).clamp(0, 1)
    q = (maxc * (1 - sat * f)).clamp(0, 1)
    t = (maxc * (1 - sat * (1 - f))).clamp(0, 1)
    v = maxc
    # RGB of each of the six hue sectors, picked per pixel
    table = torch.stack([torch.stack(c, dim=0) for c in ((v, q, p, p, t, v), (t, v, v, q, p, p), (p, p, t, v, v, q))], dim=1)
    return table.gather(0, i[None, None].expand(1, 3, *i.shape))[0].permute(1, 0, 2, 3).to(dtype)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """Luma ``[B, 1, H, W]`` (ITU-R 601-2 weights) of RGB ``[B, 3, H, W]``."""
    if x.shape[1] == 1:
        return x
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])


def _blend(a: torch.Tensor, b: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (factor.view(-1, 1, 1, 1) * a + (1 - factor.view(-1, 1, 1, 1)) * b).clamp(0, 1)


#: RGB -> YIQ, and back (computed once on the host: an inverse on the GPU would wait for it)
_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_INV = torch.linalg.inv(_YIQ)


def _hue_shift(x: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """Rotate the chroma plane in YIQ by ``turns`` (fraction of a full turn, per sample)."""
    m = to_device(_YIQ, x.device).to(x.dtype)
    yiq = torch.einsum("ij,bjhw->bihw", m, x)
    ang = turns.to(x.dtype) * 2 * math.pi
    cos, sin = torch.cos(ang).view(-1, 1, 1), torch.sin(ang).view(-1, 1, 1)
    i, q = yiq[:, 1], yiq[:, 2]
    yiq = torch.stack([yiq[:, 0], cos * i - sin * q, sin * i + cos * q], dim=1)
    return torch.einsum("ij,bjhw->bihw", to_device(_YIQ_INV, x.device).to(x.dtype), yiq).clamp(0, 1)


def color_jitter(
    x: torch.Tensor,
    generator: torch.Generator,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    hue: float = 0.1,
    p: float = 0.8,
) -> torch.Tensor:
    """torchvision-style ``ColorJitter`` applied to each sample with probability ``p``.

    Factors per sample: brightness, contrast, saturation ~ U(1 - v, 1 + v); hue ~ U(-hue, hue)
    turns, a YIQ rotation where torchvision shifts the HSV hue. :func:`hsv_hue_shift` is
    torchvision's; the plugins take it up together with :func:`torchvision_resized_crop`. Applied
    in that fixed order (torchvision draws a random order per image).
    """
    b, dev = x.shape[0], x.device
    apply = to_device(torch.rand(b, generator=generator) < p, dev)
    y = x
    if brightness:
        f = _uniform(b, 1 - brightness, 1 + brightness, generator, dev)
        y = (y * f.view(-1, 1, 1, 1)).clamp(0, 1)
    if contrast:
        f = _uniform(b, 1 - contrast, 1 + contrast, generator, dev)
        y = _blend(y, _gray(y).mean(dim=(1, 2, 3), keepdim=True).expand_as(y), f)
    if x.shape[1] == 3:
        if saturation:
            f = _uniform(b, 1 - saturation, 1 + saturation, generator, dev)
            y = _blend(y, _gray(y).expand_as(y), f)
        if hue:
            y = _hue_shift(y, _uniform(b, -hue, hue, generator, dev))
    return torch.where(apply.view(-1, 1, 1, 1), y, x)


def random_grayscale(x: torch.Tensor, generator: torch.Generator, p: float = 0.2) -> torch.Tensor:
    """Replace each sample by its luma (3 channels) with probability ``p``."""
    if x.shape[1] == 1:
        return x
    mask = to_device(torch.rand(x.shape[0], generator=generator) < p, x.device).view(-1, 1, 1, 1)
    return torch.where(mask, _gray(x).expand_as(x), x)


def contrastive_view(
    x: torch.Tensor,
    generator: torch.Generator,
    *,
    scale: tuple[float, float] = (0.2, 1.0),
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1),
    p_jitter: float = 0.8,
    p_gray: float = 0.2,
) -> torch.Tensor:
    """One SimCLR CIFAR view: random resized crop, flip, colour jitter (p 0.8), grayscale (p 0.2)
    (Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual Representations", ICML;
    the CIFAR views of kaiwenzha/contrastive-poisoning). Differentiable in ``x``."""
    x = random_resized_crop(x, generator, scale)
    x = random_flip(x, generator)
    x = color_jitter(x, generator, *jitter, p=p_jitter)
    return random_grayscale(x, generator, p_gray)


def strength_view_params(s: float) -> dict[str, object]:
    """The AUE/AAP augmentation of strength ``s`` (Wang, Zhu & Gao, NeurIPS 2024, ``utils.Augment``):
    crop scale (1 - 0.9 s, 1), jitter (0.4 s, 0.4 s, 0.4 s, 0.1 s) with p = min(0.99, 0.8 s),
    grayscale p = 0.2 s. Pass to :func:`contrastive_view` as keyword arguments."""
    return {
        "scale": (1 - 0.9 * s, 1.0),
        "jitter": (0.4 * s, 0.4 * s, 0.4 * s, 0.1 * s),
        "p_jitter": min(0.99, 0.8 * s),
        "p_gray": 0.2 * s,
    }


def strength_augment(s: float) -> Augment:
    """The AUE/AAP contrastive-like augmentation of strength ``s`` (per sample, differentiable): a
    :func:`contrastive_view` with :func:`strength_view_params` ``(s)``. Shared by the AUE, T-AAP and
    UT-AAP attacks (Wang, Zhu & Gao, NeurIPS 2024, EhanW/AUE-AAP ``utils.Augment``)."""
    kw = strength_view_params(s)

    def aug(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return contrastive_view(x, g, **kw)  # type: ignore[arg-type]

    return aug
