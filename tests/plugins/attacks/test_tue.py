from __future__ import annotations

import pytest
import torch

import plugins.attacks.tue as tue_module
from benchmark.interfaces import RunContext
from benchmark.models import build_classifier
from benchmark.ssl.objectives import MoCoObjective, SimSiamObjective
from plugins.attacks.tue import TUE, csd_loss
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


@pytest.fixture
def data():
    return tiny_dataset(n=32, classes=4, size=8)


@pytest.mark.parametrize("objective", ["moco", "simclr", "simsiam"])
def test_budget_and_release(data, objective):
    attack = make(TUE, objective=objective)
    check_release(attack, data, attack.generate(data, RunContext(seed=0)))


def test_deterministic(data):
    check_deterministic(make(TUE, objective="simclr", w_ssl=1.0), data)


def test_delta_follows_its_image(data, monkeypatch):
    identity_views(monkeypatch, tue_module)
    check_permutation(make(TUE, objective="simsiam", w_ssl=1.0, random_start=False, batch_size=32), data)


def test_csd_matches_hand_computation():
    # 1-d perturbations: class 0 at 0 and 2 (centre 1, mean distance 1), class 1 at 10 and 14
    # (centre 12, mean distance 2): both ordered pairs give (1 + 2) / |1 - 12| = 3 / 11.
    d = torch.tensor([[0.0], [2.0], [10.0], [14.0]], requires_grad=True)
    y = torch.tensor([0, 0, 1, 1])
    loss = csd_loss(d, y)
    assert loss.item() == pytest.approx((3 + 1e-5) / (11 + 1e-5), rel=1e-6)
    (grad,) = torch.autograd.grad(loss, d)
    # only the inter-centre distance carries gradient: dL/dc0 = +3/121, dL/dc1 = -3/121, and each
    # centre is the mean of two samples
    assert grad.flatten().tolist() == pytest.approx([3 / 242, 3 / 242, -3 / 242, -3 / 242], rel=1e-4)


def test_csd_gradient_only_through_the_centres():
    torch.manual_seed(0)
    d = torch.randn(12, 3, 4, 4, requires_grad=True)
    y = torch.arange(12) % 3
    (grad,) = torch.autograd.grad(csd_loss(d, y), d)
    # the same ratio with the intra-class spreads left differentiable (a naive reimplementation)
    flat = d.flatten(1)
    c = torch.stack([flat[y == k].mean(0) for k in range(3)])
    s = torch.stack([(flat[y == k] - c[k]).norm(dim=1).mean() for k in range(3)])
    off = ~torch.eye(3, dtype=torch.bool)
    naive = ((s[:, None] + s[None, :])[off] + 1e-5) / (torch.cdist(c, c)[off] + 1e-5)
    (g_naive,) = torch.autograd.grad(naive.mean(), d)
    assert not torch.allclose(grad, g_naive, atol=1e-6)
    # the official gradient is shared by all samples of a class (it acts on the class centres only)
    for k in range(3):
        rows = grad[y == k].flatten(1)
        assert torch.allclose(rows, rows[0].expand_as(rows), atol=1e-7)
    assert csd_loss(d[:3], torch.zeros(3, dtype=torch.long)).item() == 0.0  # one class: no term


def test_csd_only_variants_do_not_depend_on_the_network(data):
    # the official SimCLR/SimSiam demos set w_ssl = 0: delta is driven by CSD alone
    a = make(TUE, objective="simclr", lr=1e-3).generate(data, RunContext(seed=0))
    b = make(TUE, objective="simclr", lr=5e-2).generate(data, RunContext(seed=0))
    assert torch.equal(a.delta, b.delta)
    c = make(TUE, objective="simclr", lr=5e-2, w_ssl=1.0, w_csd=0.0).generate(data, RunContext(seed=0))
    assert not torch.equal(a.delta, c.delta)


@pytest.mark.parametrize("objective", ["moco", "simsiam"])
def test_contrastive_loss_decreases_over_noise_steps(objective):
    torch.manual_seed(0)
    x = tiny_dataset(n=16, classes=4, size=16).float_batch(torch.arange(16))
    enc = build_classifier("small-cnn", 3, 4, [0.0] * 3, [1.0] * 3)
    if objective == "moco":  # TUE's MoCo: linear head, no EMA in noise steps, gradient through the keys
        obj = MoCoObjective(enc, hidden=0, out=16, temperature=0.2, queue_size=64, momentum=0.99, key_grad=True,
                            ema_in_noise_phase=False, generator=torch.Generator().manual_seed(0), bn_groups=2)
    else:
        obj = SimSiamObjective(enc, dim=32, pred_hidden=8, key_grad=True)
    obj(x, x.flip(3), torch.zeros(16, dtype=torch.long)).backward()
    check_loss_decreases(obj, x, eps=8 / 255, alpha=2 / 255)


def test_paper_defaults_are_the_demo_commands():
    s = TUE().settings()
    assert (s["objective"], s["epochs"], s["pgd_steps"], s["train_steps"], s["w_ssl"], s["w_csd"], s["random_start"]) == (
        "moco", 200, 5, 100, 1.0, 1.0, False
    )
    assert (s["lr"], s["weight_decay"], s["temperature"], s["queue_size"], s["key_momentum"], s["key_grad"], s["bn_groups"]) == (
        0.3, 1e-4, 0.2, 4096, 0.99, True, 8
    )
    assert (s["eps"], s["alpha"], s["batch_size"], s["proj_hidden"], s["proj_dim"]) == pytest.approx((8 / 255, 0.8 / 255, 512, 0, 128))
    c = TUE(TUE.Params(objective="simclr")).settings()
    assert (c["epochs"], c["pgd_steps"], c["train_steps"], c["w_ssl"], c["w_csd"], c["random_start"], c["lr"]) == (40, 20, 20, 0.0, 0.1, True, 1e-3)
    m = TUE(TUE.Params(objective="simsiam")).settings()
    assert (m["epochs"], m["pgd_steps"], m["train_steps"], m["lr"], m["weight_decay"]) == (50, 20, 25, 0.06, 5e-4)


def test_misplaced_objective_params_are_config_errors():
    assert "queue_size applies only to objective 'moco', not 'simclr'" in config_error(TUE, objective="simclr", queue_size=64)
    assert "key_grad" in config_error(TUE, objective="simclr", key_grad=True)
    assert "temperature" in config_error(TUE, objective="simsiam", temperature=0.5)
    assert "eps" in config_error(TUE, eps=-1)
