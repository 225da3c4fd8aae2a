"""The OPS attack (plugins/attacks/ops.py): L0 budget, class-wise pixel, index alignment."""

from __future__ import annotations

import pytest
import torch

from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import RunContext
from tests.plugins.attacks.helpers import by_name


@pytest.fixture(autouse=True)
def _threads() -> None:
    torch.manual_seed(0)


def test_ops_budget_check_passes_and_catches_two_pixels(tiny: ImageDataset) -> None:
    attack = by_name("ops")
    p = attack.generate(tiny, RunContext())
    changed = (p.x != tiny.x).any(dim=1).flatten(1).sum(dim=1)
    assert changed.max() == 1
    assert attack.budget().violation(tiny.x, p.x) is None
    two = p.x.clone()
    two[:, :, 0, 0] = 255 - two[:, :, 0, 0]
    two[:, :, -1, -1] = 255 - two[:, :, -1, -1]
    assert attack.budget().violation(tiny.x, two) is not None


def test_ops_class_wise_pixel_and_extreme_colour(tiny: ImageDataset) -> None:
    p = by_name("ops").generate(tiny, RunContext())
    for k in range(tiny.num_classes):
        sel = tiny.y == k
        pos = (p.delta[sel] != 0).any(dim=1)  # [n, H, W]
        where = pos.any(dim=0).nonzero()
        assert len(where) == 1  # one position per class
        i, j = where[0].tolist()
        values = p.x[sel][:, :, i, j]
        assert ((values == 0) | (values == 255)).all() and (values == values[0]).all()


def test_ops_is_index_aligned(tiny: ImageDataset) -> None:
    perm = torch.randperm(len(tiny), generator=torch.Generator().manual_seed(3))
    base = by_name("ops").generate(tiny, RunContext())
    shuffled = by_name("ops").generate(tiny.select(perm), RunContext())
    assert torch.equal(shuffled.x, base.x[perm])
