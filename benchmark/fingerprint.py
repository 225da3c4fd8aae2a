"""Content fingerprints: what a cache key names when an artifact depends on data or weights that
have no spec of their own (a defended training set, a surrogate an attack trained)."""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from benchmark.data.dataset import ImageDataset


def data_fingerprint(data: ImageDataset) -> str:
    """sha256 (20 hex digits) of a dataset's shape, uint8 images and int64 labels, in order."""
    h = hashlib.sha256()
    h.update(str(tuple(data.x.shape)).encode())
    h.update(data.x.contiguous().cpu().numpy().tobytes())
    h.update(data.y.to(torch.int64).contiguous().cpu().numpy().tobytes())
    return h.hexdigest()[:20]


def model_fingerprint(model: nn.Module) -> str:
    """sha256 (20 hex digits) of a model's state dict: names, shapes, dtypes and values (parameters
    and buffers), in order. Two models with equal weights have equal fingerprints on any device."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:20]
