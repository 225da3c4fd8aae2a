"""gaussian-noise: fresh zero-mean noise every time an image is loaded (spec §1.4)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from benchmark.interfaces import RunContext
from benchmark.registry import get_registry
from plugins.defenses.noise import GaussianNoise, add_noise


def test_zero_mean_std_and_clamped():
    x = torch.full((64, 3, 32, 32), 0.5)
    out = add_noise(x, 8 / 255, "gaussian", torch.Generator().manual_seed(0))
    n = out - x
    assert abs(n.mean().item()) < 5e-4 and n.std().item() == pytest.approx(8 / 255, rel=0.01)
    u = add_noise(x, 8 / 255, "uniform", torch.Generator().manual_seed(0)) - x
    assert u.abs().max() <= 8 / 255 + 1e-7 and u.std().item() == pytest.approx(8 / 255 / 3**0.5, rel=0.01)
    edge = add_noise(torch.ones(8, 3, 8, 8), 0.1, "gaussian", torch.Generator().manual_seed(0))
    assert edge.max() <= 1 and edge.min() < 1


def test_fresh_noise_every_call():
    d = GaussianNoise()
    assert get_registry().get("defense", "gaussian-noise") is GaussianNoise
    assert d.stage == "train" and d.params.distribution == "gaussian" and d.params.scale == pytest.approx(8 / 255)
    hooks = d.train_hooks(RunContext())
    x, y = torch.full((4, 3, 8, 8), 0.5), torch.arange(4)
    seen = []

    def model(t):
        seen.append(t.clone())
        return t.flatten(1)[:, :4]

    hooks.loss(model, x, y, F.cross_entropy)
    hooks.loss(model, x, y, F.cross_entropy)
    assert not torch.equal(seen[0], seen[1]) and not torch.equal(seen[0], x)
    assert not d.applies_to(get_registry().get("victim", "simclr")())
