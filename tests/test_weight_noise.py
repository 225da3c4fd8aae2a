from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.augment import crop_flip
from benchmark.interfaces import RunContext
from benchmark.models import build_classifier
from benchmark.training import SGDRecipe, train_supervised
from benchmark.weight_noise import (
    add_noise_,
    distance,
    noise_levels,
    noisy_input_grad,
    parameters,
    perturbed,
    project_,
    robust_step,
    snapshot,
    train_robust,
)
from tests.conftest import tiny_dataset


def _net(seed: int = 0, bn: bool = True) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Conv2d(3, 4, 3, padding=1)]
    if bn:
        layers.append(nn.BatchNorm2d(4))
    layers += [nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)]
    return nn.Sequential(*layers)


def _state(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in m.state_dict().items()}


# ------------------------------------------------------------------------------- noise, restore


def test_noise_levels_follow_the_official_curriculum():
    assert noise_levels(0.25, 0.05) == pytest.approx((0.0, 0.05, 0.1, 0.15, 0.2, 0.25))
    assert len(noise_levels(0.25, 0.05)) == int(0.25 / 0.05) + 1  # trainer.py's ``times``
    assert noise_levels(0.3, 0.1) == pytest.approx((0.0, 0.1, 0.2, 0.3))  # int(0.3/0.1) would drop 0.3
    assert noise_levels(0.0, 0.05) == (0.0,)
    assert noise_levels(0.07, 0.05) == pytest.approx((0.0, 0.05))
    with pytest.raises(ValueError):
        noise_levels(0.1, 0.0)


def test_add_noise_draws_one_randn_per_parameter_in_order():
    m = _net()
    before = snapshot(m)
    add_noise_(parameters(m), 0.3, torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    for p, p0 in zip(parameters(m), before):
        assert torch.equal(p.detach(), p0.clone().add_(torch.randn(p.shape, generator=g), alpha=0.3))


def test_perturbed_changes_every_parameter_no_buffer_and_restores_bit_exactly_after_backward():
    m = _net().train()
    x = torch.rand(5, 3, 6, 6)
    m(x)  # non-trivial BN running statistics
    before = _state(m)
    names = {n for n, _ in m.named_parameters()}
    with perturbed(m, 0.5, torch.Generator().manual_seed(0)):
        inside = _state(m)
        m.eval()
        F.cross_entropy(m(x), torch.tensor([0, 1, 2, 0, 1])).backward()
    assert all(not torch.equal(inside[k], before[k]) for k in names)
    assert all(torch.equal(inside[k], before[k]) for k in before if k not in names)  # buffers untouched
    after = m.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in before)
    assert all(p.grad is not None for p in m.parameters())


def test_many_draws_do_not_drift():
    m = _net()
    before = _state(m)
    g = torch.Generator().manual_seed(1)
    for _ in range(200):
        with perturbed(m, 1.0, g):
            pass
    assert all(torch.equal(m.state_dict()[k], before[k]) for k in before)


# ---------------------------------------------------------------------- against official loops


def _official_robust_step(model, opt, x, y, levels, draws, gen, clip):
    """trainer.train_batch_robust with the noise drawn from ``gen`` (level 0: no draw)."""
    model.zero_grad()
    for s in levels:
        opt.zero_grad()
        for _ in range(draws):
            noise = {}
            for name, p in model.named_parameters():
                noise[name] = s * torch.randn(p.shape, generator=gen) if s else torch.zeros_like(p)
                p.data = p.data + noise[name]
            loss = F.cross_entropy(model(x), y) / (len(levels) * draws)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), clip)
            for name, p in model.named_parameters():
                p.data = p.data - noise[name]
        opt.step()


@pytest.mark.parametrize("clip", [5.0, 0.05])  # 0.05: clipping binds on every draw
def test_robust_step_matches_the_official_train_batch_robust(clip):
    torch.manual_seed(0)
    x, y = torch.rand(8, 3, 6, 6), torch.randint(0, 3, (8,))
    ours, ref = _net(bn=False), _net(bn=False)
    levels, draws = (0.0, 0.1, 0.2), 3
    o1 = torch.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    o2 = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    for _ in range(2):
        robust_step(ours, o1, x, y, RunContext(), levels=levels, draws=draws, generator=torch.Generator().manual_seed(3), grad_clip=clip)
        _official_robust_step(ref, o2, x, y, levels, draws, torch.Generator().manual_seed(3), clip)
    for (n, a), b in zip(ours.named_parameters(), ref.parameters()):
        assert torch.allclose(a, b, atol=1e-6), n  # the official subtracts the noise: float rounding


