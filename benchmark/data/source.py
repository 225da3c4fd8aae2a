"""Base class of dataset plugins."""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
from pydantic import AfterValidator

from benchmark.data.dataset import ImageDataset
from benchmark.errors import DatasetError
from benchmark.plugin import Plugin


def _resolve(path: str) -> str:
    return str(Path(path).expanduser().resolve())


#: A filesystem path param, made absolute (``~`` expanded, links resolved) when validated, so that
#: the same files give the same cache keys from any working directory and different files never share one.
ResolvedPath = Annotated[str, AfterValidator(_resolve)]


class DatasetSource(Plugin):
    """A named source of a train and a test split, as uint8 ``[N, C, H, W]`` tensors.

    Subclasses set ``name``, ``version``, ``Params`` and implement :meth:`load`. Subsets and the
    clean hold-out are the core's job (:func:`benchmark.data.split.make_splits`), not the source's.
    """

    kind = "dataset"

    @abstractmethod
    def load(self) -> tuple[ImageDataset, ImageDataset]:
        """Return ``(train, test)``."""


def from_hwc(x: np.ndarray, y: np.ndarray, classes: list[str] | tuple[str, ...]) -> ImageDataset:
    """Build an :class:`ImageDataset` from numpy uint8 ``[N,H,W,C]`` or ``[N,H,W]`` arrays."""
    if x.dtype != np.uint8:
        raise DatasetError(f"images must be uint8, got {x.dtype}")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise DatasetError(f"images must be [N,H,W,C] or [N,H,W], got shape {x.shape}")
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    t = torch.from_numpy(x if x.flags.writeable else x.copy())
    return ImageDataset(t, torch.from_numpy(np.asarray(y).astype(np.int64)), tuple(str(c) for c in classes))


def existing_dir(root: str | Path, dataset: str, how_to_get: str) -> Path:
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DatasetError(f"{dataset}: directory {str(path)!r} does not exist. {how_to_get}")
    return path
