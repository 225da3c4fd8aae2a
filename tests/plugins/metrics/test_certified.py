from __future__ import annotations

import copy
import math

import pytest
import torch
from scipy.stats import binom, norm

from benchmark.config import parse_matrix, resolve
from benchmark.data.dataset import DataSplits
from benchmark.interfaces import CellArtifacts, Poison, RunContext
from benchmark.models import build_classifier
from benchmark.params import resolve_params
from benchmark.registry import get_registry
from benchmark.report.leaderboard import render
from benchmark.runner import Runner
from benchmark.store import ArtifactCache
from benchmark.training import SGDRecipe, accuracy, train_supervised
from benchmark.weight_noise import ROBUST_SURROGATE_LEVELS
from plugins.defenses.none import NoDefense
from plugins.metrics.certified import (
    OFFICIAL_ETAS,
    CertifiedLearnability,
    binom_cdf,
    certificate_rank,
    certified_radius,
    certify,
    noisy_accuracies,
    smoothed_quantile,
)
from plugins.victims.sl import SL
from tests.conftest import tiny_dataset

# ------------------------------------------------------------------------------ the certificate


def test_smoothed_quantile_and_rank_match_the_spec_example():
    # N=1000, q=0.9, sigma=0.25, eta=0.1: q_bar = Phi(1.28155 + 0.4) = 0.95367, k_u = 969
    assert smoothed_quantile(0.9, 0.1, 0.25) == pytest.approx(0.953672, abs=1e-6)
    assert certificate_rank(1000, 0.9, 0.1, 0.25) == 969
    assert smoothed_quantile(0.9, 0.0, 0.25) == pytest.approx(0.9)


@pytest.mark.parametrize(
    "n, sigma, q, largest",
    [(1000, 0.25, 0.9, 0.3), (1000, 0.25, 0.7, 0.5), (1000, 0.25, 0.5, 0.6), (1000, 0.1, 0.9, 0.1), (10000, 0.25, 0.9, 0.5)],
)
def test_largest_certified_radius_of_the_grid_matches_the_spec_table(n, sigma, q, largest):
    # certify.py's grid steps by 0.1 from 0.1 up: the table's radius certifies, the next one abstains
    assert certificate_rank(n, q, largest, sigma) is not None
    assert certificate_rank(n, q, round(largest + 0.1, 3), sigma) is None


def scipy_rank(n: int, q: float, eta: float, sigma: float, c: float = 0.99) -> int | None:
    """certify.py's ``certify`` with scipy, written out independently: the 1-based rank or None."""
    qb = norm.cdf(norm.ppf(q) + eta / sigma)
    for k in range(math.ceil(qb * n), n + 1):
        if binom.cdf(k - 1, n, qb) > c:
            return k
    return None


GRID = [
    (n, q, sigma, eta)
    for n in (20, 100, 200, 1000)
    for q in (0.5, 0.7, 0.9)
    for sigma in (0.05, 0.25)
    for eta in (0.0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
]


def test_rank_matches_scipy_over_a_grid_of_n_q_sigma_eta():
    ranks = [(certificate_rank(n, q, eta, s), scipy_rank(n, q, eta, s)) for n, q, s, eta in GRID]
    assert [a for a, _ in ranks] == [b for _, b in ranks]
    assert any(r is None for r, _ in ranks)  # the grid covers abstentions
    assert sum(1 for (r, _), (n, *_rest) in zip(ranks, GRID) if r is not None and r < n) > 100  # and k_u < N


@pytest.mark.parametrize("n, q, sigma", [(100, 0.9, 0.25), (200, 0.9, 0.05), (1000, 0.9, 0.25), (1000, 0.5, 0.1), (50, 0.7, 0.01)])
def test_abstention_edge_matches_scipy(n, q, sigma):
    r = certified_radius(n, q, sigma)
    assert r > 0
    below, above = r - 1e-3 * sigma, r + 1e-3 * sigma
    assert certificate_rank(n, q, below, sigma) == scipy_rank(n, q, below, sigma) is not None
    assert certificate_rank(n, q, above, sigma) is None and scipy_rank(n, q, above, sigma) is None
    assert scipy_rank(n, q, below, sigma) <= n  # at the edge the rank is N: the best draw


def test_rank_below_n_and_changing_with_eta_where_the_profiles_certify():
    for profile in ("quick", "smoke"):
        p = resolve_params(CertifiedLearnability, profile, {})
        ranks = [scipy_rank(p.draws, p.q, eta, p.sigma, p.confidence) for eta in p.etas]
        assert all(k is not None and k < p.draws for k in ranks), (profile, ranks)
        assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks), (profile, ranks)  # a different order statistic per eta
    paper = CertifiedLearnability.Params()
    assert paper.etas == OFFICIAL_ETAS
    ranks = {eta: scipy_rank(paper.draws, paper.q, eta, paper.sigma) for eta in paper.etas}
    assert ranks[0.1] == 969 and ranks[0.3] == 1000 and ranks[0.4] is None  # the spec's table
    assert 0.3 <= certified_radius(paper.draws, paper.q, paper.sigma) < 0.4


