"""What the supervised-learner attacks (TAP, tap-untargeted, AUE, T-AAP, UT-AAP, LSP, OPS) share:
smoke generation within budget and box, threat models, paper defaults, docstrings. Per-module tests
are in test_aue.py, test_lsp.py, test_ops.py; the shared crafting loop and reference classifiers in
tests/test_adversarial.py and tests/test_reference.py. Tiny synthetic data: seconds on CPU."""

from __future__ import annotations

import math

import pytest
import torch

from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import Budget, RunContext
from benchmark.registry import get_registry
from tests.plugins.attacks.helpers import by_name

ATTACKS = ["tap", "tap-untargeted", "aue", "t-aap", "ut-aap", "lsp", "ops"]


@pytest.fixture(autouse=True)
def _threads() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("name", ATTACKS)
def test_smoke_generate_respects_budget_and_box(name: str, tiny: ImageDataset) -> None:
    attack = by_name(name)
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
    assert by_name("tap").budget() == Budget("linf", 8 / 255)
    assert by_name("aue").budget() == Budget("linf", 8 / 255)
    assert by_name("t-aap").budget() == Budget("linf", 8 / 255)
    lsp = by_name("lsp", "paper").budget()
    assert lsp.norm == "l2" and lsp.eps == pytest.approx(6 / 255 * math.sqrt(3072))
    assert by_name("ops", "paper").budget() == Budget("l0", 1.0)


def test_paper_defaults() -> None:
    tap = by_name("tap", "paper").params
    assert (tap.eps, tap.alpha, tap.steps, tap.batch_size, tap.targeted) == (8 / 255, 0.4 / 255, 250, 512, True)
    assert (tap.ref_epochs, tap.ref_lr, tap.ref_milestones) == (40, 0.1, (14, 25, 35))
    assert (tap.restarts, tap.augment, tap.max_shift) == (8, "translate", 4.0)  # the TAP command; RandomTransform
    aue = by_name("aue", "paper").params
    assert (aue.epochs, aue.steps, aue.strength, aue.weight_decay, aue.alpha) == (60, 5, 0.6, 1e-4, None)
    aap = by_name("t-aap", "paper").params
    assert (aap.steps, aap.gen_strength, aap.ref_strength, aap.ref_lr, aap.ref_epochs) == (250, 0.4, 0.4, 0.5, 40)
    assert by_name("ops", "paper").params.pixels == 1 and by_name("lsp", "paper").params.patch_size == 8


@pytest.mark.parametrize("name", ATTACKS)
def test_docstrings_cite_paper_and_threat_model(name: str) -> None:
    cls = get_registry().get("attack", name)
    doc = (cls.__doc__ or "") + (__import__(cls.__module__, fromlist=["x"]).__doc__ or "")
    assert "Threat model" in doc or "threat model" in doc.lower() or "Same threat model" in doc
    assert any(y in doc for y in ("2021", "2022", "2023", "2024"))
    assert set(cls.profiles) >= {"quick", "smoke"}
