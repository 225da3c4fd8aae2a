"""Datasets stored as one ``.npz`` file of uint8 arrays (how ``shared/data/cifar10-jpeg.npz`` loads)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.data.dataset import ImageDataset
from benchmark.data.source import DatasetSource, ResolvedPath, check_splits, file_sha256, from_hwc
from benchmark.errors import DatasetError
from benchmark.params import Params as BaseParams  # `class Params(Params)` trips mypy (python/mypy#10958)

KEYS = ("x_train", "y_train", "x_test", "y_test")
#: the arrays an npz must have (without a test split, the matrix's ``dataset.test_from_train`` carves one)
REQUIRED = ("x_train", "y_train")


def _not_a_file(path: Path) -> str:
    what = "is a directory, not a file" if path.is_dir() else "is not a regular file" if path.exists() else "does not exist"
    return f"npz: {str(path)!r} {what}. Give `path` to a .npz with arrays {', '.join(KEYS)}."


def read_npz(path: Path) -> tuple[ImageDataset, ImageDataset]:
    """``(train, test)`` from an npz with arrays ``x_train``, ``y_train``, ``x_test``, ``y_test``
    (and optionally ``classes``). Without ``x_test`` and ``y_test`` the test split is empty."""
    if not path.is_file():
        raise DatasetError(_not_a_file(path))
    if not zipfile.is_zipfile(path):  # else numpy suggests allow_pickle for any other file
        raise DatasetError(f"npz: {str(path)!r} is not an .npz file (not a zip archive). Give `path` to a .npz with arrays {', '.join(KEYS)}.")
    try:
        with np.load(path, allow_pickle=False) as d:
            missing = [k for k in REQUIRED if k not in d.files]
            if ("x_test" in d.files) != ("y_test" in d.files):
                missing.append("y_test" if "x_test" in d.files else "x_test")
            if missing:
                raise DatasetError(
                    f"npz: {str(path)!r} lacks arrays {', '.join(missing)} (it has {', '.join(d.files)}); "
                    f"expected {', '.join(KEYS)} (without a test split: x_train and y_train only)"
                )
            arrays = {k: d[k] for k in KEYS if k in d.files}
            try:
                names = d["classes"] if "classes" in d.files else None
            except ValueError:  # numpy refuses an object array without pickles
                raise DatasetError(f"npz: {str(path)!r}: its `classes` array is an object array (pickled), which is not "
                                   "loaded: save the names as strings, np.array(names, dtype=str)") from None
            classes = None if names is None else [c.decode() if isinstance(c, bytes) else str(c) for c in names]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DatasetError(f"npz: cannot read {str(path)!r}: {e}") from None
    name = f"npz {str(path)!r}"
    if "x_test" not in arrays:  # a training split only: an empty test split of the same image shape
        arrays["x_test"], arrays["y_test"] = arrays["x_train"][:0], arrays["y_train"][:0]
    for k in ("y_train", "y_test"):
        y = arrays[k]
        if y.dtype.kind not in "iu" or y.ndim != 1:
            raise DatasetError(f"{name}: {k} must be a 1-D array of integer class indices, got {y.dtype} {y.shape}")
    if classes is None:
        n = int(arrays["y_train"].max()) + 1 if arrays["y_train"].size else 0
        classes = [str(i) for i in range(n)]
    return check_splits(
        from_hwc(arrays["x_train"], arrays["y_train"], classes, f"{name} x_train"),
        from_hwc(arrays["x_test"], arrays["y_test"], classes, f"{name} x_test"),
        name,
    )


class Npz(DatasetSource):
    """A ``.npz`` with ``x_train``/``x_test`` uint8 ``[N,H,W,C]`` (or ``[N,H,W]``), ``y_train``/``y_test``
    integer labels, and optionally ``classes`` (names). Loaded as ``[N, C, H, W]`` uint8. Without
    ``x_test``/``y_test``, the matrix's ``dataset.test_from_train`` carves a test split."""

    name = "npz"

    locators = ("path",)

    class Params(BaseParams):
        path: ResolvedPath
    params: Params

    @classmethod
    def describe(cls, identity: dict[str, Any]) -> str:
        content = str(identity.get("content", ""))
        return f"npz data ({content[:19]}…)" if content else "npz data"

    def content_id(self) -> str | None:
        """The file's sha256: the key of a cell names the data, not where it lies."""
        path = Path(self.params.path).expanduser()
        if not path.is_file():
            raise DatasetError(_not_a_file(path))
        return "sha256:" + file_sha256(path)

    def load(self) -> tuple[ImageDataset, ImageDataset]:
        return read_npz(Path(self.params.path).expanduser())