def test_binomial_cdf_against_direct_sums():
    for n, p in [(7, 0.3), (20, 0.9), (1, 0.5)]:
        direct = [sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1)) for k in range(n + 1)]
        assert binom_cdf(n, p).tolist() == pytest.approx(direct, abs=1e-12)


def test_certify_picks_the_rank_th_smallest_or_abstains():
    accs = torch.tensor([0.5, 0.1, 0.4, 0.2, 0.3] * 200)  # 1000 draws
    k = certificate_rank(1000, 0.9, 0.1, 0.25)
    assert certify(accs, 0.9, 0.1, 0.25) == pytest.approx(torch.sort(accs.double()).values[k - 1].item())
    assert certify(accs, 0.9, 0.1, 0.25) == pytest.approx(0.5)  # the 969th of 1000 is in the top fifth
    assert math.isnan(certify(accs[:10], 0.9, 0.1, 0.25))  # 10 draws certify nothing at q = 0.9
    assert math.isnan(certify(accs, 0.9, 0.1, 0.0))  # no smoothing: no radius


# ---------------------------------------------------------------------------------- the draws


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    data = tiny_dataset(n=64)
    model = build_classifier("small-cnn", 3, 4, *data.mean_std(), torch.device("cpu"))
    train_supervised(model, data, SGDRecipe(epochs=3, batch_size=16), RunContext(), augment=None)
    return model, tiny_dataset(n=48, seed=1)


def test_zero_sigma_draws_equal_the_plain_accuracy_and_the_model_is_untouched(trained):
    model, test = trained
    before = copy.deepcopy(model.state_dict())
    accs = noisy_accuracies(model, test, RunContext(), sigma=0.0, draws=3, seed=0)
    assert accs.tolist() == pytest.approx([accuracy(model, test, RunContext())] * 3)
    noisy_accuracies(model, test, RunContext(), sigma=0.5, draws=2, seed=0)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # bit-exact, buffers included


def test_draws_are_reproducible_per_seed(trained):
    model, test = trained
    a = noisy_accuracies(model, test, RunContext(), sigma=0.3, draws=6, seed=1)
    b = noisy_accuracies(model, test, RunContext(), sigma=0.3, draws=6, seed=1)
    c = noisy_accuracies(model, test, RunContext(), sigma=0.3, draws=6, seed=2)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_draws_equal_a_naive_per_draw_loop(trained):
    """certify.py's way: add sigma * randn to every named parameter in order, evaluate, restore."""
    model, test = trained
    sigma, draws = 0.2, 4
    gen = torch.Generator().manual_seed(5)
    expected = []
    for _ in range(draws):
        m = copy.deepcopy(model).eval()
        with torch.no_grad():
            for _, p in m.named_parameters():
                p.add_(torch.randn(p.shape, generator=gen) * sigma)
        expected.append(accuracy(m, test, RunContext(), batch_size=7))
    got = noisy_accuracies(model, test, RunContext(), sigma=sigma, draws=draws, seed=5)
    assert got.tolist() == pytest.approx(expected, abs=1 / len(test) + 1e-9)  # BN folding may flip one tie
    assert len(set(got.tolist())) > 1  # the noise does change the model


# ------------------------------------------------------------------------------- as a plugin


def test_params_profiles_and_validation():
    p = CertifiedLearnability.Params()
    assert (p.draws, p.sigma, p.q, p.confidence) == (1000, 0.25, 0.9, 0.99)
    with pytest.raises(ValueError):
        CertifiedLearnability.Params(etas=())


