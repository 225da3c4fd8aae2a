"""cutout: one 16x16 square per sample, redrawn every step (spec §1.4)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.interfaces import RunContext
from benchmark.registry import get_registry
from plugins.defenses.cutout import Cutout, cutout


def reference_cutout(img: np.ndarray, length: int, cy: int, cx: int) -> np.ndarray:
    """The reference ``Cutout.__call__`` (APBench / ISS util.py), with its two random draws given."""
    h, w = img.shape[1], img.shape[2]
    mask = np.ones((h, w), np.float32)
    y1, y2 = np.clip(cy - length // 2, 0, h), np.clip(cy + length // 2, 0, h)
    x1, x2 = np.clip(cx - length // 2, 0, w), np.clip(cx + length // 2, 0, w)
    mask[y1:y2, x1:x2] = 0.0
    return img * mask[None]


def test_matches_the_reference_per_sample_with_the_same_draws():
    x = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(0)) + 0.01
    g = torch.Generator().manual_seed(5)
    draws = torch.Generator().manual_seed(5)
    cy = torch.randint(0, 32, (16,), generator=draws)
    cx = torch.randint(0, 32, (16,), generator=draws)
    out = cutout(x, 16, g)
    for i in range(16):
        ref = reference_cutout(x[i].numpy(), 16, int(cy[i]), int(cx[i]))
        assert np.array_equal(out[i].numpy(), ref)


def test_square_size_clipped_at_borders():
    x = torch.ones(200, 1, 32, 32)
    out = cutout(x, 16, torch.Generator().manual_seed(0))
    holes = (out == 0).flatten(1).sum(1)
    assert holes.max() == 256 and holes.min() >= 64  # a centre at a corner keeps a quarter (8 x 8)
    assert len(set(holes.tolist())) > 5  # squares are drawn per sample
    a, b = cutout(x, 16, torch.Generator().manual_seed(1)), cutout(x, 16, torch.Generator().manual_seed(2))
    assert not torch.equal(a, b)


def test_train_hook_supervised_only():
    d = Cutout()
    assert get_registry().get("defense", "cutout") is Cutout and d.stage == "train" and d.params.length == 16
    reg = get_registry()
    assert d.applies_to(reg.get("victim", "sl")()) and not d.applies_to(reg.get("victim", "simclr")())
    seen = []
    hooks = d.train_hooks(RunContext())
    x, y = torch.ones(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])

    def model(t: torch.Tensor) -> torch.Tensor:
        seen.append(t)
        return t.mean(dim=(2, 3)).repeat(1, 2)[:, :4]

    loss = hooks.loss(model, x, y, F.cross_entropy)  # type: ignore[arg-type]
    assert loss.ndim == 0 and (seen[0] == 0).any() and torch.equal(x, torch.ones(4, 3, 32, 32))
