from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from torch import nn

from benchmark.config import parse_matrix, resolve
from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import RunContext
from benchmark.registry import get_registry
from benchmark.runner import Runner
from benchmark.trace import EpochEvent
from plugins.metrics.unlearnable_distance import (
    KEYS,
    EpochSnapshots,
    PassCount,
    ScoringLoader,
    Sharpness,
    UnlearnableDistance,
    layer_sharpness,
    learnability_threshold,
    learnable_layers,
    model_sharpness,
    project_relative,
    scored_layers,
    two_means_threshold,
    unlearnable_distance,
)
from plugins.victims.sl import SL

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


# ------------------------------------------------------------------------------ the listener


def test_snapshots_copy_the_scored_epochs_and_a_new_loop_replaces_the_old():
    model = nn.Linear(2, 2)
    snaps = EpochSnapshots(every=2)
    for e in range(1, 6):
        with torch.no_grad():
            model.weight.fill_(float(e))
        snaps(EpochEvent("supervised", e, 5, loss=1.0 / e, model=model))
        snaps(EpochEvent("pretrain", e, 5, loss=0.0, model=model))  # other phases are ignored
    assert snaps.epochs == [2, 4, 5] and snaps.losses == [0.5, 0.25, 0.2]
    assert [s["weight"][0, 0].item() for s in snaps.states] == [2.0, 4.0, 5.0]  # copies, not the live weights
    snaps(EpochEvent("supervised", 1, 2, loss=0.9, model=model))
    snaps(EpochEvent("supervised", 2, 2, loss=0.8, model=model))
    assert snaps.epochs == [2] and len(snaps) == 1


def test_snapshots_beyond_the_memory_budget_go_to_disk_and_come_back_equal():
    model = nn.Linear(4, 3)  # 15 floats: 60 bytes per snapshot
    snaps = EpochSnapshots(every=1, memory_bytes=130)
    for e in range(1, 5):
        with torch.no_grad():
            model.weight.fill_(float(e))
        snaps(EpochEvent("supervised", e, 4, loss=1.0, model=model))
    assert [type(s).__name__ for s in snaps.states][:2] == ["dict", "dict"] and all(not isinstance(s, dict) for s in snaps.states[2:])
    assert [snaps.state(i)["weight"][0, 0].item() for i in range(4)] == [1.0, 2.0, 3.0, 4.0]
    assert snaps.state(3)["bias"].shape == (3,)


# ----------------------------------------------------------------------------- in the runner


def _runner(tmp_path, name: str, **over) -> Runner:
    m = {
        "name": "ud",
        "dataset": {"name": "digits", "subset": 200},
        "profile": "smoke",
        "seeds": [0],
        "attacks": ["clean", "random-noise"],
        "victims": ["sl"],
        "defenses": ["none"],
        "metrics": ["accuracy", "unlearnable-distance"],
        **over,
    }
    return Runner(resolve(parse_matrix(m), get_registry()), tmp_path / name, log=lambda s: None, progress=False)


@pytest.fixture
def fits(monkeypatch):
    """Counts every training of the ``sl`` victim."""
    calls: list[int] = []
    fit = SL.fit

    def counting(self, train, ctx, hooks):
        calls.append(ctx.seed)
        return fit(self, train, ctx, hooks)

    monkeypatch.setattr(SL, "fit", counting)
    return calls


def _references(r: Runner) -> list[tuple[dict, dict[str, torch.Tensor]]]:
    out = []
    for meta_path in sorted((r.root / "artifacts").glob("*/meta.json")):
        meta = json.loads(meta_path.read_text())
        if meta["spec"]["kind"] == "ud-clean-reference":
            out.append((meta, torch.load(meta_path.parent / "data.pt", weights_only=True)))
    return out


def test_one_clean_reference_per_victim_defense_seed_trained_once_and_equal_to_the_clean_cell(tmp_path, fits):
    # no clean cell: the metric trains the clean run itself, once per (victim, defense, seed)
    a = _runner(tmp_path, "a", attacks=["random-noise", "em"], defenses=["none", "iss-bdr"], seeds=[0, 1])
    assert a.run().exit_code == 0
    assert len(fits) == 8 + 4  # 8 cells + one reference per (defense, seed), not one per cell
    refs = _references(a)
    assert len(refs) == 4 and {m["meta"]["source"] for m, _ in refs} == {"trained by the metric"}
    # the matrix's own clean cell fills the same reference instead of training it again
    fits.clear()
    b = _runner(tmp_path, "b", attacks=["clean", "random-noise", "em"], defenses=["none", "iss-bdr"], seeds=[0, 1])
    assert b.run().exit_code == 0
    assert len(fits) == 12  # the cells only
    refs_b = _references(b)
    assert {m["meta"]["source"] for m, _ in refs_b} == {"the clean cell's run"}
    by_key_a = {m["spec"]["defense"]["name"] + str(m["spec"]["seed"]): t for m, t in refs}
    for m, t in refs_b:  # same spec, same numbers: the metric's clean run is the runner's clean cell
        ta = by_key_a[m["spec"]["defense"]["name"] + str(m["spec"]["seed"])]
        assert torch.equal(t["s_plus"], ta["s_plus"]) and torch.equal(t["s_minus"], ta["s_minus"])
    recs_a = {(x["attack"], x["defense"], x["seed"]): x["metrics"] for x in a.store.records()}
    recs_b = {(x["attack"], x["defense"], x["seed"]): x["metrics"] for x in b.store.records()}
    for k, v in recs_a.items():
        assert recs_b[k]["ud"] == v["ud"] or (math.isnan(v["ud"]) and math.isnan(recs_b[k]["ud"]))
    for d in ("none", "iss-bdr"):
        for seed in (0, 1):
            assert recs_b[("clean", d, seed)]["ud"] == 1.0  # exactly, by construction
            assert recs_b[("clean", d, seed)]["ud_lp"] == recs_b[("clean", d, seed)]["ud_lp_clean"]


def test_the_record_holds_numbers_only(tmp_path):
    r = _runner(tmp_path, "res", attacks=["random-noise"])
    assert r.run().exit_code == 0
    (rec,) = r.store.records()
    assert set(rec["metrics"]) == {"accuracy", *KEYS}
    assert all(type(v) is float for v in rec["metrics"].values())
    text = json.dumps(rec)
    assert "tensor" not in text.lower() and len(text) < 20_000
    assert rec["metrics"]["ud_lp_clean"] > 0 and rec["metrics"]["ud_beta"] > 0


def test_params_and_profiles():
    p = UnlearnableDistance.Params()
    assert (p.eps, p.iterations, p.lr_ascent, p.lr_descent, p.every, p.augment, p.reference_loss) == (0.05, 10, 0.1, 0.1, 1, True, "running")
    assert p.scoring_images is None and p.steps is None  # the faithful procedure is the default
    with pytest.raises(ValidationError):
        UnlearnableDistance.Params(every=0)