def test_runs_in_a_matrix_and_reaches_the_leaderboard(tmp_path):
    m = parse_matrix(
        {
            "name": "t",
            "dataset": {"name": "digits", "subset": 200},
            "profile": "smoke",
            "attacks": ["clean"],
            "victims": ["sl"],
            "metrics": ["accuracy", {"name": "certified-learnability", "params": {"draws": 60, "sigma": 0.02, "q": 0.9, "etas": [0.001, 1.0]}}],
        }
    )
    r = Runner(resolve(m, get_registry()), tmp_path / "res", log=lambda s: None, progress=False)
    assert r.run().ok == 1
    rec = r.store.records()[0]
    met = rec["metrics"]
    assert set(met) == {"accuracy", "surrogate_acc", "noisy_acc_mean", "noisy_acc_q", "certified@0.001", "certified@1"}
    assert 0 <= met["noisy_acc_mean"] <= 100 and 0 <= met["noisy_acc_q"] <= 100
    assert met["certified@0.001"] >= met["noisy_acc_q"] - 1e-9  # a high order statistic
    assert math.isnan(met["certified@1"])  # 60 draws cannot certify radius 50 sigma
    assert rec["curves"] and {e["phase"] for e in rec["curves"]} == {"supervised"}  # the surrogate's epochs are not the victim's
    md = render(r.store.records(), "res")
    assert "`certified@0.001`" in md and "`noisy_acc_mean`" in md
    assert "| abstain" in md  # certified@1: never shown as 0 or as missing


# ------------------------------------------------------------------------------ the surrogate


def _cell(train, test, poison=None):
    model = build_classifier("small-cnn", 3, train.num_classes, [0.5] * 3, [0.25] * 3).eval()
    return CellArtifacts(model, DataSplits(train, test, None), train, poison or Poison(x=train.x), SL(), NoDefense())


def _metric(**kw):
    return CertifiedLearnability(resolve_params(CertifiedLearnability, "smoke", {"draws": 8, "test_images": None, **kw}))


def test_surrogate_is_cached_by_data_and_shared_and_leaves_the_global_rng_alone(tmp_path):
    train, test = tiny_dataset(n=48), tiny_dataset(n=24, seed=1)
    logs: list[str] = []
    ctx = RunContext(cache=ArtifactCache(tmp_path), log=logs.append)
    metric = _metric()
    cell = _cell(train, test)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = metric.compute(cell, ctx)
    assert torch.equal(torch.get_rng_state(), state)
    b = metric.compute(_cell(train, test), ctx)  # another victim or defense of the same data
    assert a == b or all(math.isnan(v) and math.isnan(b[k]) or v == b[k] for k, v in a.items())
    assert [m.split(": ")[1] for m in logs if m.startswith("certification surrogate")] == ["trained", "cached"]
    assert len(list((tmp_path / "artifacts").iterdir())) == 2  # the surrogate and its accuracies
    other = train.with_images(255 - train.x)  # other training data: another surrogate
    metric.compute(_cell(other, test), ctx)
    assert logs[-1].endswith("trained")
    fresh = metric.compute(_cell(train, test), RunContext())  # no cache: the same numbers
    assert all(math.isnan(v) and math.isnan(fresh[k]) or v == fresh[k] for k, v in a.items())


def test_surrogate_depends_on_the_seed_and_is_noise_trained(tmp_path):
    train = tiny_dataset(n=48)
    metric = _metric(train_sigma=0.1, train_sigma_step=0.05, train_draws=2)
    m0, spec0 = metric.surrogate(train, RunContext(seed=0))
    m1, spec1 = metric.surrogate(train, RunContext(seed=1))
    assert spec0["levels"] == pytest.approx([0.0, 0.05, 0.1]) and spec0["draws"] == 2
    assert spec0["seed"] != spec1["seed"]
    assert any(not torch.equal(a, b) for a, b in zip(m0.state_dict().values(), m1.state_dict().values()))


def test_online_surrogate_is_certified_under_its_own_keys():
    train, test = tiny_dataset(n=48), tiny_dataset(n=24, seed=1)
    online = build_classifier("small-cnn", 3, 4, [0.0] * 3, [1.0] * 3)
    train_supervised(online, train, SGDRecipe(epochs=2, batch_size=16), RunContext(), augment=None)
    robust = Poison(x=train.x, surrogate=online, meta={ROBUST_SURROGATE_LEVELS: [0.0, 0.01]})  # as PUE releases it
    out = _metric().compute(_cell(train, test, robust), RunContext())
    plain = {k for k in out if not k.startswith("online_")}
    assert {"surrogate_acc", "noisy_acc_mean", "noisy_acc_q"} <= plain
    assert {f"online_{k}" for k in plain} == set(out) - plain
    assert out["online_surrogate_acc"] == pytest.approx(100 * accuracy(online, test, RunContext()))
    assert "online_surrogate_acc" not in _metric(online=False).compute(_cell(train, test, robust), RunContext())
    # a reference model trained without weight noise (TAP's, AAP's) is not certified as the attack's
    assert set(_metric().compute(_cell(train, test, Poison(x=train.x, surrogate=online)), RunContext())) == plain
