"""Certified (q, eta)-learnability (Wang, Xue, Li, Camtepe & Zhu, "Provably Unlearnable Data
Examples", NDSS 2025; NeuralSec/certified-data-learnability ``certify.py``) of a noise-robust
surrogate trained on the cell's training data."""

from __future__ import annotations

import copy
import dataclasses
import math
from statistics import NormalDist
from typing import Any

import torch
from pydantic import Field, PositiveFloat, model_validator
from torch import nn

from benchmark.augment import crop_flip
from benchmark.data.dataset import ImageDataset
from benchmark.data.split import stratified_fraction
from benchmark.fingerprint import data_fingerprint, model_fingerprint
from benchmark.folding import fold_batchnorm
from benchmark.interfaces import CellArtifacts, Metric, RunContext
from benchmark.models import build_classifier
from benchmark.params import Params
from benchmark.trace import Trace
from benchmark.training import SGDRecipe, accuracy, autocast, batches, eval_batch_size, resident, to_model
from benchmark.weight_noise import (
    ROBUST_SURROGATE_LEVELS,
    add_noise_,
    device_generator,
    noise_levels,
    parameters,
    restore_,
    snapshot,
    train_robust,
)

#: certify.py's radius grid
OFFICIAL_ETAS = (
    0.001, 0.005, 0.01, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0,
    1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0,
)  # fmt: skip


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
    net = copy.deepcopy(model).to(dev).eval().requires_grad_(False)
    params = parameters(net)
    trained = snapshot(net)
    data = resident(data, dev)
    y = data.y.to(dev)
    gen = device_generator(dev, seed)
    correct = torch.zeros(draws, dtype=torch.long, device=dev)
    for j in range(draws):
        restore_(net, trained)
        add_noise_(params, sigma, gen)
        noisy = fold_batchnorm(net)
        for idx in batches(len(data), bs, None, False, data.x.device):
            with autocast(ctx):
                logits = noisy(to_model(data.float_batch(idx, dev)))
            correct[j] += (logits.argmax(1) == y[idx]).sum()
    return correct.cpu().double() / len(data)


def certified_radius(n: int, q: float, sigma: float, confidence: float = 0.99, resolution: float = 1e-4) -> float:
    """The largest ``eta`` (to ``resolution * sigma``) at which ``n`` draws still certify: the
    certificate abstains beyond it. Depends on ``(n, q, sigma, confidence)`` only, not on the data."""
    if certificate_rank(n, q, 0.0, sigma, confidence) is None:
        return 0.0
    lo, hi = 0.0, 1.0
    while certificate_rank(n, q, hi * sigma, sigma, confidence) is not None:
        lo, hi = hi, 2 * hi
    while hi - lo > resolution:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if certificate_rank(n, q, mid * sigma, sigma, confidence) is not None else (lo, mid)
    return lo * sigma


