"""Unit tests of the supervised-learner attacks (issue 4): TAP, AUE, T-AAP, UT-AAP, LSP, OPS.
Tiny synthetic data, smoke profiles: seconds on CPU."""

from __future__ import annotations

import math

import pytest
import torch

from benchmark import reference as _reference
from benchmark.adversarial import adversarial_loss, craft, shifted_labels
from benchmark.augment import crop_flip
from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import Attack, Budget, RunContext
from benchmark.models import build_classifier
from benchmark.params import resolve_params
from benchmark.registry import get_registry
from benchmark.store import ArtifactCache
from benchmark.training import SGDRecipe, train_supervised
from tests.conftest import tiny_dataset

ATTACKS = ["tap", "tap-untargeted", "aue", "t-aap", "ut-aap", "lsp", "ops"]


def make(name: str, profile: str = "smoke", **overrides: object) -> Attack:
    cls = get_registry().get("attack", name)
    return cls(resolve_params(cls, profile, overrides))


@pytest.fixture(autouse=True)
def _threads() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("name", ATTACKS)
def test_smoke_generate_respects_budget_and_box(name: str, tiny: ImageDataset) -> None:
    attack = make(name)
    p = attack.generate(tiny, RunContext())
    assert p.x.dtype == torch.uint8 and p.x.shape == tiny.x.shape
    assert attack.budget().violation(tiny.x, p.x) is None
    assert p.kind == "samplewise" and p.delta is not None and p.delta.shape == tiny.x.shape
    x = tiny.x.float() / 255
    assert ((x + p.delta) >= -1e-6).all() and ((x + p.delta) <= 1 + 1e-6).all()
    assert (p.x != tiny.x).any()  # it did something
    if attack.budget().norm == "linf":
        assert p.delta.abs().max() <= attack.params.eps + 1e-6


def test_threat_models() -> None:
    assert make("tap").budget() == Budget("linf", 8 / 255)
    assert make("aue").budget() == Budget("linf", 8 / 255)
    assert make("t-aap").budget() == Budget("linf", 8 / 255)
    lsp = make("lsp", "paper").budget()
    assert lsp.norm == "l2" and lsp.eps == pytest.approx(6 / 255 * math.sqrt(3072))
    assert make("ops", "paper").budget() == Budget("l0", 1.0)


def test_lsp_budget_check_passes_and_catches_an_oversized_poison(tiny: ImageDataset) -> None:
    attack = make("lsp")
    p = attack.generate(tiny, RunContext())
    assert p.delta is not None
    norms = p.delta.flatten(1).norm(dim=1)
    assert (norms <= attack.params.eps * (1 + 1e-5)).all() and norms.max() > 0.5 * attack.params.eps
    assert attack.budget().violation(tiny.x, p.x) is None
    big = ((tiny.x.float() + 3 * p.delta * 255).clamp(0, 255).round()).to(torch.uint8)
    assert attack.budget().violation(tiny.x, big) is not None
    # the L-inf 8/255 default would wrongly reject LSP (its patches exceed 8/255 per pixel)
    assert Budget("linf", 8 / 255).violation(tiny.x, p.x) is not None


def test_ops_budget_check_passes_and_catches_two_pixels(tiny: ImageDataset) -> None:
    attack = make("ops")
    p = attack.generate(tiny, RunContext())
    changed = (p.x != tiny.x).any(dim=1).flatten(1).sum(dim=1)
    assert changed.max() == 1
    assert attack.budget().violation(tiny.x, p.x) is None
    two = p.x.clone()
    two[:, :, 0, 0] = 255 - two[:, :, 0, 0]
    two[:, :, -1, -1] = 255 - two[:, :, -1, -1]
    assert attack.budget().violation(tiny.x, two) is not None


