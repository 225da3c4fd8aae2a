"""benchmark.adversarial: the crafting loop TAP and T-AAP / UT-AAP share (label map, PGD objective,
loss decrease, index alignment, restarts). Tiny synthetic data: seconds on CPU."""

from __future__ import annotations

import pytest
import torch

from benchmark.adversarial import adversarial_loss, craft, shifted_labels
from benchmark.augment import crop_flip
from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import RunContext
from benchmark.models import build_classifier
from benchmark.training import SGDRecipe, train_supervised


@pytest.fixture(autouse=True)
def _threads() -> None:
    torch.manual_seed(0)


def test_targeted_label_map() -> None:
    y = torch.tensor([0, 1, 2, 3, 9])
    assert shifted_labels(y, 10).tolist() == [1, 2, 3, 4, 0]
    assert shifted_labels(torch.tensor([3]), 4).tolist() == [0]
    model = build_classifier("small-cnn", 3, 10, [0.0] * 3, [1.0] * 3).eval()
    x = torch.rand(5, 3, 8, 8)
    logits = model(x)
    want = torch.nn.functional.cross_entropy(logits, (y + 1) % 10)
    got = adversarial_loss(model, y, 10, RunContext(), targeted=True)(x)
    assert torch.allclose(got, want)
    untargeted = adversarial_loss(model, y, 10, RunContext(), targeted=False)(x)
    assert torch.allclose(untargeted, -torch.nn.functional.cross_entropy(logits, y))


def _trained(tiny: ImageDataset) -> torch.nn.Module:
    model = build_classifier("small-cnn", 3, tiny.num_classes, [0.0] * 3, [1.0] * 3)
    return train_supervised(model, tiny, SGDRecipe(epochs=3, batch_size=16), RunContext(), augment=None)


@pytest.mark.parametrize("targeted", [True, False])
def test_crafting_decreases_its_loss(targeted: bool, tiny: ImageDataset) -> None:
    model = _trained(tiny)
    ctx = RunContext()
    x, y = tiny.float_batch(torch.arange(len(tiny))), tiny.y
    with torch.no_grad():
        before = float(adversarial_loss(model, y, tiny.num_classes, ctx, targeted=targeted)(x))
    _, stats = craft(model, tiny, ctx, eps=8 / 255, alpha=1 / 255, steps=10, batch_size=16, targeted=targeted, augment=None)
    assert stats["final_loss"] < before


def test_crafting_is_index_aligned(tiny: ImageDataset) -> None:
    model = _trained(tiny)
    perm = torch.randperm(len(tiny), generator=torch.Generator().manual_seed(5))
    kw = {"eps": 8 / 255, "alpha": 1 / 255, "steps": 3, "batch_size": len(tiny), "targeted": True, "augment": None}
    base, _ = craft(model, tiny, RunContext(), **kw)  # type: ignore[arg-type]
    shuffled, _ = craft(model, tiny.select(perm), RunContext(), **kw)  # type: ignore[arg-type]
    agree = (torch.isclose(shuffled, base[perm], atol=1e-6)).float().mean()
    assert agree > 0.99


def test_restarts_keep_the_lowest_augmented_target_loss(tiny: ImageDataset, monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmark import adversarial as _adversarial

    model = _trained(tiny)
    scored: list[tuple[torch.Tensor, float]] = []
    real = _adversarial._augmented_loss

    def spy(model, train, ctx, delta, *a):  # type: ignore[no-untyped-def]
        score = real(model, train, ctx, delta, *a)
        scored.append((delta.clone(), score))
        return score

    monkeypatch.setattr(_adversarial, "_augmented_loss", spy)
    kw = {"eps": 8 / 255, "alpha": 1 / 255, "steps": 2, "batch_size": 16, "targeted": True, "augment": crop_flip, "init": "randn"}
    delta, stats = craft(model, tiny, RunContext(), restarts=3, **kw)  # type: ignore[arg-type]
    assert len(scored) == 3 and not torch.equal(scored[0][0], scored[1][0])  # fresh starts
    best = min(range(3), key=lambda i: scored[i][1])
    assert stats["restart"] == best and torch.equal(delta, scored[best][0])
    assert stats["restart_losses"] == [round(s, 4) for _, s in scored]
    one, one_stats = craft(model, tiny, RunContext(), **kw)  # type: ignore[arg-type]
    assert torch.equal(one, scored[0][0]) and "restart_losses" not in one_stats  # restarts 1: the first run, unscored
