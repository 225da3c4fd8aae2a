from __future__ import annotations

import pytest
import torch

from benchmark.interfaces import RunContext
from benchmark.models import build_classifier
from benchmark.training import SGDRecipe, accuracy, autocast, batches, frozen, lr_lambda, pgd, resident, train_supervised
from tests.conftest import tiny_dataset


def test_lr_schedule_warmup_cosine_multistep():
    f = lr_lambda(SGDRecipe(epochs=10, warmup_epochs=1, schedule="cosine"), steps_per_epoch=10)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(55) == pytest.approx(0.5) and f(100) == pytest.approx(0.0)
    m = lr_lambda(SGDRecipe(epochs=10, schedule="multistep", milestones=(5, 8), gamma=0.1), steps_per_epoch=2)
    assert [m(0), m(10), m(16)] == pytest.approx([1.0, 0.1, 0.01])


def test_batches_order_and_drop_last():
    assert [b.tolist() for b in batches(5, 2, None, False)] == [[0, 1], [2, 3], [4]]
    assert len(list(batches(5, 2, torch.Generator().manual_seed(0), True))) == 2
    seen = torch.cat(list(batches(7, 3, torch.Generator().manual_seed(0), False)))
    assert sorted(seen.tolist()) == list(range(7))


def test_pgd_stays_in_ball_and_box_and_descends():
    torch.manual_seed(0)
    w = torch.randn(12)
    x = torch.rand(4, 12)

    def loss(xa):
        return (xa @ w).sum()

    d = pgd(loss, x, torch.zeros_like(x), eps=0.05, alpha=0.01, steps=10)
    assert d.abs().max() <= 0.05 + 1e-7
    assert ((x + d) >= 0).all() and ((x + d) <= 1).all()
    assert loss((x + d).clamp(0, 1)) < loss(x)
    # linear loss: every unclamped coordinate moves by exactly -eps * sign(w)
    inner = ((x - 0.05 > 0) & (x + 0.05 < 1))
    assert torch.allclose(d[inner], (-0.05 * torch.sign(w)).expand_as(x)[inner])


def test_frozen_restores_state():
    m = torch.nn.Linear(2, 2)
    m.train()
    with frozen(m):
        assert not m.training and not any(p.requires_grad for p in m.parameters())
    assert m.training and all(p.requires_grad for p in m.parameters())


def test_train_supervised_learns_tiny_data():
    data = tiny_dataset(n=64, classes=4, size=8)
    ctx = RunContext(seed=0)
    torch.manual_seed(0)
    model = build_classifier("small-cnn", 3, 4, [0.5] * 3, [0.25] * 3)
    before = accuracy(model, data, ctx)
    train_supervised(model, data, SGDRecipe(epochs=15, batch_size=16, lr=0.05), ctx, augment=None)
    assert accuracy(model, data, ctx) >= 0.9 > before or accuracy(model, data, ctx) == 1.0


def test_train_supervised_is_deterministic():
    data = tiny_dataset(n=32, classes=4, size=8)
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        model = build_classifier("small-cnn", 3, 4, [0.5] * 3, [0.25] * 3)
        train_supervised(model, data, SGDRecipe(epochs=2, batch_size=8), RunContext(seed=1))
        outs.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(outs[0], outs[1])


def test_batches_on_a_device_keep_the_order():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a = [b.tolist() for b in batches(10, 4, g1, False)]
    b = [b.tolist() for b in batches(10, 4, g2, False, torch.device("cpu"))]
    assert a == b


def test_resident_leaves_cpu_data_alone_and_float_batch_takes_indices_anywhere():
    data = tiny_dataset(n=12)
    assert resident(data, torch.device("cpu")) is data
    assert data.to("cpu") is data
    idx = torch.tensor([3, 0, 7])
    expected = data.x[idx].float() / 255
    assert torch.equal(data.float_batch(idx), expected)
    moved = data.to("meta")  # a device other than the data's: a new dataset, every tensor moved
    assert moved is not data and {t.device.type for t in (moved.x, moved.y, moved.index)} == {"meta"}


def test_autocast_follows_the_matrix_precision():
    lin, x = torch.nn.Linear(4, 2), torch.rand(3, 4)
    for precision, want in (("auto", torch.float32), ("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        with autocast(RunContext(precision=precision)):
            assert lin(x).dtype == want, precision
    cuda = torch.device("cuda")  # a device object only: nothing runs on it
    assert RunContext(device=cuda).amp and not RunContext(device=cuda, precision="float32").amp
