"""Image folders: ``root/train/<class>/*.png`` and ``root/test/<class>/*.png`` (Tiny-ImageNet, ImageNet-100...)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from benchmark.data.dataset import ImageDataset
from benchmark.data.source import DatasetSource, ResolvedPath, existing_dir, from_hwc
from benchmark.errors import DatasetError
from benchmark.params import Params as BaseParams  # `class Params(Params)` trips mypy (python/mypy#10958)

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".ppm", ".tif", ".tiff"}
HOW = "Expected `root/train/<class>/<image>` and `root/test/<class>/<image>` (the test split may be named `val`)."


class ImageFolder(DatasetSource):
    """Class-per-folder images decoded once with Pillow into memory, resized to ``size`` x ``size`` RGB.

    Class names are the sorted folder names of ``train/``; the test split must use the same names.
    Shapes: ``[N, 3, size, size]`` uint8. Decoding is per image, but it happens once, at load time.
    """

    name = "imagefolder"
    description = "image folders"

    class Params(BaseParams):
        root: ResolvedPath
        size: int = Field(32, ge=1, le=4096)
        test_split: str = "test"
    params: Params

    def _read_split(self, split_dir: Path, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
        from PIL import Image, UnidentifiedImageError

        xs, ys = [], []
        size = self.params.size
        im: Image.Image  # the opened file, then its RGB (resized) copy
        for label, cls in enumerate(classes):
            cdir = split_dir / cls
            if not cdir.is_dir():
                raise DatasetError(f"imagefolder: class folder {str(cdir)!r} is missing. {HOW}")
            for f in sorted(p for p in cdir.iterdir() if p.suffix.lower() in EXTENSIONS):
                try:
                    with Image.open(f) as im:
                        im = im.convert("RGB")
                        if im.size != (size, size):
                            im = im.resize((size, size), Image.BILINEAR)  # type: ignore[attr-defined]  # set at import (== Resampling.BILINEAR)
                        xs.append(np.asarray(im, dtype=np.uint8))
                except (UnidentifiedImageError, OSError) as e:
                    raise DatasetError(f"imagefolder: cannot decode {str(f)!r}: {e}") from None
                ys.append(label)
        if not xs:
            raise DatasetError(f"imagefolder: no images found under {str(split_dir)!r}. {HOW}")
        return np.stack(xs), np.asarray(ys, dtype=np.int64)

    def load(self) -> tuple[ImageDataset, ImageDataset]:
        root = existing_dir(self.params.root, "imagefolder", HOW)
        train_dir = root / "train"
        test_dir = root / self.params.test_split
        if not test_dir.is_dir() and (root / "val").is_dir():
            test_dir = root / "val"
        for d in (train_dir, test_dir):
            if not d.is_dir():
                raise DatasetError(f"imagefolder: {str(d)!r} does not exist. {HOW}")
        classes = sorted(p.name for p in train_dir.iterdir() if p.is_dir())
        if not classes:
            raise DatasetError(f"imagefolder: no class folders in {str(train_dir)!r}. {HOW}")
        xtr, ytr = self._read_split(train_dir, classes)
        xte, yte = self._read_split(test_dir, classes)
        return from_hwc(xtr, ytr, classes), from_hwc(xte, yte, classes)
