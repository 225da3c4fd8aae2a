"""benchmark.sal: S⁺/S⁻ against the procedure written out and brute force, the 2-means threshold, #LP and UD."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import RunContext
from benchmark.sal import (
    PassCount,
    ScoringLoader,
    Sharpness,
    layer_sharpness,
    learnability_threshold,
    learnable_layers,
    model_sharpness,
    project_relative,
    scored_layers,
    two_means_threshold,
    unlearnable_distance,
)

# ------------------------------------------------------------------ S+ / S- against brute force


def _linear_problem(n: int = 24, seed: int = 0) -> tuple[nn.Module, ImageDataset]:
    """A 3-class linear classifier on 2-pixel images ``[n, 1, 1, 2]`` (weight ``[3, 2]``, no bias)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centres = torch.tensor([[40.0, 200.0], [200.0, 60.0], [130.0, 130.0]])
    x = (centres[y] + 45 * torch.randn(n, 2, generator=g)).clamp(0, 255).round().to(torch.uint8).view(n, 1, 1, 2)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 3, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[-1.0, 2.0], [2.0, -1.0], [0.5, 0.4]]))
    return model, ImageDataset(x, y, ("a", "b", "c"))


def _loss_and_grad(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of logits ``x @ w.T`` and its gradient in ``w``, by hand (float64)."""
    z = x @ w.T
    z = z - z.max(1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    loss = float(-np.log(p[np.arange(len(y)), y]).mean())
    p[np.arange(len(y)), y] -= 1
    return loss, p.T @ x / len(y)


def _brute_procedure(w0: np.ndarray, x: np.ndarray, y: np.ndarray, base: float, eps: float, lr: float, rounds: int) -> tuple[float, float]:
    """The official procedure written out for one full batch: per round a gradient step down and
    one up, each rescaled onto the relative ball, then both evaluated; best values from L0."""
    down, up, lo, hi = w0.copy(), w0.copy(), base, base
    radius = eps * np.linalg.norm(w0)
    for _ in range(rounds):
        down = down - lr * _loss_and_grad(down, x, y)[1]
        up = up + lr * _loss_and_grad(up, x, y)[1]
        for w in (down, up):
            d = w - w0
            if np.linalg.norm(d) > radius:
                w[...] = w0 + d * radius / np.linalg.norm(d)
        lo, hi = min(lo, _loss_and_grad(down, x, y)[0]), max(hi, _loss_and_grad(up, x, y)[0])
    return hi - base, base - lo


def _disk_extremes(w0: np.ndarray, x: np.ndarray, y: np.ndarray, eps: float, n: int = 720) -> tuple[float, float]:
    """The lowest and highest loss over a dense polar grid of the relative ball of a 2-entry weight."""
    radius = eps * np.linalg.norm(w0)
    r, a = np.meshgrid(np.linspace(0, radius, n // 5), np.linspace(0, 2 * np.pi, n, endpoint=False))
    ws = w0.reshape(1, 2) + np.stack([r.ravel() * np.cos(a.ravel()), r.ravel() * np.sin(a.ravel())], 1)
    z = x[None, :, :] * ws[:, None, :]  # [models, N, 2]: logits w_c * pixel
    z = z - z.max(2, keepdims=True)
    logp = z - np.log(np.exp(z).sum(2, keepdims=True))
    losses = -logp[:, np.arange(len(y)), y].mean(1)
    return float(losses.min()), float(losses.max())


def _np(model: nn.Module, data: ImageDataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return model[1].weight.detach().double().numpy(), data.x.double().div(255).view(len(data), -1).numpy(), data.y.numpy()


@pytest.mark.parametrize("base_shift", [0.0, 0.3])
def test_layer_sharpness_matches_the_procedure_written_out(base_shift):
    model, data = _linear_problem()
    w0, x, y = _np(model, data)
    base = _loss_and_grad(w0, x, y)[0] + base_shift  # L0 may differ from the eval loss (the running loss)
    s = Sharpness(eps=0.2, iterations=6, lr_ascent=0.7, lr_descent=0.7, batch_size=len(data), augment=False)
    net = model.eval().requires_grad_(False)
    loader = ScoringLoader(data, s.batch_size, False, torch.Generator().manual_seed(0), torch.device("cpu"))
    count = PassCount()
    got = layer_sharpness(net, "1.weight", loader, base, s, RunContext(), count)
    want = _brute_procedure(w0, x, y, base, 0.2, 0.7, 6)
    assert got == pytest.approx(want, abs=1e-5)
    assert count.train == 2 * 6 * len(data) and count.eval == 2 * 6 * len(data)
    assert torch.equal(model[1].weight, torch.tensor(w0, dtype=torch.float32))  # the model is left as it was


def test_sharpness_reaches_the_extremes_of_the_ball_found_by_brute_force():
    # two classes, one pixel: a weight [2, 1] whose relative ball is a disk, searched on a dense grid
    g = torch.Generator().manual_seed(0)
    y = torch.arange(40) % 2
    x = (torch.where(y == 0, 80.0, 170.0) + 50 * torch.randn(40, generator=g)).clamp(0, 255).round().to(torch.uint8).view(40, 1, 1, 1)
    data = ImageDataset(x, y, ("a", "b"))
    model = nn.Sequential(nn.Flatten(), nn.Linear(1, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[-1.5], [2.0]]))
    w0, xs, ys = _np(model, data)
    base = _loss_and_grad(w0, xs, ys)[0]
    lo, hi = _disk_extremes(w0.ravel(), xs, ys, eps=0.4)
    assert hi - base > 0.05 and base - lo > 0.05  # a ball where both directions matter
    s = Sharpness(eps=0.4, iterations=30, lr_ascent=1.0, lr_descent=1.0, batch_size=len(data), augment=False)
    m = model_sharpness(model, data, s, RunContext(), seed=0)  # L0 = the eval loss
    assert m.layers == ["1.weight"] and m.base_loss == pytest.approx(base, abs=1e-5)
    # projected gradient steps find the extremes of the ball (never beyond them)
    assert m.s_plus.item() == pytest.approx(hi - base, rel=2e-3)
    assert m.s_minus.item() == pytest.approx(base - lo, rel=2e-3)


def test_relative_ball_rescaling():
    w0 = torch.tensor([[3.0, 4.0]])  # norm 5: radius 0.5 at eps 0.1
    inside = w0 + torch.tensor([[0.3, 0.0]])
    assert torch.equal(project_relative(inside, w0, 0.1), inside)
    far = w0 + torch.tensor([[0.0, -2.0]])
    got = project_relative(far, w0, 0.1)
    assert (got - w0).norm().item() == pytest.approx(0.5)
    assert got[0].tolist() == pytest.approx([3.0, 3.5])  # same direction, rescaled
    assert torch.equal(project_relative(torch.ones(2), torch.zeros(2), 0.1), torch.zeros(2))  # zero weight: a point


def test_scored_layers_are_the_conv_and_linear_weights():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, bias=True), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4, 2))
    assert scored_layers(net) == ["0.weight", "4.weight"]
    from benchmark.models import build_classifier

    r18 = build_classifier("resnet18", 3, 10, [0.5] * 3, [0.25] * 3, torch.device("cpu"))
    assert len(scored_layers(r18)) == 21  # the paper's count: 17 3x3 + 3 shortcut convs + the classifier


# --------------------------------------------------------------------------- threshold and UD


def test_beta_is_the_mean_of_per_epoch_two_means_midpoints():
    sal = torch.tensor([[0.10, 0.12, 0.90, 1.00, 0.11], [0.0, 0.0, 0.0, 2.0, 2.0]])
    # epoch 1: clusters {0.10, 0.11, 0.12} (0.11) and {0.90, 1.00} (0.95): 0.53; epoch 2: 1.0
    assert two_means_threshold(sal[0]) == pytest.approx(0.53)
    assert two_means_threshold(sal[1]) == pytest.approx(1.0)
    assert learnability_threshold(sal) == pytest.approx((0.53 + 1.0) / 2)
    assert two_means_threshold([0.4, 0.4, 0.4]) == 0.4  # one distinct value: itself


def test_learnable_layers_and_ud_arithmetic():
    clean = torch.tensor([[0.1, 0.2, 0.9, 1.0], [0.1, 0.1, 0.8, 0.9]])  # beta = (0.55 + 0.475) / 2 = 0.5125
    poisoned = torch.tensor([[0.0, 0.0, 0.6, 0.0], [0.0, 0.0, 0.0, 0.0]])
    beta = learnability_threshold(clean)
    assert beta == pytest.approx(0.5125)
    assert learnable_layers(clean, beta) == 2.0  # 2 + 2 layers over 2 epochs
    assert learnable_layers(poisoned, beta) == 0.5  # 1 + 0
    out = unlearnable_distance(poisoned, clean)
    assert out == {"ud": 0.25, "ud_lp": 0.5, "ud_lp_clean": 2.0, "ud_beta": pytest.approx(0.5125)}
    assert unlearnable_distance(clean, clean)["ud"] == 1.0
    assert math.isnan(unlearnable_distance(poisoned, torch.zeros(2, 4))["ud"])  # no learnable clean layer
