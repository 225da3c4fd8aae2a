"""The torch device a matrix names, checked against this machine."""

from __future__ import annotations

import torch

from benchmark.errors import UserError


def pick_device(name: str) -> torch.device:
    """The torch device a matrix's ``device`` names (validated by :func:`benchmark.config.check_device`),
    or a :class:`UserError` when this machine does not have it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device {name!r} was asked for but CUDA is not available here (use device: auto or cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"device {name!r} was asked for but this machine has {torch.cuda.device_count()} CUDA device(s): "
                            f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device {name!r} was asked for but MPS is not available here (use device: auto or cpu)")
    return dev
