"""The LSP attack (plugins/attacks/lsp.py): its L2 budget. Tiny synthetic data, smoke profile."""

from __future__ import annotations

import pytest
import torch

from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import Budget, RunContext
from tests.plugins.attacks.helpers import by_name


@pytest.fixture(autouse=True)
def _threads() -> None:
    torch.manual_seed(0)


def test_lsp_budget_check_passes_and_catches_an_oversized_poison(tiny: ImageDataset) -> None:
    attack = by_name("lsp")
    p = attack.generate(tiny, RunContext())
    assert p.delta is not None
    norms = p.delta.flatten(1).norm(dim=1)
    assert (norms <= attack.params.eps * (1 + 1e-5)).all() and norms.max() > 0.5 * attack.params.eps
    assert attack.budget().violation(tiny.x, p.x) is None
    big = ((tiny.x.float() + 3 * p.delta * 255).clamp(0, 255).round()).to(torch.uint8)
    assert attack.budget().violation(tiny.x, big) is not None
    # the L-inf 8/255 default would wrongly reject LSP (its patches exceed 8/255 per pixel)
    assert Budget("linf", 8 / 255).violation(tiny.x, p.x) is not None
