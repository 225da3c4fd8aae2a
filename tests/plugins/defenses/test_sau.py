"""SAU: shared adversarial examples and their unlearning (spec §1.6)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.interfaces import RunContext
from benchmark.models import build_classifier
from benchmark.registry import get_registry
from plugins.defenses.sau import SAU, js_divergence, potential_poison, sau_loss, shared_adversarial, shared_pgd
from tests.conftest import tiny_dataset


def test_js_divergence_by_hand():
    a = torch.tensor([[1.0, 2.0, 3.0]])
    assert js_divergence(a, a).item() == pytest.approx(0.0, abs=1e-7)
    far = js_divergence(torch.tensor([[30.0, -30.0]]), torch.tensor([[-30.0, 30.0]]))
    assert far.item() == pytest.approx(math.log(2), abs=1e-6)  # disjoint distributions: ln 2
    p, q = torch.tensor([0.5, 0.5]), torch.tensor([0.9, 0.1])
    m = (p + q) / 2
    want = 0.5 * (p * (p / m).log()).sum() + 0.5 * (q * (q / m).log()).sum()
    assert js_divergence(p.log()[None], q.log()[None]).item() == pytest.approx(want.item(), rel=1e-5)


def test_shared_adversarial_mask_on_a_toy_case():
    clean, clean_ref = torch.tensor([0, 0, 1, 2, 3]), torch.tensor([0, 1, 1, 2, 3])
    pred, pred_ref = torch.tensor([1, 2, 1, 0, 3]), torch.tensor([1, 2, 0, 1, 1])
    moved, moved_ref, shared = shared_adversarial(pred, pred_ref, clean, clean_ref)
    assert moved.tolist() == [True, True, False, True, False]
    assert moved_ref.tolist() == [True, True, True, True, True]
    # 0: both moved to 1 (shared); 1: both moved to 2 (shared); 2: h did not move; 3: moved to 0 vs 1; 4: h did not move
    assert shared.tolist() == [True, True, False, False, False]


def test_potential_poison_mask_on_a_toy_case():
    y = torch.tensor([0, 1, 2, 3])
    clean_ref = torch.tensor([0, 2, 1, 3])
    adv_ref = torch.tensor([0, 2, 0, 1])  # right; unchanged (wrong but not moved); moved and wrong; moved and wrong
    assert potential_poison(adv_ref, y, clean_ref).tolist() == [False, False, True, True]


class Fixed(nn.Module):
    """A 'model' whose input rows are its logits (optionally permuted): lets a test pick every prediction."""

    def __init__(self, perm: list[int] | None = None) -> None:
        super().__init__()
        self.perm = perm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.perm] if self.perm else x


def test_unlearning_loss_by_hand():
    x = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    x_adv = torch.tensor([[0.0, 0.5, 1.0], [0.0, 3.0, 0.0]])
    y = torch.tensor([0, 1])
    h, h0 = Fixed(), Fixed([1, 2, 0])  # h0's logits are h's, rotated
    # h0: clean predictions argmax([0,0,2]) = 2, argmax([1,0,0]) = 0; on x_adv: argmax([.5,1,0]) = 1, argmax([3,0,0]) = 0
    # potential poison: sample 0 (1 != y=0 and 1 != 2); sample 1: 0 != y=1 but 0 == its clean prediction -> no
    p = F.softmax(x_adv[0], 0)[1].item()  # h's probability of h0's adversarial label on sample 0
    want = F.cross_entropy(x, y).item() + (-math.log(1 - p)) / 2
    got = sau_loss(h, h0, x, x_adv, y, lambda_clean=1.0, lambda_adv=0.0, lambda_share=1.0)
    assert got.item() == pytest.approx(want, abs=1e-5)
    with_at = sau_loss(h, h0, x, x_adv, y, lambda_clean=1.0, lambda_adv=0.5, lambda_share=0.0)
    assert with_at.item() == pytest.approx(F.cross_entropy(x, y).item() + 0.5 * F.cross_entropy(x_adv, y).item(), rel=1e-6)


def _pair(seed: int = 0) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    h = build_classifier("small-cnn", 3, 4, [0.5] * 3, [0.25] * 3).eval()
    h0 = build_classifier("small-cnn", 3, 4, [0.5] * 3, [0.25] * 3).eval().requires_grad_(False)
    return h, h0


def test_shared_pgd_bounded_and_early_exit_changes_nothing():
    h, h0 = _pair()
    data = tiny_dataset(n=16, size=16)
    x, y = data.float_batch(torch.arange(16)), data.y
    kw = {"eps": 0.2, "step": 0.2, "steps": 5, "beta_adv": 0.01, "beta_share": 1.0}
    a = shared_pgd(h, h0, x, y, early_exit=True, **kw)
    b = shared_pgd(h, h0, x, y, early_exit=False, **kw)
    assert torch.equal(a, b) and a.abs().max() <= 0.2 + 1e-7
    assert set(a.unique().tolist()) <= {-0.2, 0.0, 0.2} or a.abs().max() <= 0.2  # sign steps of the bound
    assert all(p.grad is None for p in h.parameters())  # input gradients only
    same = shared_pgd(h, h, x, y, early_exit=False, init="zero", **kw)  # one model: sharing is trivial
    assert same.abs().max() <= 0.2


def test_repair_defaults_copy_and_frozen_bn():
    assert get_registry().get("defense", "sau") is SAU and SAU.stage == "model"
    p = SAU.Params()
    assert (p.epochs, p.batch_size, p.lr, p.amsgrad, p.eps, p.pgd_step, p.pgd_steps, p.pgd_init) == (100, 256, 1e-4, True, 0.2, 0.2, 5, "max")
    assert (p.beta_adv, p.beta_share, p.lambda_clean, p.lambda_adv, p.lambda_share, p.bn) == (0.01, 1.0, 1.0, 0.0, 1.0, "eval")
    h, _ = _pair()
    before = {k: v.clone() for k, v in h.state_dict().items()}
    hold = tiny_dataset(n=24, size=16)
    ctx = RunContext(seed=2)
    events = []
    ctx.trace.subscribe(events.append)
    out = SAU(SAU.Params(epochs=3, batch_size=8, pgd_steps=2)).repair(h, hold, ctx)
    again = SAU(SAU.Params(epochs=3, batch_size=8, pgd_steps=2)).repair(h, hold, RunContext(seed=2))
    assert all(torch.equal(v, h.state_dict()[k]) for k, v in before.items())
    so = out.state_dict()
    assert all(torch.equal(so[k], again.state_dict()[k]) for k in so)
    assert any(not torch.equal(so[k], before[k]) for k in so if k.endswith("weight"))
    assert all(torch.equal(so[k], before[k]) for k in so if "running" in k)
    assert [e.epoch for e in events if e.phase == "repair"] == [1, 2, 3] and not out.training
