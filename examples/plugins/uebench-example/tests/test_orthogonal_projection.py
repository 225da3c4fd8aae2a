"""Tests of the Orthogonal Projection defense, with uebench's pytest plugin (fixtures
``uebench_tiny``, ``uebench_run_cell``, ``uebench_check_plugin``)."""

from __future__ import annotations

import torch

from benchmark import ImageDataset, RunContext

from uebench_example import OrthogonalProjection, fit_linear, project_out


def test_project_out_by_hand():
    # span{(1,0,0,0), (1,1,0,0)} = span{e1, e2}: what is left of (1,2,3,4) is (0,0,3,4)
    w = torch.tensor([[1.0, 0, 0, 0], [1.0, 1.0, 0, 0]])
    out = project_out(torch.tensor([[1.0, 2, 3, 4], [5.0, -1, 0, 2]]), w)
    assert torch.allclose(out, torch.tensor([[0.0, 0, 3, 4], [0.0, 0, 0, 2]]), atol=1e-6)


def classwise_poison(n: int = 2000, classes: int = 4, eps: float = 24 / 255, seed: int = 0) -> tuple[ImageDataset, torch.Tensor]:
    """Random images (labels carry no signal) plus one +-eps pattern per class: a class-wise
    shortcut, like LSP or OPS. Returns the poisoned set and the patterns [K, C, H, W]."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    clean = torch.rand(n, 3, 8, 8, generator=g) * 0.6 + 0.2
    patterns = (torch.randint(0, 2, (classes, 3, 8, 8), generator=g).float() * 2 - 1) * eps
    x = ((clean + patterns[y]) * 255).round().to(torch.uint8)
    return ImageDataset(x, y, tuple(f"c{i}" for i in range(classes))), patterns


def test_removes_a_classwise_shortcut():
    poisoned, patterns = classwise_poison()
    w = fit_linear(poisoned, 20, 0.1, 100, torch.Generator().manual_seed(0))
    x = poisoned.float_batch(torch.arange(len(poisoned))).flatten(1)
    assert float((x @ w.T).argmax(1).eq(poisoned.y).float().mean()) == 1.0  # the shortcut is linear
    # what separates the classes (pattern differences) mostly goes; the images themselves stay
    diffs = (patterns[1:] - patterns[0]).flatten(1)
    assert (project_out(diffs, w).norm(dim=1) / diffs.norm(dim=1)).max() < 0.3
    clean = x - patterns[poisoned.y].flatten(1)
    centred = clean - clean.mean(0)
    assert project_out(centred, w).norm() / centred.norm() > 0.95


def test_transform_keeps_shape_labels_and_indices(uebench_tiny):
    out = OrthogonalProjection(OrthogonalProjection.Params(epochs=2)).transform(uebench_tiny, RunContext(seed=0))
    assert out.x.dtype == torch.uint8 and out.x.shape == uebench_tiny.x.shape
    assert torch.equal(out.y, uebench_tiny.y) and torch.equal(out.index, uebench_tiny.index)


def test_uses_the_full_uint8_range_and_is_deterministic():
    poisoned, _ = classwise_poison()
    d = OrthogonalProjection(OrthogonalProjection.Params(epochs=2))
    a, b = d.transform(poisoned, RunContext(seed=3)), d.transform(poisoned, RunContext(seed=3))
    assert torch.equal(a.x, b.x)
    assert int(a.x.min()) == 0 and int(a.x.max()) == 255  # the global affine map to [0, 1]


def test_contracts(uebench_check_plugin):
    uebench_check_plugin(OrthogonalProjection)


def test_one_cell(uebench_run_cell):
    run = uebench_run_cell(attack="kit-noise", victim="kit-supervised", defense=OrthogonalProjection, metric="kit-accuracy")
    assert run.status == "ok"
    assert 0.0 <= run.metrics["kit-accuracy"] <= 1.0
    assert run.record["defense_spec"]["name"] == "ortho-proj"
