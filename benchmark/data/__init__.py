"""Datasets as uint8 tensors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmark.lazy import lazy_api

__all__ = ["DataSplits", "DatasetSource", "ImageDataset", "balanced_indices", "make_splits"]

if TYPE_CHECKING:
    from benchmark.data.dataset import DataSplits, ImageDataset
    from benchmark.data.source import DatasetSource
    from benchmark.data.split import balanced_indices, make_splits

# imported on first use (benchmark/lazy.py): `bench claims`, `leaderboard`, `docs` and `status` need no torch
__getattr__ = lazy_api(globals())