def test_robust_step_makes_one_optimizer_step_per_level():
    m = _net(bn=False)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    calls = []
    orig = opt.step
    opt.step = lambda *a, **k: (calls.append(1), orig(*a, **k))[1]  # type: ignore[method-assign]
    robust_step(m, opt, torch.rand(4, 3, 6, 6), torch.tensor([0, 1, 2, 0]), RunContext(), levels=noise_levels(0.25), draws=2, generator=None)
    assert len(calls) == 6


def test_noisy_input_grad_is_the_sum_over_weight_draws():
    m = _net().eval().requires_grad_(False)
    x, y = torch.rand(4, 3, 6, 6), torch.tensor([0, 1, 2, 0])

    def loss(model, xa):
        return F.cross_entropy(model(xa), y)

    got = noisy_input_grad(m, loss, x, sigma=0.2, draws=3, generator=torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    want = torch.zeros_like(x)
    for _ in range(3):
        noisy = copy.deepcopy(m)
        add_noise_(parameters(noisy), 0.2, g)
        xa = x.clone().requires_grad_(True)
        want += torch.autograd.grad(loss(noisy, xa), xa)[0]
    assert torch.allclose(got, want, atol=1e-7)
    plain = noisy_input_grad(m, loss, x, sigma=0.0, draws=10, generator=None)
    xa = x.clone().requires_grad_(True)
    assert torch.equal(plain, torch.autograd.grad(loss(m, xa), xa)[0])  # level 0: one gradient


def test_train_robust_at_one_noiseless_level_is_train_supervised():
    data = tiny_dataset(n=48)
    recipe = SGDRecipe(epochs=2, batch_size=16, grad_clip=5.0)

    def model() -> nn.Module:
        torch.manual_seed(0)
        return build_classifier("small-cnn", 3, 4, [0.0] * 3, [1.0] * 3)

    a = train_supervised(model(), data, recipe, RunContext())
    b = train_robust(model(), data, recipe, RunContext(), levels=(0.0,), draws=5, seed=0, augment=crop_flip)
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_train_robust_is_reproducible_and_noise_changes_it():
    data = tiny_dataset(n=32)
    recipe = SGDRecipe(epochs=1, batch_size=16)

    def run(seed: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        m = build_classifier("small-cnn", 3, 4, [0.0] * 3, [1.0] * 3)
        return train_robust(m, data, recipe, RunContext(), levels=(0.0, 0.05), draws=2, seed=seed, augment=None).state_dict()

    a, b, c = run(1), run(1), run(2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


# ------------------------------------------------------------------------------ parameter space


def test_distance_and_sphere_projection():
    m = _net()
    origin = snapshot(m)
    assert float(distance(m, origin)) == 0.0
    project_(m, origin, 0.5)  # at the origin: stays (no division by zero)
    assert float(distance(m, origin)) == 0.0
    add_noise_(parameters(m), 0.1, torch.Generator().manual_seed(0))
    flat = torch.cat([(p.detach() - o).flatten() for p, o in zip(parameters(m), origin)])
    assert float(distance(m, origin)) == pytest.approx(float(flat.norm()), rel=1e-6)
    before = float(project_(m, origin, 0.5))
    assert before == pytest.approx(float(flat.norm()), rel=1e-6)
    assert float(distance(m, origin)) == pytest.approx(0.5, rel=1e-5)
    new = torch.cat([(p.detach() - o).flatten() for p, o in zip(parameters(m), origin)])
    assert torch.allclose(new, flat * 0.5 / flat.norm(), atol=1e-7)  # same direction, rescaled
    project_(m, origin, 2.0)  # the sphere: moves out too, as the official ``project``
    assert float(distance(m, origin)) == pytest.approx(2.0, rel=1e-5)
    project_(m, origin, 3.0, onto="ball")  # inside the ball: unchanged
    assert float(distance(m, origin)) == pytest.approx(2.0, rel=1e-5)
    project_(m, origin, 1.0, onto="ball")
    assert float(distance(m, origin)) == pytest.approx(1.0, rel=1e-5)
