"""mixup / cutmix: kornia's mixes with the soft-label loss APBench uses (spec §1.4)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from benchmark.interfaces import RunContext
from benchmark.registry import get_registry
from plugins.defenses.mix import CutMix, MixHooks, MixUp, mixed_loss


def test_mixed_loss_by_hand():
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    y_a, y_b = torch.tensor([0, 0]), torch.tensor([1, 1])
    w = torch.tensor([0.25, 1.0])
    l0 = 0.75 * math.log(1 + math.exp(-2)) + 0.25 * math.log(1 + math.exp(2))  # sample 0: 3/4 of y_a, 1/4 of y_b
    l1 = math.log(2)  # sample 1: all y_b, uniform logits
    assert mixed_loss(logits, y_a, y_b, w).item() == pytest.approx((l0 + l1) / 2, rel=1e-6)
    assert mixed_loss(logits, y_a, y_a, w).item() == pytest.approx(F.cross_entropy(logits, y_a).item(), rel=1e-6)


def test_mixup_images_and_label_weights_agree():
    torch.manual_seed(0)
    x = torch.rand(8, 3, 8, 8)
    y = torch.arange(8)  # distinct labels identify each image's partner
    xm, y_a, y_b, w = MixHooks("mixup", (0.0, 1.0), 1.0).mix(x, y)
    assert torch.equal(y_a, y)
    lam = w.view(-1, 1, 1, 1)
    assert torch.allclose(xm, (1 - lam) * x + lam * x[y_b], atol=1e-6)
    assert (w >= 0).all() and (w <= 1).all() and w.std() > 0  # one lambda per sample


def test_cutmix_label_weight_is_the_pasted_pixel_share():
    torch.manual_seed(1)
    x = torch.arange(16, dtype=torch.float32).view(16, 1, 1, 1).expand(16, 3, 16, 16) / 16 + 0.01  # one value per image
    y = torch.arange(16)
    xm, y_a, y_b, w = MixHooks("cutmix", (0.0, 1.0), 1.0).mix(x.contiguous(), y)
    assert torch.equal(y_a, y)
    for i in range(16):
        pasted = (xm[i, 0] == x[int(y_b[i]), 0, 0, 0]).float().mean() if y_b[i] != i else torch.tensor(float(w[i]))
        assert w[i].item() == pytest.approx(pasted.item(), abs=1e-6)


def test_hooks_registered_supervised_only_and_give_a_scalar():
    reg = get_registry()
    assert reg.get("defense", "mixup") is MixUp and reg.get("defense", "cutmix") is CutMix
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
    x, y = torch.rand(6, 3, 8, 8), torch.tensor([0, 1, 2, 3, 0, 1])
    for d in (MixUp(), CutMix()):
        assert d.stage == "train" and not d.applies_to(reg.get("victim", "simclr")())
        loss = d.train_hooks(RunContext()).loss(model, x, y, F.cross_entropy)
        assert loss.ndim == 0 and loss.requires_grad
