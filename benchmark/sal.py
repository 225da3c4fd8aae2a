"""Sharpness-Aware Learnability (SAL): how learnable each Conv and Linear layer of a model still is,
and the Unlearnable Distance (UD) built from it. Ye, Su & Qian, "How Far Are We from True
Unlearnability?" (arXiv 2509.08058); official code MLsecurityLab/HowFarAreFromTrueUnlearnability
(``poison_train_sharp.py``: ``layer_sharpness``; ``analysis/get_ud.py``).

The measurement on one model (per-layer S⁺/S⁻ within a relative ℓ2 ball, SAL, the 2-means
threshold, #LP, UD); the ``unlearnable-distance`` metric (``plugins/metrics``) runs it over a
victim's training trace and a cached clean reference.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.augment import crop_flip
from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import RunContext
from benchmark.training import autocast, batches, resident, to_model

# ------------------------------------------------------------------------------ one layer's SAL


def scored_layers(model: nn.Module) -> list[str]:
    """Parameter names of the ``weight`` of every ``nn.Conv2d`` and ``nn.Linear`` module of
    ``model``, in module order (CIFAR ResNet-18: 21, shortcut convolutions and the classifier
    included; the small CNN: 5). Biases and BatchNorm are never perturbed."""
    return [f"{name}.weight" if name else "weight" for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def project_relative(w: torch.Tensor, w0: torch.Tensor, eps: float) -> torch.Tensor:
    """``w`` brought back onto the relative ball ``||w - w0||_2 <= eps * ||w0||_2`` (norms over the
    whole tensor) by rescaling the change, when it left the ball; ``w`` unchanged inside it."""
    d = w - w0
    radius = eps * w0.norm()
    norm = d.norm()
    if norm > radius:
        return w0 + d * (radius / norm) if radius > 0 else w0.clone()
    return w


def sal_value(s_plus: torch.Tensor, s_minus: torch.Tensor) -> torch.Tensor:
    """SAL = S⁺ where ``|S⁺| > |S⁻|``, else S⁻ (elementwise; both are >= 0 by construction, so
    this is their maximum)."""
    return torch.where(s_plus.abs() > s_minus.abs(), s_plus, s_minus)


@dataclass(frozen=True)
class Sharpness:
    """How S⁺ and S⁻ are approximated: ``iterations`` rounds, each ``steps`` plain-SGD steps (lr
    ``lr_ascent`` up, ``lr_descent`` down; ``None``: one full shuffled drop-last pass over the
    scoring set) on the layer's weight alone, then the rescaling onto the relative ball of radius
    ``eps``, then one evaluation pass of both perturbed models on the same batches."""

    eps: float = 0.05
    iterations: int = 10
    lr_ascent: float = 0.1
    lr_descent: float = 0.1
    batch_size: int = 256
    steps: int | None = None
    augment: bool = True


@dataclass
class PassCount:
    """Images pushed through the network: ``train`` forward+backward (to the scored layer),
    ``eval`` forward only. The cost model of the metric."""

    train: int = 0
    eval: int = 0

    def add(self, other: PassCount) -> None:
        self.train += other.train
        self.eval += other.eval


class ScoringLoader:
    """Batches of a scoring set the way a training loader draws them: shuffled, drop-last (when the
    set holds a whole batch), crop(4)+flip when ``augment``. ``epoch()`` is one pass; ``steps(k)``
    takes ``k`` batches from a stream that continues across calls (a new shuffle at each end)."""

    def __init__(self, data: ImageDataset, batch_size: int, augment: bool, generator: torch.Generator, device: torch.device) -> None:
        self.data, self.bs, self.augment, self.g, self.device = data, min(batch_size, len(data)), augment, generator, device
        self._stream: Iterator[torch.Tensor] = iter(())

    def _order(self) -> Iterator[torch.Tensor]:
        return batches(len(self.data), self.bs, self.g, True, self.data.x.device)

    def _draw(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.data.float_batch(idx, self.device)
        if self.augment:
            x = crop_flip(x, self.g)
        return to_model(x), self.data.y[idx].to(self.device, non_blocking=True)

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for idx in self._order():
            yield self._draw(idx)

    def steps(self, k: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for _ in range(k):
            idx = next(self._stream, None)
            if idx is None:
                self._stream = self._order()
                idx = next(self._stream)
            yield self._draw(idx)


def mean_loss(net: nn.Module, loader: ScoringLoader, ctx: RunContext, count: PassCount) -> float:
    """Mean cross-entropy of ``net`` over one pass of ``loader`` (no gradients)."""
    total, n = torch.zeros((), device=ctx.device), 0
    with torch.no_grad():
        for x, y in loader.epoch():
            with autocast(ctx):
                total += F.cross_entropy(net(x), y, reduction="sum").float()
            n += len(y)
    count.eval += n
    return float(total) / max(1, n)


def _sgd(net: nn.Module, param: nn.Parameter, start: torch.Tensor, alpha: float, loader: ScoringLoader, s: Sharpness, ctx: RunContext, count: PassCount) -> torch.Tensor:
    """``param`` set to ``start``, then plain SGD steps ``param += alpha * grad CE`` (``alpha < 0``
    descends, ``> 0`` ascends); returns the weight reached."""
    with torch.no_grad():
        param.copy_(start)
    for x, y in loader.epoch() if s.steps is None else loader.steps(s.steps):
        with autocast(ctx):
            loss = F.cross_entropy(net(x), y)
        (grad,) = torch.autograd.grad(loss, param)
        with torch.no_grad():
            param.add_(grad, alpha=alpha)
        count.train += len(y)
    return param.detach().clone()


def _eval_pair(net: nn.Module, param: nn.Parameter, w_down: torch.Tensor, w_up: torch.Tensor, loader: ScoringLoader, ctx: RunContext, count: PassCount) -> tuple[float, float]:
    """Mean cross-entropy with ``param = w_down`` and with ``param = w_up``, on the same batches."""
    sums, n = torch.zeros(2, device=ctx.device), 0
    with torch.no_grad():
        for x, y in loader.epoch():
            for j, w in enumerate((w_down, w_up)):
                param.copy_(w)
                with autocast(ctx):
                    sums[j] += F.cross_entropy(net(x), y, reduction="sum").float()
            n += len(y)
    count.eval += 2 * n
    down, up = (sums / max(1, n)).tolist()
    return down, up


def layer_sharpness(
    net: nn.Module, name: str, loader: ScoringLoader, base_loss: float, s: Sharpness, ctx: RunContext, count: PassCount | None = None
) -> tuple[float, float]:
    """``(S⁺, S⁻)`` of the weight ``name`` of ``net`` (eval mode, every parameter frozen):

    S⁺ = max over the iterations of L(W_up) − L₀, S⁻ = L₀ − min of L(W_down), both started at L₀
    (so both >= 0), where W_up / W_down run the SGD ascent / descent of :class:`Sharpness` from the
    trained weight and are rescaled onto ``||W − W₀|| <= eps ||W₀||`` after every round. ``net``
    is left as it was."""
    count = count if count is not None else PassCount()
    param = dict(net.named_parameters())[name]
    w0 = param.detach().clone()
    w_down, w_up = w0, w0
    lowest = highest = base_loss
    param.requires_grad_(True)
    try:
        for _ in range(s.iterations):
            w_down = project_relative(_sgd(net, param, w_down, -s.lr_descent, loader, s, ctx, count), w0, s.eps)
            w_up = project_relative(_sgd(net, param, w_up, s.lr_ascent, loader, s, ctx, count), w0, s.eps)
            down, up = _eval_pair(net, param, w_down, w_up, loader, ctx, count)
            lowest, highest = min(lowest, down), max(highest, up)
    finally:
        param.requires_grad_(False)
        with torch.no_grad():
            param.copy_(w0)
    return highest - base_loss, base_loss - lowest


@dataclass
class ModelSharpness:
    """S⁺ and S⁻ ``[L]`` of every scored layer of one model, and the L₀ they are measured from."""

    layers: list[str]
    s_plus: torch.Tensor
    s_minus: torch.Tensor
    base_loss: float
    count: PassCount


def model_sharpness(
    model: nn.Module, data: ImageDataset, s: Sharpness, ctx: RunContext, *, base_loss: float | None = None, seed: int = 0
) -> ModelSharpness:
    """S⁺/S⁻ of every layer of :func:`scored_layers` of ``model`` (a classifier over [0, 1] pixels)
    on ``data`` (uint8 ``[N,C,H,W]``), in eval mode. ``base_loss`` is L₀; ``None``: the eval-mode
    loss of one pass of the scoring loader. Layer ``i`` draws its batches from a generator seeded
    with ``(seed, i)``. ``model`` is not modified (a copy is scored)."""
    net = copy.deepcopy(model).to(ctx.device).eval().requires_grad_(False).to(memory_format=torch.channels_last)
    data = resident(data, ctx.device)
    count = PassCount()
    layers = scored_layers(net)
    if base_loss is None:
        base_loss = mean_loss(net, ScoringLoader(data, s.batch_size, s.augment, torch.Generator().manual_seed(seed * 1_000_003 + 999_983), ctx.device), ctx, count)
    up, down = [], []
    for i, name in enumerate(layers):
        loader = ScoringLoader(data, s.batch_size, s.augment, torch.Generator().manual_seed(seed * 1_000_003 + i), ctx.device)
        a, b = layer_sharpness(net, name, loader, base_loss, s, ctx, count)
        up.append(a)
        down.append(b)
    return ModelSharpness(layers, torch.tensor(up, dtype=torch.float64), torch.tensor(down, dtype=torch.float64), base_loss, count)


# ---------------------------------------------------------------------------- threshold and UD


def two_means_threshold(values: torch.Tensor | np.ndarray | list[float], random_state: int = 0) -> float:
    """The midpoint of the two centres of a 2-means clustering of ``values`` (scikit-learn
    ``KMeans(n_clusters=2, random_state=random_state, n_init="auto")``, as ``get_ud.py``). Fewer
    than two distinct values: that value."""
    v = np.asarray(values, dtype=np.float64).reshape(-1, 1)
    if len(np.unique(v)) < 2:
        return float(v[0, 0]) if len(v) else math.nan
    from sklearn.cluster import KMeans

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        centres = KMeans(n_clusters=2, random_state=random_state, n_init="auto").fit(v).cluster_centers_[:, 0]
    return float((centres.min() + centres.max()) / 2)


def learnability_threshold(sal: torch.Tensor, random_state: int = 0) -> float:
    """β: the mean over epochs (rows of ``sal`` ``[T, L]``, the clean run's SAL) of the per-epoch
    2-means threshold over the layers."""
    return float(np.mean([two_means_threshold(row, random_state) for row in sal.double().numpy()]))


def learnable_layers(sal: torch.Tensor, beta: float) -> float:
    """#LP: layers with SAL > β, averaged over the epochs (rows of ``sal`` ``[T, L]``)."""
    return float((sal > beta).sum().item()) / max(1, sal.shape[0])


def unlearnable_distance(sal: torch.Tensor, clean_sal: torch.Tensor, random_state: int = 0) -> dict[str, float]:
    """``{ud, ud_lp, ud_lp_clean, ud_beta}`` of a run's SAL ``[T, L]`` against the clean run's
    ``[T', L]``: β from the clean run, UD = #LP(run) / #LP(clean) (NaN when the clean run has no
    layer above β)."""
    beta = learnability_threshold(clean_sal, random_state)
    lp, lp_clean = learnable_layers(sal, beta), learnable_layers(clean_sal, beta)
    ud = lp / lp_clean if lp_clean > 0 else math.nan
    return {"ud": ud, "ud_lp": lp, "ud_lp_clean": lp_clean, "ud_beta": beta}
