"""Base class of dataset plugins."""

from __future__ import annotations

import functools
import hashlib
import os
from abc import abstractmethod
from pathlib import Path
from typing import Annotated, Any

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

    #: params that only say where the data is (not what it is): left out of :meth:`identity`
    locators: tuple[str, ...] = ()

    #: one line naming the data for tables and docs ("CIFAR-10", "scikit-learn digits (8x8 grayscale)")
    description: str = ""

    @classmethod
    def describe(cls, identity: dict[str, Any]) -> str:
        """One line naming the data of ``identity`` (what :meth:`identity` returned, as records
        keep it). Known files (:data:`benchmark.data.describe.KNOWN_CONTENT`) are named by the
        core before this is asked; sources whose content varies override it."""
        return cls.description or cls.name

    @abstractmethod
    def load(self) -> tuple[ImageDataset, ImageDataset]:
        """Return ``(train, test)``."""

    def identity(self) -> dict[str, Any]:
        """What the data *is*, for cache keys: the spec without the :attr:`locators` (a path, a
        ``download`` flag), plus :meth:`content_id` when the source can name its content. The same
        data under another path (a CI checkout, a cluster's scratch disk) then has the same keys,
        so committed results and cached poisons are found wherever the data lives."""
        spec = self.spec()
        spec["params"] = {k: v for k, v in spec["params"].items() if k not in self.locators}
        content = self.content_id()
        if content is not None:
            spec["content"] = content
        return spec

    def content_id(self) -> str | None:
        """A digest of the source's files, or ``None`` to rely on the name and params alone."""
        return None


@functools.lru_cache(maxsize=32)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 of a file (cached per process by path, size and modification time)."""
    st = os.stat(path)
    return _file_sha256(str(path), st.st_size, st.st_mtime_ns)


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


def missing_dir(path: Path) -> str:
    """Why ``path`` is not a directory (``"is a file, not a directory"``, ``"does not exist"``), or ``""``."""
    return "" if path.is_dir() else "is a file, not a directory" if path.exists() else "does not exist"


def existing_dir(root: str | Path, dataset: str, how_to_get: str) -> Path:
    path = Path(root).expanduser()
    if what := missing_dir(path):
        raise DatasetError(f"{dataset}: directory {str(path)!r} {what}. {how_to_get}")
    return path
