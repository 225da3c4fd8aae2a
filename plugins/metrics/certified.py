"""Certified (q, eta)-learnability (Wang, Xue, Li, Camtepe & Zhu, "Provably Unlearnable Data
Examples", NDSS 2025; NeuralSec/certified-data-learnability ``certify.py``)."""

from __future__ import annotations

import copy
import math
from statistics import NormalDist

import torch
from pydantic import Field, PositiveFloat, model_validator
from torch import nn

from benchmark.data.dataset import ImageDataset
from benchmark.data.split import stratified_fraction
from benchmark.folding import fold_batchnorm
from benchmark.interfaces import CellArtifacts, Metric, RunContext
from benchmark.params import Params
from benchmark.training import autocast, batches, eval_batch_size, resident, to_model

def smoothed_quantile(q: float, eta: float, sigma: float) -> float:
    """``q_bar = Phi(Phi^-1(q) + eta / sigma)``: the quantile level of the smoothed accuracy at
    ``theta_hat`` that bounds the ``q``-quantile anywhere in the L2 ball of radius ``eta``."""
    if sigma <= 0:
        return 1.0 if eta > 0 else q
    n = NormalDist()
    return n.cdf(n.inv_cdf(q) + eta / sigma)


def binom_cdf(n: int, p: float) -> torch.Tensor:
    """``[P(Bin(n, p) <= k) for k = 0..n]`` in float64 (log-space pmf, then a cumulative sum)."""
    k = torch.arange(n + 1, dtype=torch.float64)
    if p <= 0:
        return torch.ones(n + 1, dtype=torch.float64)
    if p >= 1:
        return (k >= n).double()
    logpmf = (
        math.lgamma(n + 1) - torch.lgamma(k + 1) - torch.lgamma(n - k + 1) + k * math.log(p) + (n - k) * math.log1p(-p)
    )
    return torch.cumsum(torch.exp(logpmf), 0).clamp_(max=1.0)


def certificate_rank(n: int, q: float, eta: float, sigma: float, confidence: float = 0.99) -> int | None:
    """``k_u``: the 1-based rank of the order statistic that upper-bounds, with probability
    ``confidence``, the ``q``-quantile of accuracy for every parameter vector within ``eta`` of the
    trained one: ``min{k in [ceil(q_bar n), n] : BinomCDF(k - 1; n, q_bar) > confidence}``.
    ``None`` when no such ``k`` exists (the certificate abstains)."""
    qb = smoothed_quantile(q, eta, sigma)
    if qb >= 1.0:
        return None
    cdf = binom_cdf(n, qb)
    for k in range(max(1, math.ceil(qb * n)), n + 1):
        if cdf[k - 1] > confidence:
            return k
    return None


def certify(accuracies: torch.Tensor, q: float, eta: float, sigma: float, confidence: float = 0.99) -> float:
    """The certified (q, eta)-learnability from ``accuracies`` ``[N]`` of ``N`` noise draws: the
    ``k_u``-th smallest accuracy, or NaN where the certificate abstains."""
    k = certificate_rank(len(accuracies), q, eta, sigma, confidence)
    if k is None:
        return math.nan
    return float(torch.sort(accuracies.double()).values[k - 1])


@torch.no_grad()
def noisy_accuracies(
    model: nn.Module, data: ImageDataset, ctx: RunContext, *, sigma: float, draws: int, seed: int, batch_size: int | None = None
) -> torch.Tensor:
    """Top-1 accuracies ``[draws]`` in [0, 1] on ``data`` of ``model`` with ``sigma * N(0, I)`` added
    to every parameter (never to buffers: BatchNorm uses its running statistics, eval mode).

    Each draw starts from an exact copy of the trained parameters (nothing drifts over many draws);
    the noise comes from a generator on ``ctx.device`` seeded with ``seed`` (reproducible per
    device type). ``model`` itself is not modified. Each noisy model is evaluated with its BatchNorm
    folded into the convolutions (exact in eval mode; 2x faster on a CPU), the test images stay on an
    accelerator, correct predictions are counted on the device and come back once, after the last
    draw. ``batch_size`` None: 1024 on CUDA, 256 on a CPU (cache-sized activations: 2x faster there).
    """
    dev = ctx.device
    bs = batch_size or eval_batch_size(dev)
    net = copy.deepcopy(model).eval().requires_grad_(False)
    params = [p for _, p in net.named_parameters()]
    trained = [p.detach().clone() for p in params]
    data = resident(data, dev)
    y = data.y.to(dev)
    gen = torch.Generator(device=dev).manual_seed(seed)
    correct = torch.zeros(draws, dtype=torch.long, device=dev)
    for j in range(draws):
        for p, p0 in zip(params, trained):
            p.copy_(p0).add_(torch.randn(p.shape, generator=gen, device=dev, dtype=p.dtype), alpha=sigma)
        noisy = fold_batchnorm(net)
        for idx in batches(len(data), bs, None, False, data.x.device):
            with autocast(ctx):
                logits = noisy(to_model(data.float_batch(idx, dev)))
            correct[j] += (logits.argmax(1) == y[idx]).sum()
    return correct.cpu().double() / len(data)


