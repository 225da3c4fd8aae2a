"""I-BAU: the implicit hypergradient against brute-force references, and the repair (spec §1.5)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.autograd.functional import jacobian

from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import RunContext
from benchmark.models import build_classifier
from benchmark.registry import get_registry
from plugins.defenses.ibau import IBAU, fixed_point_hypergradient, perturbation_mask
from tests.conftest import tiny_dataset

torch.set_default_dtype(torch.float32)
D, C, REG, STEP = 4, 3, 1.0, 0.1


def problem(seed: int = 0):
    """A linear classifier ``W x + b`` on 4-d inputs; inner loss strongly convex in delta."""
    g = torch.Generator().manual_seed(seed)
    W = (torch.randn(C, D, generator=g, dtype=torch.float64) * 0.5).requires_grad_(True)
    b = (torch.randn(C, generator=g, dtype=torch.float64) * 0.1).requires_grad_(True)
    x0, y0 = torch.randn(6, D, generator=g, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2])
    x1, y1 = torch.randn(5, D, generator=g, dtype=torch.float64), torch.tensor([2, 2, 0, 1, 0])
    mask = torch.tensor([[1.0], [0.0], [1.0], [0.0], [0.0]], dtype=torch.float64)

    def inner(delta, W=W, b=b):
        return -F.cross_entropy((x0 + delta) @ W.T + b, y0) + REG * delta.pow(2).sum()

    def phi(delta, W=W, b=b):
        (gd,) = torch.autograd.grad(inner(delta, W, b), delta, create_graph=True)
        return delta - STEP * gd

    def outer(delta, W=W, b=b):
        return F.cross_entropy((x1 + mask * delta) @ W.T + b, y1)

    return W, b, phi, outer, inner


def fixed_point(phi, W, b, iters: int = 300) -> torch.Tensor:
    delta = torch.zeros(1, D, dtype=torch.float64)
    for _ in range(iters):
        delta = phi(delta.detach().requires_grad_(True), W, b).detach()
    return delta


def test_hypergradient_equals_the_implicit_function_theorem_at_the_fixed_point():
    W, b, phi, outer, _ = problem()
    star = fixed_point(phi, W, b)
    got = fixed_point_hypergradient([W, b], star, outer, phi, iterations=400)
    # closed form: dF/dtheta = dL/dtheta + (dPhi/dtheta)^T (I - J^T)^-1 dL/ddelta, with explicit Jacobians
    J = jacobian(lambda d: phi(d.view(1, D).requires_grad_(True)).flatten(), star.flatten())
    g_delta = torch.autograd.grad(outer(star.clone().requires_grad_(True)), [W])[0]  # warm the graph API
    d = star.clone().requires_grad_(True)
    g_delta = torch.autograd.grad(outer(d), d)[0].flatten()
    v = torch.linalg.solve(torch.eye(D, dtype=torch.float64) - J.T, g_delta)
    for i, p in enumerate((W, b)):
        direct = torch.autograd.grad(outer(star, W, b), p)[0]
        jp = jacobian(lambda q, i=i: phi(star.clone().requires_grad_(True), *((q, b) if i == 0 else (W, q))).flatten(), p.detach())
        expected = direct + (jp.reshape(D, -1).T @ v).view_as(p)
        assert torch.allclose(got[i], expected, atol=1e-9), (i, got[i], expected)


def test_hypergradient_equals_finite_differences_of_the_bilevel_objective():
    W, b, phi, outer, _ = problem(1)
    star = fixed_point(phi, W, b)
    got = fixed_point_hypergradient([W, b], star, outer, phi, iterations=400)
    h = 1e-5
    for i, p in enumerate((W, b)):
        flat = p.detach().flatten()
        for j in range(0, flat.numel(), 2):
            vals = []
            for s in (h, -h):
                q = flat.clone()
                q[j] += s
                q = q.view_as(p)
                args = (q, b.detach()) if i == 0 else (W.detach(), q)
                d = fixed_point(lambda dd, W_, b_, args=args: phi(dd, *args), *args)
                vals.append(outer(d, *args).item())
            fd = (vals[0] - vals[1]) / (2 * h)
            assert got[i].flatten()[j].item() == pytest.approx(fd, abs=1e-6), (i, j)


@pytest.mark.parametrize("k", [0, 1, 2, 5])
def test_k_iterations_are_the_truncated_neumann_series(k: int):
    W, b, phi, outer, _ = problem(2)
    delta = torch.tensor([[0.3, -0.2, 0.1, 0.5]], dtype=torch.float64)  # any delta, as the reference's inner max gives
    got = fixed_point_hypergradient([W, b], delta, outer, phi, iterations=k)
    J = jacobian(lambda d: phi(d.view(1, D).requires_grad_(True)).flatten(), delta.flatten())
    d = delta.clone().requires_grad_(True)
    g = torch.autograd.grad(outer(d), d)[0].flatten()
    v = torch.zeros(D, dtype=torch.float64)
    for _ in range(k):  # hypertorch's loop: v <- J^T v + g, from v = 0
        v = J.T @ v + g
    for i, p in enumerate((W, b)):
        direct = torch.autograd.grad(outer(delta, W, b), p)[0]
        jp = jacobian(lambda q, i=i: phi(delta.clone().requires_grad_(True), *((q, b) if i == 0 else (W, q))).flatten(), p.detach())
        assert torch.allclose(got[i], direct + (jp.reshape(D, -1).T @ v).view_as(p), atol=1e-10)


def test_perturbation_mask_counts():
    g = torch.Generator().manual_seed(0)
    assert perturbation_mask(100, 0.01, g, torch.device("cpu")).sum() == 1
    assert perturbation_mask(50, 0.01, g, torch.device("cpu")).sum() == 0  # int(0.5): a short last batch gets none
    m = perturbation_mask(250, 0.01, g, torch.device("cpu"))
    assert m.shape == (250, 1, 1, 1) and m.sum() == 2


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_classifier("small-cnn", 3, 4, [0.5] * 3, [0.25] * 3).eval()


def test_repair_is_a_seeded_copy_in_eval_mode_with_one_event_per_round():
    assert get_registry().get("defense", "i-bau") is IBAU
    p = IBAU.Params()
    assert (p.rounds, p.batch_size, p.lr, p.optimizer, p.fixed_point_iters, p.bn) == (5, 100, 1e-3, "adam", 5, "eval")
    assert IBAU.stage == "model"
    hold = tiny_dataset(n=24, size=16)
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    d = IBAU(IBAU.Params(rounds=2, batch_size=8, fixed_point_iters=2))
    ctx = RunContext(seed=3)
    events = []
    ctx.trace.subscribe(events.append)
    torch.manual_seed(123)
    a = d.repair(model, hold, ctx)
    torch.manual_seed(456)  # the global RNG state before the repair does not matter
    b = d.repair(model, hold, RunContext(seed=3))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the victim is untouched
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], before[k]) for k in sa if "weight" in k)
    bn = [k for k in sa if k.endswith("running_mean")]
    assert bn and all(torch.equal(sa[k], before[k]) for k in bn)  # eval mode: BN statistics frozen
    assert [(e.phase, e.epoch, e.epochs) for e in events] == [("repair", 1, 2), ("repair", 2, 2)]
    assert not a.training
    with pytest.raises(ValueError, match="dataset.holdout"):
        d.repair(model, None, ctx)


def test_repair_lowers_the_holdout_loss_of_a_wrong_model():
    hold = tiny_dataset(n=40, size=16)
    model = _model()
    x = hold.float_batch(torch.arange(len(hold)))
    before = F.cross_entropy(model(x), hold.y).item()
    repaired = IBAU(IBAU.Params(rounds=5, batch_size=10, fixed_point_iters=2)).repair(model, hold, RunContext())
    with torch.no_grad():
        after = F.cross_entropy(repaired(x), hold.y).item()
    assert after < before


def test_holdout_shuffled_once_not_walked_class_by_class():
    y = torch.arange(4).repeat_interleave(10)  # sorted by class, as the hold-out is drawn
    hold = ImageDataset(torch.randint(0, 255, (40, 3, 8, 8), dtype=torch.uint8), y, ("a", "b", "c", "d"))
    from benchmark.repair import shuffled_once

    s = shuffled_once(hold, torch.Generator().manual_seed(0))
    assert len(torch.unique(s.y[:10])) > 1 and sorted(s.y.tolist()) == y.tolist()
