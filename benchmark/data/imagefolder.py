"""Image folders: ``root/train/<class>/*.png`` and ``root/test/<class>/*.png`` (Tiny-ImageNet,
ImageNet-100...), or one folder of class folders with the test split carved off by the matrix."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from benchmark.data.dataset import ImageDataset
from benchmark.data.source import DatasetSource, ResolvedPath, check_splits, existing_dir, from_hwc
from benchmark.errors import DatasetError
from benchmark.params import Params as BaseParams  # `class Params(Params)` trips mypy (python/mypy#10958)

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".ppm", ".tif", ".tiff"}
HOW = ("Expected `root/train/<class>/<image>` and `root/test/<class>/<image>` (the test split may be named `val`), "
       "or training images only (`root/train/<class>/<image>` or `root/<class>/<image>`) with the matrix's "
       "`dataset.test_from_train` (e.g. '20%').")
#: Pillow modes of more than 8 bits per channel: ``convert("RGB")`` clips them to 0 or 255
WIDE_MODES = {"I", "F", "I;16", "I;16B", "I;16L", "I;16N", "I;16S"}


def image_files(class_dir: Path) -> list[tuple[str, os.stat_result]]:
    """The images of one class folder with their ``stat``, sorted by path: its subfolders (linked
    ones too) included, as torchvision's ``ImageFolder`` walks them; hidden files and folders
    (``.ipynb_checkpoints``, macOS's ``._x.png``) skipped. One ``stat`` per file, no pixel read."""
    out = []
    for top, dirs, files in os.walk(class_dir, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in EXTENSIONS:
                path = os.path.join(top, name)
                try:
                    out.append((path, os.stat(path)))
                except OSError:  # a dangling link: the decoder names it, if it is ever read
                    continue
    return sorted(out)


def class_folders(split_dir: Path) -> list[str]:
    """The class folder names of a split, sorted; hidden folders skipped."""
    return sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


class ImageFolder(DatasetSource):
    """Class-per-folder images decoded once with Pillow into memory, resized to ``size`` x ``size`` RGB.

    Class names are the sorted folder names of ``train/``; the test split must use the same names.
    Without a ``test``/``val`` folder (and no ``test_split`` given) the data has a training split
    only, ``root/train/`` or, without it, ``root/`` itself: the matrix's ``dataset.test_from_train``
    carves the test split from it.
    Shapes: ``[N, 3, size, size]`` uint8. Decoding is per image, but it happens once, at load time.
    The cache keys name the files (each one's path under ``root``, size and modification time), not
    where ``root`` lies: an edited, added or removed image gives new keys, and so does a copy that
    does not keep modification times (``cp -r``; ``cp -a`` and ``rsync -a`` keep them).
    """

    name = "imagefolder"
    version = "2"
    description = "image folders"

    locators = ("root", "test_split")  # content_id names the files, each by its path from root (train/..., test/...)

    class Params(BaseParams):
        root: ResolvedPath
        size: int = Field(32, ge=1, le=4096)
        #: the test split's folder; unset: `test`, else `val`
        test_split: str | None = None
    params: Params

    def _splits(self) -> tuple[Path, Path | None]:
        """The training split's folder and the test split's, ``None`` for training images only."""
        root = existing_dir(self.params.root, "imagefolder", HOW)
        train_dir = root / "train"
        if self.params.test_split is not None:
            test_dir: Path | None = root / self.params.test_split
        else:
            test_dir = next((d for d in (root / "test", root / "val") if d.is_dir()), None)
            if not train_dir.is_dir() and test_dir is None:
                return root, None  # root/<class>/<image>: training images only
        for d in (train_dir, test_dir):
            if d is not None and not d.is_dir():
                raise DatasetError(f"imagefolder: {str(d)!r} does not exist. {HOW}")
        if test_dir is not None and test_dir.resolve() == train_dir.resolve():
            raise DatasetError(f"imagefolder: the test split {str(test_dir)!r} is the training split: give `test_split` "
                               "another folder (a model scored on its training images says nothing)")
        return train_dir, test_dir

    def _classes(self, train_dir: Path, test_dir: Path | None) -> list[str]:
        classes = class_folders(train_dir)
        if not classes:
            raise DatasetError(f"imagefolder: no class folders in {str(train_dir)!r}. {HOW}")
        extra = sorted(set(class_folders(test_dir)) - set(classes)) if test_dir is not None else []
        if extra:
            raise DatasetError(f"imagefolder: {str(test_dir)!r} has class folders that {str(train_dir)!r} lacks: "
                               f"{', '.join(map(repr, extra[:5]))} (the training split's folders are "
                               f"{', '.join(map(repr, classes[:10]))}{', ...' if len(classes) > 10 else ''})")
        return classes

    @classmethod
    def describe(cls, identity: dict[str, Any]) -> str:
        content = str(identity.get("content", ""))
        return f"image folders ({content[:18]}…)" if content else "image folders"

    def content_id(self) -> str | None:
        """A digest of every image file's path under ``root``, size and modification time (one
        ``stat`` per file and no pixel read: well under a second for 60,000 files on a local disk)."""
        train_dir, test_dir = self._splits()
        h = hashlib.sha256()
        classes = self._classes(train_dir, test_dir)
        for split_dir in (train_dir, test_dir):
            if split_dir is None:
                continue
            # each file by its path from root ("train/cat/1.png"; "cat/1.png" when root is the training split)
            skip = len(str(split_dir if split_dir == Path(self.params.root).expanduser() else split_dir.parent)) + 1
            for cls in classes:
                for f, st in image_files(split_dir / cls) if (split_dir / cls).is_dir() else []:
                    h.update(f"{f[skip:]}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return "files:" + h.hexdigest()

    def _read_split(self, split_dir: Path, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
        from PIL import Image, UnidentifiedImageError

        xs, ys = [], []
        size = self.params.size
        im: Image.Image  # the opened file, then its RGB (resized) copy
        for label, cls in enumerate(classes):
            cdir = split_dir / cls
            if not cdir.is_dir():
                present = class_folders(split_dir)
                raise DatasetError(f"imagefolder: class folder {str(cdir)!r} is missing (the folder has "
                                   f"{', '.join(map(repr, present[:10])) or 'none'}). {HOW}")
            files = image_files(cdir)
            if not files:
                raise DatasetError(f"imagefolder: class folder {str(cdir)!r} has no images "
                                   f"(extensions {', '.join(sorted(EXTENSIONS))})")
            for f, _ in files:
                try:
                    with Image.open(f) as im:
                        if im.mode in WIDE_MODES:
                            raise DatasetError(f"imagefolder: {str(f)!r} has {im.mode!r} pixels (16-bit or float), which "
                                               "do not convert to 8-bit RGB without clipping: save it as 8-bit")
                        im = im.convert("RGB")
                        if im.size != (size, size):
                            im = im.resize((size, size), Image.BILINEAR)  # type: ignore[attr-defined]  # set at import (== Resampling.BILINEAR)
                        xs.append(np.asarray(im, dtype=np.uint8))
                except (UnidentifiedImageError, OSError) as e:
                    raise DatasetError(f"imagefolder: cannot decode {str(f)!r}: {e}") from None
                ys.append(label)
        return np.stack(xs), np.asarray(ys, dtype=np.int64)

    def load(self) -> tuple[ImageDataset, ImageDataset]:
        train_dir, test_dir = self._splits()
        classes = self._classes(train_dir, test_dir)
        xtr, ytr = self._read_split(train_dir, classes)
        xte, yte = self._read_split(test_dir, classes) if test_dir is not None else (xtr[:0], ytr[:0])
        name = f"imagefolder {str(self.params.root)!r}"
        return check_splits(from_hwc(xtr, ytr, classes, f"{name} train"), from_hwc(xte, yte, classes, f"{name} test"), name)
