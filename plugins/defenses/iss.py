"""ISS: Image Shortcut Squeezing (Liu, Zhao & Larson, "Image Shortcut Squeezing: Countering
Perturbative Availability Poisons with Compression", ICML 2023)."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image
from pydantic import Field

from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import Defense, RunContext
from benchmark.params import Params


def grayscale_u8(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601-2 luma replicated to 3 channels, with Pillow's integer rounding
    (``convert('L').convert('RGB')``). ``x`` uint8 ``[N, 3, H, W]``; 1-channel input is returned as is."""
    if x.shape[1] == 1:
        return x.clone()
    r, g, b = (x[:, i].to(torch.int32) for i in range(3))
    lum = ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).to(torch.uint8)
    return lum.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()


def jpeg_u8(x: torch.Tensor, quality: int) -> torch.Tensor:
    """Encode each uint8 ``[N, C, H, W]`` image as JPEG at ``quality`` with Pillow (as the ISS code
    does: libjpeg, 4:2:0 chroma subsampling) and decode it back.

    One Pillow call per image, but only once per training set (JPEG of a fixed image is
    deterministic, so the defense precomputes it; about 0.1 ms an image at 32x32).
    """
    arr = x.permute(0, 2, 3, 1).numpy()
    mode = "L" if x.shape[1] == 1 else "RGB"
    out = np.empty_like(arr)
    for i in range(len(arr)):
        buf = io.BytesIO()
        Image.fromarray(arr[i].squeeze(-1) if mode == "L" else arr[i], mode).save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        dec = np.asarray(Image.open(buf).convert(mode))
        out[i] = dec[..., None] if mode == "L" else dec
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def bdr_u8(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Bit-depth reduction: keep the top ``bits`` bits of every channel (torchvision ``posterize``)."""
    mask = (0xFF << (8 - bits)) & 0xFF
    return x & mask


class _ISS(Defense):
    stage = "data"

    def squeeze(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - overridden
        return x

    def transform(self, train: ImageDataset, ctx: RunContext) -> ImageDataset:
        return train.with_images(self.squeeze(train.x))


class ISSGray(_ISS):
    """ISS grayscale (Liu, Zhao & Larson, ICML 2023): training images to 3-channel luminance (test
    images untouched; :func:`grayscale_u8`). Threat model: the data user preprocesses the whole
    released set, blind to which images are poisoned.

    Stage ``data``, uint8 ``[N, 3, H, W]`` -> same shape. Removes low-frequency, colour-coded
    shortcuts (EM, REM, class-wise noise); does little against TAP (ISS Table 1).
    """

    name = "iss-gray"

    def squeeze(self, x: torch.Tensor) -> torch.Tensor:
        return grayscale_u8(x)


class ISSJpeg(_ISS):
    """ISS JPEG (Liu, Zhao & Larson, ICML 2023): re-encode every training image as JPEG, quality 10 by
    default (ISS's setting; Pillow's encoder, :func:`jpeg_u8`). Threat model: the data user
    preprocesses the whole released set, blind to which images are poisoned.

    Stage ``data``, uint8 ``[N, C, H, W]`` -> same shape. Removes high-frequency perturbations
    (TAP, SEP) and most others, at a cost on clean accuracy.
    """

    name = "iss-jpeg"
    version = "2"  # 2: Pillow's encoder (the ISS reference) instead of torchvision.io

    class Params(Params):
        quality: int = Field(10, ge=1, le=100)  # JPEG quality (1-100) of the re-encoding; 10 in ISS

    def squeeze(self, x: torch.Tensor) -> torch.Tensor:
        return jpeg_u8(x, self.params.quality)


class ISSBdr(_ISS):
    """ISS bit-depth reduction (Liu, Zhao & Larson, ICML 2023, as APBench runs it): keep the top
    ``bits`` bits (2, as in APBench) of each channel. Threat model: the data user preprocesses the
    whole released set, blind to which images are poisoned.

    Stage ``data``, uint8 ``[N, C, H, W]`` -> same shape.
    """

    name = "iss-bdr"

    class Params(Params):
        bits: int = Field(2, ge=1, le=8)  # top bits kept per channel value (of 8); 2 as in APBench

    def squeeze(self, x: torch.Tensor) -> torch.Tensor:
        return bdr_u8(x, self.params.bits)


PLUGINS = [ISSGray, ISSJpeg, ISSBdr]
