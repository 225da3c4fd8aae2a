"""Checks the contrastive-attack tests share: release/budget, determinism, index alignment under a
permutation of the dataset, and a loss that decreases over a few signed steps."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import torch

from benchmark.interfaces import Attack, Poison, RunContext, release
from benchmark.params import resolve_params
from benchmark.registry import get_registry
from benchmark.ssl.poisoning import linf_step


def make(cls: type[Attack], **over: Any) -> Attack:
    return cls(resolve_params(cls, "smoke", over))


def by_name(name: str, profile: str = "smoke", **overrides: object) -> Attack:
    """The registered attack ``name`` with ``profile``'s params and ``overrides``."""
    cls = get_registry().get("attack", name)
    return cls(resolve_params(cls, profile, overrides))


def check_release(attack: Attack, data, poison: Poison) -> None:
    """Sample-wise delta ``[N, ...]`` within eps, released with the one policy, uint8 within budget."""
    eps = attack.params.eps
    assert poison.kind == "samplewise" and poison.delta.shape == data.x.shape
    assert poison.delta.abs().max() <= eps + 1e-6
    assert poison.x.dtype == torch.uint8 and torch.equal(poison.x, release(data.x, poison.delta))
    assert (poison.x.int() - data.x.int()).abs().max() <= round(eps * 255)
    assert attack.budget().violation(data.x, poison.x) is None
    assert poison.delta.abs().sum() > 0


def check_deterministic(attack: Attack, data) -> None:
    a = attack.generate(data, RunContext(seed=3))
    b = attack.generate(data, RunContext(seed=3))
    c = attack.generate(data, RunContext(seed=4))
    assert torch.equal(a.x, b.x) and torch.equal(a.delta, b.delta)
    assert not torch.equal(a.delta, c.delta)


def identity_views(monkeypatch: pytest.MonkeyPatch, *modules: Any) -> None:
    """Replace the random two-view augmentation by ``(x, x)`` in ``modules`` (and the core model
    phase): the only randomness left is then the batch order."""
    from benchmark.ssl import poisoning
    from benchmark.training import to_model

    def views(x: torch.Tensor, g: torch.Generator, view: dict) -> tuple[torch.Tensor, torch.Tensor]:
        return to_model(x), to_model(x)

    for m in (poisoning, *modules):
        monkeypatch.setattr(m, "two_views", views)


def check_permutation(attack: Attack, data) -> None:
    """Index alignment: with one full batch (order-free losses and BN statistics) and identity
    views, generating on a permuted dataset gives the permuted delta (up to float summation order,
    which may flip the sign of a near-zero gradient component)."""
    g = torch.Generator().manual_seed(5)
    perm = torch.randperm(len(data), generator=g)
    a = attack.generate(data, RunContext(seed=0)).delta
    b = attack.generate(data.select(perm), RunContext(seed=0)).delta
    same = (b - a[perm]).abs() < 1e-6
    assert same.float().mean() > 0.97, f"only {same.float().mean():.3f} of the entries follow their image"
    # and the delta really is per image: a random re-pairing does not match
    other = torch.roll(perm, 1)
    assert ((b - a[other]).abs() < 1e-6).float().mean() < 0.5


def check_loss_decreases(objective: torch.nn.Module, x: torch.Tensor, eps: float, alpha: float, steps: int = 5) -> list[float]:
    """``steps`` signed steps of :func:`linf_step` on delta, each on two fixed views of
    ``clamp(x + delta)`` (the same augmentation draw every time), lower the objective's noise-phase
    loss. The loss is a pure function of delta: each evaluation runs on a fresh copy of the
    objective, so momentum/queue side effects do not accumulate."""
    from benchmark.ssl.poisoning import two_views

    def loss_of(delta: torch.Tensor) -> torch.Tensor:
        obj = copy.deepcopy(objective)
        with obj.noise_phase():
            v1, v2 = two_views((x + delta).clamp(0, 1), torch.Generator().manual_seed(9), {})
            return obj(v1, v2, torch.zeros(len(x), dtype=torch.long))

    delta = torch.zeros_like(x)
    losses = []
    for _ in range(steps):
        d = delta.clone().requires_grad_(True)
        loss = loss_of(d)
        (grad,) = torch.autograd.grad(loss, d)
        losses.append(float(loss.detach()))
        delta = linf_step(delta, grad, alpha, eps)
    losses.append(float(loss_of(delta)))
    assert losses[-1] < losses[0], losses
    return losses


def config_error(cls: type[Attack], **over: Any) -> str:
    from benchmark.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        resolve_params(cls, "paper", over, where="attacks[0].params")
    return str(err.value)


Views = Callable[[torch.Tensor, torch.Generator, dict], tuple[torch.Tensor, torch.Tensor]]
