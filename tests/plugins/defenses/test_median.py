"""median-filter: 3x3 median on the uint8 image of each channel, train only (spec §1.4)."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from benchmark.interfaces import RunContext
from plugins.defenses.median import MedianFilter, median_filter_u8
from tests.conftest import tiny_dataset


def test_median_of_a_known_patch():
    patch = torch.tensor([[9, 1, 7], [3, 200, 5], [8, 2, 4]], dtype=torch.uint8)  # sorted: 1 2 3 4 5 7 8 9 200
    x = torch.zeros(1, 3, 5, 5, dtype=torch.uint8)
    x[0, 1, 1:4, 1:4] = patch
    out = median_filter_u8(x)
    assert out[0, 1, 2, 2].item() == 5
    assert out[0, 0].eq(0).all() and out[0, 2].eq(0).all()  # channels are filtered on their own


def test_salt_noise_removed_and_edges_replicated():
    x = torch.full((1, 1, 6, 6), 50, dtype=torch.uint8)
    x[0, 0, 3, 3] = 255
    x[0, 0, 0, 0] = 255  # a corner: its window is 4 copies of itself, 2 + 2 edge copies, 1 neighbour
    out = median_filter_u8(x)
    assert out.eq(50).all()


def test_matches_scipy_median_filter_with_nearest_borders():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (3, 3, 12, 10), dtype=torch.uint8, generator=g)
    ours = median_filter_u8(x)
    for i in range(3):
        for c in range(3):
            ref = ndimage.median_filter(x[i, c].numpy(), size=3, mode="nearest")
            assert np.array_equal(ours[i, c].numpy(), ref)


def test_defense_data_stage():
    d = MedianFilter()
    assert d.stage == "data" and d.params.kernel_size == 3
    data = tiny_dataset(n=8, size=16)
    out = d.transform(data, RunContext())
    assert out.x.dtype == torch.uint8 and out.x.shape == data.x.shape and torch.equal(out.y, data.y)
    assert not torch.equal(out.x, data.x)