class CertifiedLearnability(Metric):
    """Certified (q, eta)-learnability of a cell's trained model (Wang et al., "Provably Unlearnable
    Data Examples", NDSS 2025): with probability ``confidence`` over ``draws`` Monte-Carlo draws, an
    upper bound on the ``q``-quantile of clean test accuracy of ``theta + N(0, sigma^2 I)`` for every
    parameter vector ``theta`` within L2 distance ``eta`` of the trained parameters (parametric
    randomized smoothing, as ``certify.py``). Lower = the training data is more provably unlearnable.

    It is a property of (training data, training procedure, sigma), not of the data alone, and it
    covers only the L2 ball of radius ``eta`` in parameter space around the model the cell trained.
    Noise goes on every ``named_parameters()`` tensor (conv, linear, BN affine), absolute ``sigma``;
    BN running statistics are untouched (eval mode).

    Input: the cell's model and the clean test split, uint8 ``[N, C, H, W]``. Output (all in %, as
    ``certify.py`` logs them): ``noisy_acc_mean`` (always read it: an ordinarily trained model at the
    paper's absolute ``sigma`` = 0.25 is near chance for clean and poisoned data alike; PUE trains its
    surrogates with weight noise to stay accurate), ``noisy_acc_q`` (empirical ``q``-quantile) and
    ``certified@<eta>`` for each of ``etas`` (NaN where the certificate abstains: too few draws for
    that radius). Deviation from ``certify.py``: accuracy on the whole test set, not batches of 512
    with ``drop_last`` (9,728 of CIFAR-10's 10,000 images).
    """

    name = "certified-learnability"
    unit = "percent"

    class Params(Params):
        draws: int = Field(1000, ge=1)  # N Monte-Carlo draws
        sigma: float = Field(0.25, ge=0)  # absolute std of the parameter noise
        q: float = Field(0.9, gt=0, lt=1)
        confidence: float = Field(0.99, gt=0, lt=1)
        etas: tuple[PositiveFloat, ...] = (0.05, 0.1, 0.3)  # radii to report (certify.py sweeps 0.001..2.0)
        test_images: int | None = Field(None, ge=1)  # class-balanced test subset; None: the whole test split
        batch_size: int | None = Field(None, ge=1)  # None: 1024 on CUDA, 256 on a CPU
        seed: int = Field(0, ge=0, le=2**32 - 1)  # noise stream (combined with the run's seed)

        @model_validator(mode="after")
        def _etas(self) -> CertifiedLearnability.Params:
            if not self.etas or any(e < 0 for e in self.etas):
                raise ValueError("etas must be a non-empty list of radii >= 0")
            return self

    # Small N certifies only small radii (N=100, q=0.9: eta < 0.41 sigma; N=1000: eta < 1.3 sigma),
    # and the quick/smoke models are small CNNs that an absolute sigma of 0.25 reduces to chance.
    profiles = {
        "quick": {"draws": 100, "sigma": 0.01, "etas": (0.001, 0.002, 0.004), "test_images": 1000},
        "smoke": {"draws": 4, "sigma": 0.01, "etas": (0.001,), "test_images": 256},
    }

    def compute(self, cell: CellArtifacts, ctx: RunContext) -> dict[str, float]:
        p = self.params
        test = cell.splits.test
        if p.test_images is not None and p.test_images < len(test):
            test = test.select(stratified_fraction(test.y, p.test_images / len(test), ctx.seed))
        accs = noisy_accuracies(
            cell.model, test, ctx, sigma=p.sigma, draws=p.draws, seed=ctx.seed * 1_000_003 + p.seed, batch_size=p.batch_size
        )
        out = {
            "noisy_acc_mean": 100 * float(accs.mean()),
            "noisy_acc_q": 100 * float(torch.quantile(accs, p.q)),
        }
        for eta in p.etas:
            out[f"certified@{eta:g}"] = 100 * certify(accs, p.q, eta, p.sigma, p.confidence)
        return out


PLUGINS = [CertifiedLearnability]
