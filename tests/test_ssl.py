"""Unit tests of benchmark.ssl: each loss against a hand-computed (numpy) reference on 2-3 samples,
heads, EMA, queue, schedule, the linear probe and the kNN probe."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmark.interfaces import RunContext
from benchmark.ssl import (
    KeyQueue,
    alignment,
    cosine_momentum,
    ema_update,
    fit_linear,
    info_nce_queue,
    knn_probe,
    knn_scores,
    linear_probe,
    momentum_copy,
    negative_cosine,
    nt_xent,
    prediction_head,
    projection_head,
    supcon,
    uniformity,
    warmup_cosine,
)
from benchmark.ssl.probe import ProbeRecipe

# Two images, two views each, 2-d embeddings (already unit length: cosines are dot products).
Z1 = np.array([[1.0, 0.0], [0.0, 1.0]])
Z2 = np.array([[0.6, 0.8], [0.8, 0.6]])


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float32)


def test_nt_xent_matches_hand_computation() -> None:
    t = 0.5
    # Views in order a1=(1,0), b1=(0,1), a2=(.6,.8), b2=(.8,.6). Anchor a1: positive a2 (cos .6),
    # negatives b1 (0) and b2 (.8). Anchor b1: positive b2 (.6), negatives a1 (0), a2 (.8).
    # Anchor a2: positive a1 (.6), negatives b1 (.8), b2 (.96). Anchor b2: positive b1 (.6), a1 (.8), a2 (.96).
    def term(pos: float, negs: list[float]) -> float:
        return -pos / t + math.log(math.exp(pos / t) + sum(math.exp(n / t) for n in negs))

    ref = (term(0.6, [0.0, 0.8]) + term(0.6, [0.0, 0.8]) + term(0.6, [0.8, 0.96]) + term(0.6, [0.8, 0.96])) / 4
    got = nt_xent(_t(Z1), _t(Z2), t).item()
    assert got == pytest.approx(ref, rel=1e-5)


def test_nt_xent_normalizes_inputs() -> None:
    assert nt_xent(_t(3 * Z1), _t(0.5 * Z2), 0.5).item() == pytest.approx(nt_xent(_t(Z1), _t(Z2), 0.5).item(), rel=1e-5)


def test_supcon_matches_hand_computation() -> None:
    t = 0.1
    z1 = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    z2 = np.array([[0.8, 0.6], [0.6, 0.8], [1.0, 0.0]])
    y = np.array([0, 0, 1])
    z = np.concatenate([z1, z2])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    labels = np.concatenate([y, y])
    sim = z @ z.T / t
    total = 0.0
    for i in range(6):
        others = [a for a in range(6) if a != i]
        log_den = np.log(np.sum(np.exp(sim[i, others])))
        positives = [p for p in others if labels[p] == labels[i]]
        total += -np.mean([sim[i, p] - log_den for p in positives])
    ref = total / 6
    got = supcon(_t(z1), _t(z2), torch.tensor(y), t).item()
    assert got == pytest.approx(ref, rel=1e-5)


def test_supcon_with_distinct_labels_is_nt_xent() -> None:
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    assert supcon(z1, z2, torch.arange(5), 0.3).item() == pytest.approx(nt_xent(z1, z2, 0.3).item(), rel=1e-5)


def test_info_nce_queue_matches_hand_computation() -> None:
    t = 0.2
    q = np.array([[1.0, 0.0], [0.0, 1.0]])
    k = np.array([[0.6, 0.8], [0.8, 0.6]])
    bank = np.array([[-1.0, 0.0], [0.0, -1.0], [0.8, 0.6]])
    ref = 0.0
    for i in range(2):
        logits = np.concatenate([[q[i] @ k[i]], bank @ q[i]]) / t
        ref += -(logits[0] - np.log(np.exp(logits).sum()))
    ref /= 2
    assert info_nce_queue(_t(q), _t(k), _t(bank), t).item() == pytest.approx(ref, rel=1e-5)


def test_negative_cosine_and_stop_gradient() -> None:
    p = torch.tensor([[2.0, 0.0], [1.0, 1.0]], requires_grad=True)
    z = torch.tensor([[1.0, 1.0], [3.0, 3.0]], requires_grad=True)
    ref = -(1 / math.sqrt(2) + 1.0) / 2
    loss = negative_cosine(p, z)
    assert loss.item() == pytest.approx(ref, rel=1e-6)
    loss.backward()
    assert z.grad is None and p.grad is not None


def test_alignment_and_uniformity_match_hand_computation() -> None:
    x = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    y = np.array([[0.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    # squared distances between pairs: 2, 0, 0 -> alignment (alpha 2) = 2/3
    assert alignment(_t(x), _t(y)).item() == pytest.approx(2 / 3, rel=1e-6)
    # distinct pairs of x: |x0-x1|^2 = 2, |x0-x2|^2 = 4, |x1-x2|^2 = 2
    ref = math.log((math.exp(-4) + math.exp(-8) + math.exp(-4)) / 3)
    assert uniformity(_t(x)).item() == pytest.approx(ref, rel=1e-5)


def test_heads_shapes() -> None:
    proj = projection_head(8, 16, 4, bn=True, last_bn="plain")
    pred = prediction_head(4, 6)
    out = pred(proj(torch.randn(3, 8)))
    assert out.shape == (3, 4)
    assert isinstance(proj[-1], torch.nn.BatchNorm1d) and proj[-1].weight is None
    assert len(projection_head(8, 16, 4)) == 3  # Linear, ReLU, Linear


def test_ema_update_and_momentum_copy() -> None:
    online = torch.nn.Linear(2, 1)
    target = momentum_copy(online)
    assert not any(p.requires_grad for p in target.parameters())
    with torch.no_grad():
        online.weight.fill_(1.0)
        target.weight.fill_(0.0)
    ema_update(target, online, 0.9)
    assert torch.allclose(target.weight, torch.full_like(target.weight, 0.1))
    assert cosine_momentum(0.99, 0, 100) == pytest.approx(0.99)
    assert cosine_momentum(0.99, 100, 100) == pytest.approx(1.0)


def test_key_queue_wraps() -> None:
    q = KeyQueue(5, 2, torch.Generator().manual_seed(0))
    q.enqueue(torch.tensor([[2.0, 0.0]] * 3))
    q.enqueue(torch.tensor([[0.0, 3.0]] * 3))
    assert int(q.ptr) == 1
    assert torch.allclose(q.queue[0], torch.tensor([0.0, 1.0]))  # wrapped
    assert torch.allclose(q.queue[2], torch.tensor([1.0, 0.0]))
    assert torch.allclose(q.queue[3:], torch.tensor([[0.0, 1.0]] * 2))


def test_warmup_cosine() -> None:
    f = warmup_cosine(100, warmup_steps=10, warmup_from=0.1, min_ratio=0.01)
    assert f(0) == pytest.approx(0.1)
    assert f(10) == pytest.approx(0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 0.1)))
    assert f(100) == pytest.approx(0.01)
    assert all(f(t) >= f(t + 1) for t in range(10, 100))


def test_fit_linear_folds_standardization() -> None:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 3
    feats = torch.randn(60, 5, generator=g) * 0.1 + 100 + 3 * torch.nn.functional.one_hot(y, 5).float()
    layer = fit_linear(feats, y, 3, ProbeRecipe(epochs=30, batch_size=16, lr=0.1, standardize=True), g)
    assert (layer(feats).argmax(1) == y).float().mean() == 1.0


def test_linear_probe_installs_head(tiny) -> None:
    from benchmark.models import build_classifier

    mean, std = tiny.mean_std()
    model = build_classifier("small-cnn", 3, tiny.num_classes, mean, std)
    before = [p.clone() for p in model.backbone.parameters()]
    out = linear_probe(model, tiny, RunContext(), ProbeRecipe(epochs=20, batch_size=8, lr=0.1, standardize=True))
    assert out is model and not model.training
    assert all(torch.equal(a, b) for a, b in zip(before, model.backbone.parameters()))
    assert out(torch.rand(2, 3, 8, 8)).shape == (2, tiny.num_classes)


def test_knn_scores_match_hand_computation() -> None:
    # Bank (unit vectors) a=(1,0) class 0, b=(0,1) class 1, c=(.6,.8) class 1, d=(.8,.6) class 0.
    # Query (2,0) -> (1,0): cosines a 1, b 0, c .6, d .8. Query (0,3) -> (0,1): a 0, b 1, c .8, d .6.
    bank = _t(np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, 0.6]]))
    labels = torch.tensor([0, 1, 1, 0])
    q = _t(np.array([[2.0, 0.0], [0.0, 3.0]]))
    t, e = 0.5, math.exp
    got = knn_scores(q, bank, labels, 3, k=3, temperature=t)
    ref = [[e(1 / t) + e(0.8 / t), e(0.6 / t), 0.0], [e(0.6 / t), e(1 / t) + e(0.8 / t), 0.0]]  # top 3: a, d, c / b, c, d
    assert got.numpy() == pytest.approx(np.array(ref), rel=1e-5)
    k2 = knn_scores(q, bank, labels, 3, k=2, temperature=t)  # top 2: a, d (both class 0) / b, c (class 1)
    assert k2.numpy() == pytest.approx(np.array([[e(2) + e(1.6), 0, 0], [0, e(2) + e(1.6), 0]]), rel=1e-5)
    assert torch.allclose(knn_scores(q, bank, labels, 3, k=3, temperature=t, chunk=1), got)  # chunking is invisible
    assert torch.allclose(knn_scores(q, bank, labels, 3, k=50, temperature=t), knn_scores(q, bank, labels, 3, k=4, temperature=t))


def test_knn_probe_installs_frozen_head(tiny) -> None:
    from benchmark.models import build_classifier
    from benchmark.ssl import KNNHead

    mean, std = tiny.mean_std()
    model = build_classifier("small-cnn", 3, tiny.num_classes, mean, std)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    out = knn_probe(model, tiny, RunContext(), k=1, temperature=0.1)
    assert out is model and not model.training and isinstance(model.head, KNNHead)
    assert all(torch.equal(before[k], v) for k, v in model.backbone.state_dict().items())  # BN stats too
    with torch.no_grad():
        scores = out(tiny.x.float() / 255)
    assert scores.shape == (len(tiny), tiny.num_classes)
    assert torch.equal(scores.argmax(1), tiny.y)  # k 1: every training image is its own nearest neighbour
    assert torch.allclose(scores.exp().sum(1), torch.ones(len(tiny)))  # log vote shares


def test_knn_head_centers_bank_and_queries() -> None:
    from benchmark.ssl import KNNHead

    # Bank (1,1) class 0, (3,1) class 1, (1,3) class 2: mean (5/3, 5/3). Query (2,2): uncentered,
    # its cosines to the bank are 1, .894, .894 -> class 0 nearest. Centered, the query is
    # (1/3,1/3) and the bank (-2/3,-2/3), (4/3,-2/3), (-2/3,4/3): cosines -1, 1/sqrt(10), 1/sqrt(10).
    bank = torch.tensor([[1.0, 1.0], [3.0, 1.0], [1.0, 3.0]])
    labels = torch.tensor([0, 1, 2])
    q = torch.tensor([[2.0, 2.0]])
    plain = KNNHead(bank, labels, 3, k=1)
    assert plain(q).argmax(1).item() == 0
    centered = KNNHead(bank, labels, 3, k=3, temperature=0.5, center=bank.mean(0))
    e = math.exp
    s = 1 / math.sqrt(10)  # cos((1,1), (2,-1)) = 1 / sqrt(10)
    ref = np.array([e(-1 / 0.5), e(s / 0.5), e(s / 0.5)])
    assert centered(q).exp().numpy() == pytest.approx((ref / ref.sum())[None], rel=1e-5)
    assert torch.equal(centered.center, bank.mean(0))

# ------------------------------------------------------------------ objectives shared by victims and attacks


def _encoder(seed: int = 0):
    from benchmark.models import build_classifier

    torch.manual_seed(seed)
    return build_classifier("small-cnn", 3, 4, [0.5] * 3, [0.25] * 3)


def test_loss_scale_is_supcontrast_factor() -> None:
    from benchmark.ssl import loss_scale

    assert loss_scale(0.5, 0.07) == pytest.approx(7.142857, rel=1e-6)  # SimCLR / SupCL at T 0.5
    assert loss_scale(0.2, 0.07) == pytest.approx(2.857143, rel=1e-6)  # MoCo v2 at T 0.2
    assert loss_scale(0.5, None) == 1.0


@pytest.mark.parametrize("kind", ["simclr", "supcon"])
def test_contrastive_methods_scale_their_loss(kind: str) -> None:
    from benchmark.ssl import SimCLRMethod, SupConMethod

    cls = SimCLRMethod if kind == "simclr" else SupConMethod
    x1, x2, y = torch.rand(6, 3, 8, 8), torch.rand(6, 3, 8, 8), torch.tensor([0, 1, 0, 2, 1, 3])
    plain = cls(_encoder(), 16, 8, 0.5).train()
    torch.manual_seed(1)
    scaled = cls(_encoder(), 16, 8, 0.5, scale=0.5 / 0.07).train()
    scaled.load_state_dict(plain.state_dict())
    z1, z2 = plain.project(x1, x2)
    ref = (nt_xent(z1, z2, 0.5) if kind == "simclr" else supcon(z1, z2, y, 0.5)).detach()
    assert float(plain(x1, x2, y).detach()) == pytest.approx(float(ref), rel=1e-6)
    assert float(scaled(x1, x2, y).detach()) == pytest.approx(float(ref) * 0.5 / 0.07, rel=1e-5)


def test_moco_asymmetric_is_one_direction_and_enqueues_one_batch() -> None:
    from benchmark.ssl import MoCoMethod

    x1, x2, y = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8), torch.zeros(4, dtype=torch.long)
    m = MoCoMethod(_encoder(), 16, 8, 0.2, 16, 0.99, 1, torch.Generator().manual_seed(0), symmetric=False, scale=2.0).train()
    bank = m.queue.queue.clone()
    loss = m(x1, x2, y)
    with torch.no_grad():
        q = m.projector(m.encoder.features(x1))
        k = m.key_projector(m.key_encoder.features(x2))
    assert float(loss.detach()) == pytest.approx(2.0 * float(info_nce_queue(q, k, bank, 0.2)), rel=1e-5)
    m.after_step(1, 10)
    assert int(m.queue.ptr) == 4  # B keys per step
    sym = MoCoMethod(_encoder(), 16, 8, 0.2, 16, 0.99, 1, torch.Generator().manual_seed(0), symmetric=True).train()
    sym(x1, x2, y)
    sym.after_step(1, 10)
    assert int(sym.queue.ptr) == 8  # 2B keys per step


def test_byol_paper_momentum_is_two_cp_updates_per_step() -> None:
    """CP's BYOL.forward applies its 0.999 EMA once per direction: two updates per step equal one of 0.999**2."""
    from benchmark.registry import get_registry

    online, a = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    b = momentum_copy(a)
    ema_update(a, online, 0.999)
    ema_update(a, online, 0.999)
    ema_update(b, online, get_registry().get("victim", "byol").Params().target_momentum)
    assert torch.allclose(a.weight, b.weight, atol=1e-7) and torch.allclose(a.bias, b.bias, atol=1e-7)


