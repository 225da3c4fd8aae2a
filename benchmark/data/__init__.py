"""Datasets as uint8 tensors."""

from benchmark.data.dataset import DataSplits, ImageDataset
from benchmark.data.source import DatasetSource
from benchmark.data.split import balanced_indices, make_splits

__all__ = ["DataSplits", "DatasetSource", "ImageDataset", "balanced_indices", "make_splits"]
