from __future__ import annotations

import copy
import math

import pytest
import torch

from benchmark.config import parse_matrix, resolve
from benchmark.interfaces import RunContext
from benchmark.models import build_classifier
from benchmark.registry import get_registry
from benchmark.report.leaderboard import render
from benchmark.runner import Runner
from benchmark.training import SGDRecipe, accuracy, train_supervised
from plugins.metrics.certified import (
    CertifiedLearnability,
    binom_cdf,
    certificate_rank,
    certify,
    noisy_accuracies,
    smoothed_quantile,
)
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
            "metrics": ["accuracy", {"name": "certified-learnability", "params": {"draws": 60, "sigma": 0.02, "etas": [0.001, 1.0]}}],
        }
    )
    r = Runner(resolve(m, get_registry()), tmp_path / "res", log=lambda s: None, progress=False)
    assert r.run().ok == 1
    rec = r.store.records()[0]
    met = rec["metrics"]
    assert set(met) == {"accuracy", "noisy_acc_mean", "noisy_acc_q", "certified@0.001", "certified@1"}
    assert 0 <= met["noisy_acc_mean"] <= 100 and 0 <= met["noisy_acc_q"] <= 100
    assert met["certified@0.001"] >= met["noisy_acc_q"] - 1e-9  # a high order statistic
    assert math.isnan(met["certified@1"])  # 60 draws cannot certify radius 50 sigma
    md = render(r.store.records(), "res")
    assert "`certified@0.001`" in md and "`noisy_acc_mean`" in md