def test_simsiam_predictor_group() -> None:
    from benchmark.ssl import SimSiamMethod

    for fixed in (False, True):
        groups = SimSiamMethod(_encoder(), 16, 4, fixed).param_groups()
        assert groups[1]["fixed_lr"] is fixed and len(groups[1]["params"]) == 5  # 2 linears (W, b... first has no bias) + BN


# ------------------------------------------------------------------------------------ probe protocol


def test_probe_view_is_a_crop_and_flip() -> None:
    from benchmark.ssl import probe_view

    x = torch.rand(5, 3, 8, 8)
    a = probe_view(x, torch.Generator().manual_seed(3))
    assert a.shape == x.shape and torch.equal(a, probe_view(x, torch.Generator().manual_seed(3)))
    full = probe_view(x, torch.Generator().manual_seed(3), scale=(1.0, 1.0))  # area 1, ratio in 3/4..4/3
    assert full.shape == x.shape and 0 <= float(full.min()) and float(full.max()) <= 1


def test_fit_linear_accepts_a_feature_source_per_epoch() -> None:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(40) % 2
    feats = torch.randn(40, 4, generator=g) + 2 * torch.nn.functional.one_hot(y, 4).float()
    recipe = ProbeRecipe(epochs=5, batch_size=8, lr=0.1)
    torch.manual_seed(0)
    fixed = fit_linear(feats, y, 2, recipe, torch.Generator().manual_seed(1))
    seen: list[int] = []
    torch.manual_seed(0)
    from_source = fit_linear(lambda e: (seen.append(e), feats)[1], y, 2, recipe, torch.Generator().manual_seed(1))
    assert seen == [0, 1, 2, 3, 4]  # one call per epoch
    assert torch.equal(fixed.weight, from_source.weight) and torch.equal(fixed.bias, from_source.bias)


