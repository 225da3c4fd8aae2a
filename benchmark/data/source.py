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

    def download_note(self) -> str | None:
        """One line for ``bench run --dry-run`` when the data is not here and ``bench run`` would
        download it first (where it looked, what it would fetch, and where to); else ``None``.
        Only looks: it writes and fetches nothing."""
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


def from_hwc(x: np.ndarray, y: np.ndarray, classes: list[str] | tuple[str, ...], what: str = "images") -> ImageDataset:
    """Build an :class:`ImageDataset` from numpy uint8 ``[N,H,W,C]`` or ``[N,H,W]`` images and
    integer labels in ``0..len(classes)-1``; ``what`` names the arrays in errors (``"npz 'f.npz'
    x_train"``)."""
    if x.dtype != np.uint8:
        hint = " (from floats in [0, 1]: (x * 255).round().astype(np.uint8))" if x.dtype.kind == "f" else ""
        raise DatasetError(f"{what} must be uint8, got {x.dtype}{hint}")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise DatasetError(f"{what} must be [N,H,W,C] or [N,H,W], got shape {x.shape}")
    if x.shape[-1] not in (1, 3, 4) and x.shape[1] in (1, 3, 4):  # [N,C,H,W] would read as C-pixel-high images
        raise DatasetError(f"{what} has shape {x.shape}, which looks channels-first [N,C,H,W]: give [N,H,W,C] "
                           "(np.transpose(x, (0, 2, 3, 1)))")
    y = np.asarray(y)
    if y.dtype.kind not in "iu":
        raise DatasetError(f"labels of {what} must be integers, got {y.dtype}")
    if y.shape != (x.shape[0],):
        raise DatasetError(f"labels of {what} must have shape [{x.shape[0]}] (one class index per image), got {y.shape}")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= len(classes)):
        raise DatasetError(f"labels of {what} range over {int(y.min())}..{int(y.max())}, outside 0..{len(classes) - 1} "
                           f"({len(classes)} classes): labels must be class indices from 0")
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    t = torch.from_numpy(x if x.flags.writeable else x.copy())
    return ImageDataset(t, torch.from_numpy(y.astype(np.int64)), tuple(str(c) for c in classes))


def check_splits(train: ImageDataset, test: ImageDataset, what: str) -> tuple[ImageDataset, ImageDataset]:
    """``(train, test)`` once they fit together: the same image shape and training images for
    every class (a class with none would be a class the model never sees, counted in its logits).
    A test split without images is data with a training split only: the matrix's
    ``dataset.test_from_train`` carves one (:func:`benchmark.data.split.make_splits`)."""
    if len(test) and train.shape != test.shape:
        raise DatasetError(f"{what}: the test images are {list(test.shape)} [C,H,W] but the training images {list(train.shape)}")
    counts = torch.bincount(train.y, minlength=train.num_classes)
    if bool((counts == 0).any()):
        empty = [train.classes[i] for i in torch.nonzero(counts == 0).flatten().tolist()]
        raise DatasetError(f"{what}: class{'es' if len(empty) > 1 else ''} {', '.join(map(repr, empty[:5]))} "
                           f"{'have' if len(empty) > 1 else 'has'} no training images (labels must be 0..K-1, each used)")
    return train, test


def missing_dir(path: Path) -> str:
    """Why ``path`` is not a directory (``"is a file, not a directory"``, ``"does not exist"``), or ``""``."""
    return "" if path.is_dir() else "is a file, not a directory" if path.exists() else "does not exist"


def existing_dir(root: str | Path, dataset: str, how_to_get: str) -> Path:
    path = Path(root).expanduser()
    if what := missing_dir(path):
        raise DatasetError(f"{dataset}: directory {str(path)!r} {what}. {how_to_get}")
    return path
