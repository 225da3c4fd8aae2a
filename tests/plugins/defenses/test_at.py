"""The AT defense (PGD adversarial training, Madry et al. 2018)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.interfaces import RunContext, TrainHooks
from benchmark.models import build_classifier
from benchmark.registry import get_registry
from plugins.defenses.at import AT, ATHooks, madry_pgd
from tests.conftest import tiny_dataset


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    m = build_classifier("small-cnn", 3, 4, [0.5] * 3, [0.25] * 3)
    return m.eval()


def test_registered_with_paper_defaults() -> None:
    cls = get_registry().get("defense", "at")
    assert cls is AT and AT.stage == "train"
    p = AT.Params()
    assert p.eps == pytest.approx(8 / 255) and p.step_size == pytest.approx(2 / 255) and p.steps == 10
    assert p.norm == "linf" and p.random_start == "normal"
    assert set(AT.profiles) == {"quick", "smoke"}
    assert AT.Params(eps="4/255").eps == pytest.approx(4 / 255)


def test_applies_to_supervised_only() -> None:
    sl = get_registry().get("victim", "sl")()

    class Contrastive(type(sl)):  # type: ignore[misc]
        paradigm = "contrastive"

    assert AT().applies_to(sl)
    assert not AT().applies_to(Contrastive())


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_stays_in_ball_and_box_and_increases_loss(norm: str) -> None:
    data = tiny_dataset(n=32, size=16)
    x, y = data.float_batch(torch.arange(32)), data.y
    model = _model()
    eps = 8 / 255 if norm == "linf" else 0.5
    step = 2 / 255 if norm == "linf" else 0.1
    g = torch.Generator().manual_seed(0)
    x_adv = madry_pgd(model, x, y, F.cross_entropy, eps=eps, step_size=step, steps=10, norm=norm, generator=g)  # type: ignore[arg-type]
    assert x_adv.shape == x.shape and not x_adv.requires_grad
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    d = (x_adv - x).flatten(1)
    if norm == "linf":
        assert d.abs().max() <= eps + 1e-6
    else:
        assert d.norm(dim=1).max() <= eps + 1e-5
    with torch.no_grad():
        clean, adv = F.cross_entropy(model(x), y), F.cross_entropy(model(x_adv), y)
    assert adv > clean
    assert all(p.grad is None for p in model.parameters())  # input gradients only


def test_the_random_start_is_the_references_for_each_norm() -> None:
    """With 0 steps PGD returns its start: L-inf ``x + step * N(0, I)`` (EM's ``madrys.py``), L2 the
    same draw scaled to L2 norm ``step`` per sample (APBench's ``mardrys.py``), inside a 0.5 ball."""
    data = tiny_dataset(n=4, size=16)
    x, y = data.float_batch(torch.arange(4)), data.y
    draw = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    for norm, want in (("linf", x + 0.1 * draw), ("l2", x + 0.1 * draw / draw.flatten(1).norm(dim=1).view(-1, 1, 1, 1))):
        start = madry_pgd(_model(), x, y, F.cross_entropy, eps=0.5, step_size=0.1, steps=0, norm=norm,  # type: ignore[arg-type]
                          generator=torch.Generator().manual_seed(3))
        torch.testing.assert_close(start, want)
    assert (start - x).flatten(1).norm(dim=1) == pytest.approx([0.1] * 4)


def test_pgd_reproducible_with_generator() -> None:
    data = tiny_dataset(n=8)
    x, y = data.float_batch(torch.arange(8)), data.y
    model = _model()
    kw = {"eps": 8 / 255, "step_size": 2 / 255, "steps": 3}
    a = madry_pgd(model, x, y, F.cross_entropy, generator=torch.Generator().manual_seed(1), **kw)  # type: ignore[arg-type]
    b = madry_pgd(model, x, y, F.cross_entropy, generator=torch.Generator().manual_seed(1), **kw)  # type: ignore[arg-type]
    assert torch.equal(a, b)


def test_hooks_restore_train_mode_and_grads() -> None:
    data = tiny_dataset(n=16)
    x, y = data.float_batch(torch.arange(16)), data.y
    model = _model().train()
    hooks = AT(AT.Params(steps=2)).train_hooks(RunContext())
    assert isinstance(hooks, ATHooks) and isinstance(hooks, TrainHooks)
    loss = hooks.loss(model, x, y, F.cross_entropy)
    assert model.training and all(p.requires_grad for p in model.parameters())
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    # the loss is the adversarial one: at least the clean loss of the same (train-mode) model
    with torch.no_grad():
        clean = F.cross_entropy(model(x), y)
    assert float(loss.detach()) >= float(clean) - 1e-4


def test_smoke_fit_through_runner(tmp_path: Path) -> None:
    from benchmark.config import parse_matrix, resolve
    from benchmark.runner import Runner

    matrix = parse_matrix(
        {
            "name": "at-smoke",
            "dataset": {"name": "digits", "subset": 200},
            "profile": "smoke",
            "attacks": ["clean"],
            "victims": ["sl"],
            "defenses": ["none", "at"],
            "metrics": ["accuracy"],
        }
    )
    runner = Runner(resolve(matrix, get_registry()), tmp_path, progress=False)
    summary = runner.run()
    recs = {c.defense.name: runner.store.get(c.key) for c in runner.plan.cells}
    assert summary.exit_code == 0, [r.get("error") for r in recs.values()]
    assert recs["at"]["status"] == "ok" and 0.0 <= recs["at"]["metrics"]["accuracy"] <= 1.0
