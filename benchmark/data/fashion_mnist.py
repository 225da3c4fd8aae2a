"""Fashion-MNIST from IDX files (e.g. Debian's ``dataset-fashion-mnist`` package)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from benchmark.data.dataset import ImageDataset
from benchmark.data.source import DatasetSource, ResolvedPath, existing_dir, from_hwc
from benchmark.errors import DatasetError
from benchmark.params import Params as BaseParams  # `class Params(Params)` trips mypy (python/mypy#10958)

CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot")
HOW = (
    "Install it with `apt-get install dataset-fashion-mnist` (files under /usr/share/datasets/fashion-mnist) "
    "or put the four IDX files (train-images-idx3-ubyte[.gz], ...) in `root`."
)


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DatasetError(f"cannot read IDX file {str(path)!r}: {e}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DatasetError(f"{str(path)!r} is not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DatasetError(f"{str(path)!r} is truncated: expected {int(np.prod(dims))} values, found {body.size}")
    return body.reshape(dims)


def find(root: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (root / name).is_file():
            return root / name
    raise DatasetError(f"fashion-mnist: {stem}[.gz] not found in {str(root)!r}. {HOW}")


class FashionMNIST(DatasetSource):
    """Fashion-MNIST (Xiao et al. 2017): 60k/10k grayscale 28x28 images, 10 classes. ``[N, 1, 28, 28]``."""

    name = "fashion-mnist"
    description = "Fashion-MNIST"

    locators = ("root",)  # the canonical files, wherever they are installed

    class Params(BaseParams):
        root: ResolvedPath = "/usr/share/datasets/fashion-mnist"
    params: Params

    def load(self) -> tuple[ImageDataset, ImageDataset]:
        root = existing_dir(self.params.root, "fashion-mnist", HOW)
        parts = [read_idx(find(root, f"{s}-{k}-idx{d}-ubyte")) for s in ("train", "t10k") for k, d in (("images", 3), ("labels", 1))]
        return from_hwc(parts[0], parts[1], CLASSES), from_hwc(parts[2], parts[3], CLASSES)