def test_ops_class_wise_pixel_and_extreme_colour(tiny: ImageDataset) -> None:
    p = make("ops").generate(tiny, RunContext())
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
    base = make("ops").generate(tiny, RunContext())
    shuffled = make("ops").generate(tiny.select(perm), RunContext())
    assert torch.equal(shuffled.x, base.x[perm])


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


def test_aue_lowers_training_loss_on_its_noise() -> None:
    data = tiny_dataset(n=64, classes=4, seed=1)
    p = make("aue", epochs=3, steps=5).generate(data, RunContext())
    acc = p.meta["train_accuracy"]
    assert len(acc) == 3 and acc[-1] >= acc[0]


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []

    def fake_train(model: torch.nn.Module, *args: object, **kwargs: object) -> torch.nn.Module:
        calls.append(1)
        return train_supervised(model, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_reference, "train_supervised", fake_train)
    return calls


def test_reference_model_is_trained_once_per_settings(counted: list[int], tiny: ImageDataset, tmp_path) -> None:
    ctx = RunContext(cache=ArtifactCache(tmp_path), data_key="tiny")
    first = make("tap").generate(tiny, ctx)
    assert counted == [1] and first.meta["reference_cached"] is False
    second = make("tap").generate(tiny, ctx)  # second generate call
    assert counted == [1] and second.meta["reference_cached"] is True
    make("tap-untargeted").generate(tiny, ctx)  # another attack, same reference settings
    assert counted == [1]
    make("t-aap").generate(tiny, ctx)  # AAP's reference model has other settings: trained...
    assert counted == [1, 1]
    make("ut-aap").generate(tiny, ctx)  # ...once, for both AAP variants
    assert counted == [1, 1]
    make("tap", ref_epochs=1).generate(tiny, ctx)  # other settings: a new model
    assert len(counted) == 3
    make("tap").generate(tiny, RunContext(cache=ArtifactCache(tmp_path), data_key="other-data"))  # other data
    assert len(counted) == 4


def test_reference_model_without_data_key_uses_a_fingerprint(counted: list[int], tiny: ImageDataset, tmp_path) -> None:
    cache = ArtifactCache(tmp_path)
    make("tap").generate(tiny, RunContext(cache=cache))
    make("tap").generate(tiny, RunContext(cache=cache))
    assert counted == [1]
    other = tiny.with_images(255 - tiny.x)
    make("tap").generate(other, RunContext(cache=cache))
    assert counted == [1, 1]


def test_paper_defaults() -> None:
    tap = make("tap", "paper").params
    assert (tap.eps, tap.alpha, tap.steps, tap.batch_size, tap.targeted) == (8 / 255, 0.4 / 255, 250, 512, True)
    assert (tap.ref_epochs, tap.ref_lr, tap.ref_milestones) == (40, 0.1, (14, 25, 35))
    assert (tap.restarts, tap.augment, tap.max_shift) == (8, "translate", 4.0)  # the TAP command; RandomTransform
    aue = make("aue", "paper").params
    assert (aue.epochs, aue.steps, aue.strength, aue.weight_decay, aue.alpha) == (60, 5, 0.6, 1e-4, None)
    aap = make("t-aap", "paper").params
    assert (aap.steps, aap.gen_strength, aap.ref_strength, aap.ref_lr, aap.ref_epochs) == (250, 0.4, 0.4, 0.5, 40)
    assert make("ops", "paper").params.pixels == 1 and make("lsp", "paper").params.patch_size == 8


@pytest.mark.parametrize("name", ATTACKS)
def test_docstrings_cite_paper_and_threat_model(name: str) -> None:
    cls = get_registry().get("attack", name)
    doc = (cls.__doc__ or "") + (__import__(cls.__module__, fromlist=["x"]).__doc__ or "")
    assert "Threat model" in doc or "threat model" in doc.lower() or "Same threat model" in doc
    assert any(y in doc for y in ("2021", "2022", "2023", "2024"))
    assert set(cls.profiles) >= {"quick", "smoke"}
