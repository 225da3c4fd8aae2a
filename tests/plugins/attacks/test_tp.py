from __future__ import annotations

import pytest
import torch

import plugins.attacks.tp as tp_module
from benchmark.interfaces import RunContext
from benchmark.models import build_classifier
from benchmark.ssl.objectives import AlignUniformObjective
from plugins.attacks.tp import TP
from tests.conftest import tiny_dataset
from tests.plugins.attacks.helpers import (
    check_deterministic,
    check_loss_decreases,
    check_permutation,
    check_release,
    config_error,
    identity_views,
    make,
)

# unit-length embeddings of two images, two views each
Z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
Z2 = torch.tensor([[0.6, 0.8], [0.8, 0.6]])


@pytest.fixture
def data():
    return tiny_dataset(n=32, classes=4, size=8)


def test_budget_and_release(data):
    attack = make(TP)
    check_release(attack, data, attack.generate(data, RunContext(seed=0)))


def test_deterministic(data):
    check_deterministic(make(TP), data)


def test_delta_follows_its_image(data, monkeypatch):
    identity_views(monkeypatch, tp_module)
    check_permutation(make(TP, batch_size=32, epochs=2), data)


def _objective(**kw) -> AlignUniformObjective:
    enc = build_classifier("small-cnn", 3, 4, [0.5] * 3, [0.25] * 3)
    return AlignUniformObjective(enc, hidden=8, out=2, **kw)


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        # align (alpha 2): both pairs at squared distance 0.4^2 + 0.8^2 = 0.8; uniform (t 2): view a's
        # single pair at squared distance 2 -> log e^-4 = -4, view b's at 0.08 -> -0.16
        ({}, 0.8 + (-4 - 0.16) / 2),
        ({"lam": 2.0}, 1.6 + (-4 - 0.16) / 2),
        ({"alpha": 1.0}, 0.8**0.5 + (-4 - 0.16) / 2),
        ({"t": 1.0}, 0.8 + (-2 - 0.08) / 2),
    ],
)
def test_alignment_uniformity_loss_matches_hand_computation(monkeypatch, kw, expected):
    obj = _objective(**kw)
    monkeypatch.setattr(obj, "project", lambda x1, x2: (Z1, Z2))
    assert obj(torch.zeros(2), torch.zeros(2), torch.zeros(2)).item() == pytest.approx(expected, rel=1e-5)
    monkeypatch.setattr(obj, "project", lambda x1, x2: (3 * Z1, 0.5 * Z2))  # rows are normalized first
    assert obj(torch.zeros(2), torch.zeros(2), torch.zeros(2)).item() == pytest.approx(expected, rel=1e-5)


def test_contrastive_loss_decreases_over_noise_steps():
    torch.manual_seed(0)
    x = tiny_dataset(n=16, classes=4, size=16).float_batch(torch.arange(16))
    obj = _objective()
    obj(x, x.flip(3), torch.zeros(16, dtype=torch.long)).backward()
    check_loss_decreases(obj, x, eps=8 / 255, alpha=0.8 / 255)


def test_both_pgd_phases_shape_the_poison(data):
    both = make(TP).generate(data, RunContext(seed=0)).delta
    cl_only = make(TP, sl_pgd_steps=0).generate(data, RunContext(seed=0)).delta
    sl_only = make(TP, cl_pgd_steps=0).generate(data, RunContext(seed=0)).delta
    assert cl_only.abs().sum() > 0 and sl_only.abs().sum() > 0
    assert not torch.equal(both, cl_only) and not torch.equal(both, sl_only)
    none = make(TP, sl_pgd_steps=0, cl_pgd_steps=0).generate(data, RunContext(seed=0)).delta
    assert none.abs().sum() == 0


def test_paper_defaults_are_appendix_a2():
    p = TP.Params()
    assert (p.epochs, p.cl_pgd_steps, p.sl_pgd_steps, p.lam, p.align_alpha, p.unif_t) == (300, 5, 5, 1.0, 2.0, 2.0)
    assert (p.sl_lr, p.sl_weight_decay, p.cl_lr, p.cl_weight_decay, p.momentum, p.arch) == (0.1, 5e-4, 0.5, 1e-4, 0.9, "resnet18")
    assert p.eps == pytest.approx(8 / 255) and p.alpha is None  # 0.1 eps for both phases


def test_bad_params_are_config_errors():
    assert "eps" in config_error(TP, eps=0)
    assert "variant" in config_error(TP, variant="code")
