"""scikit-learn's bundled 8x8 digits: the embedded dataset of the smoke matrix (no download)."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from benchmark.data.dataset import ImageDataset
from benchmark.data.source import DatasetSource, from_hwc
from benchmark.params import Params as BaseParams  # `class Params(Params)` trips mypy (python/mypy#10958)


class Digits(DatasetSource):
    """UCI handwritten digits (1,797 grayscale 8x8 images, 10 classes), shipped inside scikit-learn.

    Pixel values 0..16 are scaled to 0..255. The split is a seeded, stratified ``test_fraction``.
    Shapes: ``[N, 1, 8, 8]``.
    """

    name = "digits"
    description = "scikit-learn digits (8x8 grayscale)"

    class Params(BaseParams):
        test_fraction: float = Field(0.3, gt=0, lt=1)
        split_seed: int = Field(0, ge=0, le=2**32 - 1)
    params: Params

    def load(self) -> tuple[ImageDataset, ImageDataset]:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        d = load_digits()
        x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)
        y = d.target.astype(np.int64)
        xtr, xte, ytr, yte = train_test_split(
            x, y, test_size=self.params.test_fraction, random_state=self.params.split_seed, stratify=y
        )
        classes = [str(i) for i in range(10)]
        return from_hwc(xtr, ytr, classes), from_hwc(xte, yte, classes)
