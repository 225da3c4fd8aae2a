"""The core changes made for issue 5 (performance) keep behaviour: chunked release and budget
check, device-side loss/accuracy accumulation, EM's device-resident delta."""

from __future__ import annotations

import torch

from benchmark import interfaces
from benchmark.interfaces import Budget, RunContext, release
from benchmark.models import build_classifier
from benchmark.training import SGDRecipe, train_supervised
from plugins.attacks.em import EM
from tests.conftest import tiny_dataset


def test_release_matches_unchunked_formula_across_chunks() -> None:
    n = 2 * interfaces._CHUNK + 5
    g = torch.Generator().manual_seed(0)
    clean = torch.randint(0, 256, (n, 3, 2, 2), generator=g, dtype=torch.uint8)
    delta = (torch.rand(n, 3, 2, 2, generator=g) * 2 - 1) * 8 / 255
    want = (clean.float() / 255 + delta).clamp(0, 1).mul(255).round().to(torch.uint8)
    assert torch.equal(release(clean, delta), want)


def test_budget_finds_the_worst_image_in_a_later_chunk() -> None:
    n = 2 * interfaces._CHUNK + 5
    clean = torch.full((n, 1, 2, 2), 100, dtype=torch.uint8)
    poison = clean.clone()
    poison[n - 2, 0, 1, 1] = 110
    msg = Budget("linf", 8 / 255).violation(clean, poison)
    assert msg is not None and f"image {n - 2}" in msg
    assert Budget("linf", 10 / 255).violation(clean, poison) is None


def test_train_supervised_logs_the_epoch_loss() -> None:
    data = tiny_dataset(n=64)
    logs: list[str] = []
    ctx = RunContext(log=logs.append)
    model = build_classifier("small-cnn", 3, 4, [0.5] * 3, [0.25] * 3)
    train_supervised(model, data, SGDRecipe(epochs=2, batch_size=16), ctx)
    losses = [float(m.rsplit(" ", 1)[1]) for m in logs if "loss" in m]
    assert len(losses) == 2 and all(0 < v < 10 for v in losses)


def test_em_samplewise_smoke_cpu_delta_within_budget() -> None:
    data = tiny_dataset(n=64)
    em = EM(EM.Params(arch="small-cnn", steps=2, max_outer=2, batch_size=32))
    torch.manual_seed(0)
    a = em.generate(data, RunContext())
    torch.manual_seed(0)
    b = em.generate(data, RunContext())
    assert a.delta is not None and a.delta.device.type == "cpu" and a.delta.dtype == torch.float32
    assert a.delta.shape == data.x.shape and a.delta.abs().max() <= 8 / 255 + 1e-6
    assert a.delta.abs().sum() > 0 and torch.equal(a.x, b.x) and torch.equal(a.delta, b.delta)
    assert em.budget().violation(data.x, a.x) is None
    assert 1 <= a.meta["outer_iterations"] <= 2
