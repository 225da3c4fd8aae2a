"""Fashion-MNIST from IDX files (e.g. Debian's ``dataset-fashion-mnist`` package)."""

from __future__ import annotations

import functools
import gzip
import hashlib
import struct
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.data.dataset import ImageDataset
from benchmark.data.source import DatasetSource, ResolvedPath, check_splits, existing_dir, from_hwc
from benchmark.errors import DatasetError
from benchmark.params import Params as BaseParams  # `class Params(Params)` trips mypy (python/mypy#10958)

#: sha256 of the four files' decompressed bytes (train images, train labels, test images, test
#: labels) as Debian's ``dataset-fashion-mnist`` ships them: these files are keyed by the name alone
DEBIAN_CONTENT = "14410854cf7a289477dcfc7df3f8ec24741e281cdcc425ede0d9a748ca630214"
STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot")
HOW = (
    "Install it with `apt-get install dataset-fashion-mnist` (files under /usr/share/datasets/fashion-mnist) "
    "or put the four IDX files (train-images-idx3-ubyte[.gz], ...) in `root`."
)


def _raw(path: Path) -> bytes:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            return f.read()
    except (OSError, EOFError) as e:
        raise DatasetError(f"cannot read IDX file {str(path)!r}: {e}") from None


@functools.lru_cache(maxsize=8)
def _content(paths: tuple[str, ...], stats: tuple[tuple[int, int], ...]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(_raw(Path(p)))
    return h.hexdigest()


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a numpy array."""
    data = _raw(path)
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

    locators = ("root",)  # where the files are; content_id says which files they are

    class Params(BaseParams):
        root: ResolvedPath = "/usr/share/datasets/fashion-mnist"
    params: Params

    @classmethod
    def describe(cls, identity: dict[str, Any]) -> str:
        content = str(identity.get("content", ""))
        return f"Fashion-MNIST-format IDX files ({content[:19]}…)" if content else cls.description

    def _files(self) -> list[Path]:
        root = existing_dir(self.params.root, "fashion-mnist", HOW)
        return [find(root, stem) for stem in STEMS]

    def content_id(self) -> str | None:
        """``None`` for Debian's files (the name says what they are), else the sha256 of the four
        files' decompressed bytes: other IDX files under these names (MNIST's, an edited copy)
        get keys of their own."""
        files = self._files()
        digest = _content(tuple(map(str, files)), tuple((f.stat().st_size, f.stat().st_mtime_ns) for f in files))
        return None if digest == DEBIAN_CONTENT else "sha256:" + digest

    def load(self) -> tuple[ImageDataset, ImageDataset]:
        parts = [read_idx(f) for f in self._files()]
        name = f"fashion-mnist {str(self.params.root)!r}"
        return check_splits(from_hwc(parts[0], parts[1], CLASSES, f"{name} train"),
                            from_hwc(parts[2], parts[3], CLASSES, f"{name} test"), name)