class CertifiedLearnability(Metric):
    """Certified (q, eta)-learnability of the cell's training data (Wang et al., "Provably
    Unlearnable Data Examples", NDSS 2025; NeuralSec/certified-data-learnability ``certify.py``,
    ``trainer.py``): with probability ``confidence`` over ``draws`` Monte-Carlo draws, an upper bound
    on the ``q``-quantile of clean test accuracy of ``theta + N(0, sigma^2 I)`` for every parameter
    vector ``theta`` within L2 distance ``eta`` of a surrogate ``theta_hat`` trained on the data
    (parametric randomized smoothing). Lower = the data are more provably unlearnable.

    **What is certified.** A *certification surrogate* trained on ``cell.train`` (the released data
    after the cell's data-stage defense) with PUE's noise-robust recipe, the same for every attack
    so rows compare: ``surrogate_arch`` on [0, 1] inputs (no normalization, as the official
    models), SGD lr ``surrogate_lr``, momentum 0.9, wd 5e-4, grad-clip 5, batch
    ``surrogate_batch_size``, cosine over ``surrogate_epochs``, random crop (pad 4) + flip
    (``configs/cifar10/resnet18.yaml``), every batch trained as ``Trainer.train_batch_robust``:
    for each noise level 0, ``train_sigma_step``, ..., ``train_sigma`` one optimizer step on the
    gradient averaged over ``train_draws`` weight draws (:mod:`benchmark.weight_noise`). It is a
    cached artifact keyed by the training data's content, the recipe and the seed (the cell seed
    and ``seed``): every victim and model-stage defense of an attack shares it; the N accuracies
    are cached by the surrogate's weights, the test images, ``sigma``, ``draws`` and the seed.
    Where the attack released its own noise-robust online surrogate (``cell.poison.surrogate``
    with the weight-noise levels it was trained with in the poison's meta: PUE's), it is certified
    as well, reported under ``online_*`` keys (``online: false`` skips it). A surrogate trained
    without weight noise (TAP's and AAP's reference models, trained on clean data) is not: its
    certificate would be a clean model's, under a label that reads as the attack's.

    The certificate covers only the L2 ball of radius ``eta`` around the surrogate's parameters, and
    it is a property of (training data, surrogate recipe, sigma). How far it reaches is set by
    ``(draws, q, sigma, confidence)`` alone (:func:`certified_radius`); beyond that it abstains
    (NaN, shown as "abstain"). At ``k_u = draws`` the certificate is just the best draw.

    Noise goes on every ``named_parameters()`` tensor (absolute ``sigma``), BN running statistics
    untouched (eval mode). Input: ``cell.train`` and the clean test split, uint8 ``[N, C, H, W]``.
    Output, all in %: ``surrogate_acc`` (noiseless), ``noisy_acc_mean`` (always read it),
    ``noisy_acc_q`` (empirical ``q``-quantile), ``certified@<eta>`` per radius (NaN = abstain), and
    the same with the ``online_`` prefix. Deviations from ``certify.py``: accuracy over the whole
    test split (or ``test_images``), not per-batch means over batches of 512 with ``drop_last``;
    the surrogate's level-0 draws are computed once (:func:`benchmark.weight_noise.robust_step`);
    the lr schedule advances per batch.
    """

    name = "certified-learnability"
    unit = "percent"
    #: points, as accuracy's: a recomputation on another CPU at 2 threads moved every value by <= 0.7
    #: (benchmarks/README.md, "Audit tolerance")
    audit_tolerance = {"*": 3.0}
    version = "2"

    class Params(Params):
        draws: int = Field(1000, ge=1)  # N: Monte-Carlo draws of the parameter noise
        sigma: float = Field(0.25, ge=0)  # absolute std of the Gaussian parameter noise (the smoothing)
        q: float = Field(0.9, gt=0, lt=1)  # quantile of the noisy models' test accuracy that is certified
        confidence: float = Field(0.99, gt=0, lt=1)  # probability that the certified bound holds, over the draws
        # L2 radii in parameter space to certify (one certified@eta key each)
        etas: tuple[PositiveFloat, ...] = OFFICIAL_ETAS
        test_images: int | None = Field(None, ge=1)  # size of a class-balanced test subset; None: the whole test split
        batch_size: int | None = Field(None, ge=1)  # inference batch; None: 1024 on CUDA, 256 on a CPU
        seed: int = Field(0, ge=0, le=2**32 - 1)  # seed of the surrogate and noise streams, with the cell's seed
        # the certification surrogate (configs/cifar10/resnet18.yaml + make_pue.sh's noise)
        surrogate_arch: str = "resnet18"  # architecture of the certification surrogate (on [0, 1] inputs)
        surrogate_epochs: int = Field(60, ge=1)  # epochs of the surrogate's noise-robust training (cosine lr)
        surrogate_batch_size: int = Field(128, ge=1)  # batch of the surrogate's training
        surrogate_lr: float = Field(0.1, gt=0)  # surrogate SGD lr, cosine (momentum 0.9, wd 5e-4, grad-clip 5)
        # largest weight-noise std of the surrogate's robust training (robust_noise)
        train_sigma: float = Field(0.25, ge=0)
        train_sigma_step: float = Field(0.05, gt=0)  # spacing of the weight-noise levels 0, step, ..., train_sigma
        train_draws: int = Field(100, ge=1)  # weight draws per noise level and batch in the surrogate's training
        online: bool = True  # also certify the attack's own surrogate where it released one

        @model_validator(mode="after")
        def _etas(self) -> CertifiedLearnability.Params:
            if not self.etas or any(e < 0 for e in self.etas):
                raise ValueError("etas must be a non-empty list of radii >= 0")
            return self

    # quick: the small CNN trained with weight noise up to 0.02 keeps a useful accuracy at sigma 0.02
    # (docs/metrics.md); 200 draws at q 0.9 certify up to eta = 0.72 sigma, and the quick radii
    # (0.1, 0.2, 0.3, 0.5 sigma) use the order statistics 193, 195, 197, 199 of 200: k_u < N at each.
    profiles = {
        "quick": {
            "draws": 200, "sigma": 0.02, "etas": (0.002, 0.004, 0.006, 0.01), "test_images": 1000,
            "surrogate_arch": "small-cnn", "surrogate_epochs": 10, "train_sigma": 0.02, "train_sigma_step": 0.01, "train_draws": 2,
        },
        "smoke": {
            "draws": 40, "sigma": 0.05, "q": 0.5, "etas": (0.001, 0.01, 0.05), "test_images": 256,
            "surrogate_arch": "small-cnn", "surrogate_epochs": 1, "surrogate_batch_size": 64,
            "train_sigma": 0.05, "train_sigma_step": 0.05, "train_draws": 1,
        },
    }  # fmt: skip

    # ---------------------------------------------------------------------------- the surrogate
    def recipe(self) -> SGDRecipe:
        return SGDRecipe.from_params(self.params, "surrogate_", momentum=0.9, weight_decay=5e-4, grad_clip=5.0)

    def surrogate(self, train: ImageDataset, ctx: RunContext) -> tuple[nn.Module, dict[str, Any]]:
        """The certification surrogate of ``train`` (from ``ctx.cache`` when it holds one) and its
        cache spec. Seeded by ``(ctx.seed, seed)``: its initialization in a forked RNG (the global
        stream is left as it was), batch order, augmentation and weight noise from explicit
        generators; its training emits no events on the cell's trace."""
        p = self.params
        seed = ctx.stream_seed(p.seed)  # the param is a raw offset
        levels = noise_levels(p.train_sigma, p.train_sigma_step)
        recipe = self.recipe()
        spec = {
            "purpose": "certification-surrogate",
            "data": data_fingerprint(train),
            "arch": p.surrogate_arch,
            "recipe": recipe.model_dump(mode="json"),
            "augment": "crop4+flip",
            "levels": list(levels),
            "draws": p.train_draws,
            "seed": seed,
        }
        devices = [ctx.device] if ctx.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            c = train.shape[0]
            model = build_classifier(p.surrogate_arch, c, train.num_classes, [0.0] * c, [1.0] * c, ctx.device)
        sub = dataclasses.replace(ctx, seed=seed, trace=Trace())

        def fit(m: nn.Module) -> None:
            train_robust(m, train, recipe, sub, levels=levels, draws=p.train_draws, seed=seed + 17, augment=crop_flip, desc=f"surrogate/{p.surrogate_arch}")

        cached = ctx.cache.model(spec, model, fit) if ctx.cache is not None else (fit(model), False)[1]
        ctx.log(f"certification surrogate {p.surrogate_arch}: {'cached' if cached else 'trained'}")
        return model.eval(), spec

    # ---------------------------------------------------------------------------- the certificate
    def accuracies(self, model: nn.Module, test: ImageDataset, ctx: RunContext) -> torch.Tensor:
        """The ``draws`` noisy test accuracies of ``model``, from ``ctx.cache`` when it holds them
        (keyed by the model's weights, the test images, sigma, draws and the noise seed)."""
        p = self.params
        seed = ctx.stream_seed(p.seed)  # the param is a raw offset

        def run() -> torch.Tensor:
            return noisy_accuracies(model, test, ctx, sigma=p.sigma, draws=p.draws, seed=seed, batch_size=p.batch_size)

        if ctx.cache is None:
            return run()
        spec = {
            "kind": "noisy-accuracies",
            "model": model_fingerprint(model),
            "test": data_fingerprint(test),
            "sigma": p.sigma,
            "draws": p.draws,
            "seed": seed,
        }
        tensors, _, _ = ctx.cache.get_or_create(spec, lambda: ({"accuracies": run()}, {}))
        return tensors["accuracies"]

    def certificate(self, model: nn.Module, test: ImageDataset, ctx: RunContext, prefix: str = "") -> dict[str, float]:
        p = self.params
        accs = self.accuracies(model, test, ctx)
        out = {
            f"{prefix}surrogate_acc": 100 * accuracy(model, test, ctx, p.batch_size),
            f"{prefix}noisy_acc_mean": 100 * float(accs.mean()),
            f"{prefix}noisy_acc_q": 100 * float(torch.quantile(accs, p.q)),
        }
        for eta in p.etas:
            out[f"{prefix}certified@{eta:g}"] = 100 * certify(accs, p.q, eta, p.sigma, p.confidence)
        return out

    def compute(self, cell: CellArtifacts, ctx: RunContext) -> dict[str, float]:
        p = self.params
        test = cell.splits.test
        if p.test_images is not None and p.test_images < len(test):
            test = test.select(stratified_fraction(test.y, p.test_images / len(test), ctx.seed))
        model, _ = self.surrogate(cell.train, ctx)
        out = self.certificate(model, test, ctx)
        online = cell.poison.surrogate
        if p.online and online is not None and ROBUST_SURROGATE_LEVELS in cell.poison.meta:
            out.update(self.certificate(online.to(ctx.device).eval(), test, ctx, prefix="online_"))
        return out


PLUGINS = [CertifiedLearnability]