def test_probe_views_fresh_or_cycled(tiny, monkeypatch) -> None:
    """Faithful probe: a fresh augmented view per epoch; ``views: k``: k views extracted once, cycled."""
    from benchmark.models import build_classifier
    from benchmark.ssl import probe

    mean, std = tiny.mean_std()
    model = build_classifier("small-cnn", 3, tiny.num_classes, mean, std)
    calls: list[bool] = []
    real = probe.extract_features

    def counting(*a, **k):
        calls.append(k.get("augment") is not None)
        return real(*a, **k)

    monkeypatch.setattr(probe, "extract_features", counting)
    src = probe.feature_source(model, tiny, RunContext(), ProbeRecipe(epochs=6))
    views = [src(e) for e in range(6)]
    assert len(calls) == 6 and all(calls) and not torch.equal(views[0], views[1])
    calls.clear()
    src = probe.feature_source(model, tiny, RunContext(), ProbeRecipe(epochs=6, views=2))
    assert len(calls) == 2  # extracted once
    assert torch.equal(src(0), src(2)) and torch.equal(src(1), src(5)) and not torch.equal(src(0), src(1))
    calls.clear()
    plain = probe.feature_source(model, tiny, RunContext(), ProbeRecipe(augment=False))
    assert calls == [False] and torch.equal(plain, real(model, tiny, RunContext()))
