"""Probing a frozen pretrained encoder (§3.2): a linear classifier on its features (the papers'
protocol), or a weighted k-nearest-neighbour classifier over its features of the training set
(the kNN monitor of InstDisc / the MoCo CIFAR-10 demo, a cheaper quick-profile probe)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from benchmark.augment import random_flip, random_resized_crop
from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import RunContext
from benchmark.models.classifier import Classifier
from benchmark.recipe import Recipe
from benchmark.trace import EpochEvent, Trace
from benchmark.training import autocast, batches, resident, to_model

#: epoch -> features ``[N, D]`` of the training set for that epoch (fixed, or one augmented view)
FeatureSource = Callable[[int], torch.Tensor]


class ProbeRecipe(Recipe):
    """The CP/TP linear-evaluation recipe (kaiwenzha/contrastive-poisoning ``evaluation.py``,
    TrustMLRG/TransPoison ``evaluation.py``): SGD lr 1.0, momentum 0.9, wd 0, batch 512, 100
    epochs, lr x0.2 after epochs 60/75/90 (``milestones`` are fractions of ``epochs``); every
    epoch sees a fresh RandomResizedCrop(32, scale 0.2-1) + flip view of each training image
    through the frozen encoder in eval mode (``augment``). The **final-epoch** layer is kept (the
    official code reports the best test accuracy over the 100 epochs: test-set model selection).

    ``views``: ``None`` draws a fresh view every epoch (faithful); ``k`` extracts ``k`` views per
    image once and cycles through them (epoch ``e`` trains on view ``e mod k``), a cheaper
    approximation for CPU profiles. ``standardize`` trains on z-scored features (statistics of
    the first epoch's features) and folds the scaling into the returned layer (a deviation, for
    small nets whose raw features suit a different lr).
    """

    epochs: int = 100
    batch_size: int = 512
    lr: float = 1.0
    momentum: float = 0.9
    weight_decay: float = 0.0
    milestones: tuple[float, ...] = (0.6, 0.75, 0.9)  # fractions of ``epochs``
    gamma: float = 0.2
    standardize: bool = False
    augment: bool = True
    crop_scale: tuple[float, float] = (0.2, 1.0)
    views: int | None = Field(None, ge=1)


def probe_view(x: torch.Tensor, generator: torch.Generator, scale: tuple[float, float] = (0.2, 1.0)) -> torch.Tensor:
    """The linear-evaluation training view: RandomResizedCrop(``H``, ``scale``) + horizontal flip,
    per sample, on a float batch ``[B, C, H, W]`` in [0, 1]."""
    return random_flip(random_resized_crop(x, generator, scale), generator)


@torch.no_grad()
def extract_features(
    model: Classifier,
    data: ImageDataset,
    ctx: RunContext,
    batch_size: int = 1024,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Features ``[N, feature_dim]`` (float32, on ``ctx.device``) of ``data`` in index order, with
    the encoder in eval mode; each image through ``augment(x, generator)`` first when given."""
    was_training = model.training
    model.eval()
    data = resident(data, ctx.device)
    out = []
    for idx in batches(len(data), batch_size, None, False, data.x.device):
        x = data.float_batch(idx, ctx.device)
        if augment is not None:
            assert generator is not None
            x = augment(x, generator)
        with autocast(ctx):
            out.append(model.features(to_model(x)).float())
    model.train(was_training)
    return torch.cat(out)


def fit_linear(
    feats: torch.Tensor | FeatureSource,
    y: torch.Tensor,
    num_classes: int,
    recipe: ProbeRecipe,
    generator: torch.Generator,
    trace: Trace | None = None,
) -> nn.Linear:
    """Train ``nn.Linear(D, num_classes)`` with cross entropy on frozen features: a fixed
    ``[N, D]`` tensor, or a source giving epoch ``e``'s features (augmented views). Shuffled
    mini-batches (the last one partial), the recipe's multistep schedule; returns the last layer.

    With a ``trace``, every epoch emits an :class:`~benchmark.trace.EpochEvent` of phase
    ``"probe"`` (mean training loss and accuracy of the epoch's steps; ``model`` is the linear layer
    being trained, on the standardized features when ``recipe.standardize``)."""
    source: FeatureSource = (lambda e, f=feats: f) if isinstance(feats, torch.Tensor) else feats  # type: ignore[misc]  # f is the tensor
    first = source(0).float()
    y = y.to(first.device)
    mean = first.mean(0) if recipe.standardize else torch.zeros_like(first[0])
    std = first.std(0).clamp(min=1e-6) if recipe.standardize else torch.ones_like(first[0])
    layer = nn.Linear(first.shape[1], num_classes).to(first.device)
    opt = torch.optim.SGD(layer.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    steps_per_epoch = max(1, -(-len(first) // recipe.batch_size))
    milestones = [int(m * recipe.epochs) * steps_per_epoch for m in recipe.milestones]
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones, recipe.gamma)
    with torch.enable_grad():
        for epoch in range(recipe.epochs):
            z = ((first if epoch == 0 else source(epoch).float()) - mean) / std
            loss_sum = torch.zeros((), device=z.device)  # no host sync per step
            correct = torch.zeros((), dtype=torch.long, device=z.device)
            for idx in batches(len(z), recipe.batch_size, generator, False):
                idx = idx.to(z.device)
                logits = layer(z[idx])
                loss = F.cross_entropy(logits, y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                if trace is not None:
                    loss_sum += loss.detach() * len(idx)
                    correct += (logits.detach().argmax(1) == y[idx]).sum()
            if trace is not None:
                n = len(z)
                lr = opt.param_groups[0]["lr"]
                trace.emit(EpochEvent("probe", epoch + 1, recipe.epochs, float(loss_sum) / n, int(correct) / n, lr, layer))
    with torch.no_grad():  # fold the standardization: W (f - m) / s + b == (W / s) f + (b - W m / s)
        w = layer.weight / std
        layer.bias -= w @ mean  # type: ignore[misc]  # in place: stays the Parameter
        layer.weight.copy_(w)
    return layer


def feature_source(model: Classifier, data: ImageDataset, ctx: RunContext, recipe: ProbeRecipe) -> torch.Tensor | FeatureSource:
    """What :func:`fit_linear` trains on under ``recipe``: the un-augmented features (extracted
    once), a fresh augmented view per epoch, or ``views`` augmented views extracted once and cycled."""
    if not recipe.augment:
        return extract_features(model, data, ctx)
    g = ctx.generator("probe.views")

    def view(_: int) -> torch.Tensor:
        return extract_features(model, data, ctx, augment=lambda x, gen: probe_view(x, gen, recipe.crop_scale), generator=g)

    if recipe.views is None or recipe.views >= recipe.epochs:
        return view
    bank = [view(i) for i in range(recipe.views)]
    return lambda e: bank[e % len(bank)]


def linear_probe(model: Classifier, data: ImageDataset, ctx: RunContext, recipe: ProbeRecipe | None = None) -> Classifier:
    """Fit a linear layer on the frozen (eval-mode) encoder's features of ``data`` -- the victim's
    own, possibly poisoned, training set -- under ``recipe`` and install it as ``model.head``.
    Returns ``model`` in eval mode, with the final-epoch layer."""
    recipe = recipe or ProbeRecipe()  # type: ignore[call-arg]  # mypy misses pydantic's positional Field(None) default
    head = fit_linear(feature_source(model, data, ctx, recipe), data.y, data.num_classes, recipe, ctx.generator("probe.head"), ctx.trace)
    model.head = head
    return model.eval()


def knn_scores(
    query: torch.Tensor, bank: torch.Tensor, bank_labels: torch.Tensor, num_classes: int, k: int = 200, temperature: float = 0.1,
    chunk: int = 1024,
) -> torch.Tensor:
    """Class scores ``[B, num_classes]`` of the temperature-weighted kNN vote (Wu et al., "Unsupervised
    Feature Learning via Non-Parametric Instance Discrimination", CVPR 2018, §3.5; the ``knn_predict``
    monitor of facebookresearch/moco's CIFAR-10 demo notebook):
    cosine similarities ``s`` of each (L2-normalized) query ``[B, D]`` to the L2-normalized ``bank``
    ``[N, D]``; the ``k`` most similar bank items vote for their label with weight
    ``exp(s / temperature)``; a row's scores are the summed votes per class. Queries go in ``chunk``s
    (a ``[chunk, N]`` similarity matrix at a time)."""
    bank = F.normalize(bank.float(), dim=1)
    k = min(k, len(bank))
    out = []
    for q in query.float().split(chunk):
        sim = F.normalize(q, dim=1) @ bank.T  # [b, N]
        top, idx = sim.topk(k, dim=1)
        weights = (top / temperature).exp()
        votes = torch.zeros(len(q), num_classes, device=q.device, dtype=weights.dtype)
        out.append(votes.scatter_add_(1, bank_labels[idx], weights))
    return torch.cat(out) if out else torch.zeros(0, num_classes, device=query.device)


class KNNHead(nn.Module):
    """A head ``[B, D] -> [B, K]`` that scores features by :func:`knn_scores` against a fixed bank
    (buffers ``bank [N, D]``, L2-normalized, ``labels [N]`` and ``center [D]``, subtracted from
    every feature, bank and query, before the normalization): no trainable parameters, so it sits
    where a :class:`~benchmark.models.classifier.Classifier` has its linear ``head``. It returns
    the log of each class's share of the votes (clamped at 1e-12), so that a softmax of the output
    is the vote distribution and the argmax is the kNN prediction."""

    # buffers, registered in __init__
    center: torch.Tensor
    bank: torch.Tensor
    labels: torch.Tensor

    def __init__(
        self, bank: torch.Tensor, labels: torch.Tensor, num_classes: int, k: int = 200, temperature: float = 0.1,
        center: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        center = torch.zeros_like(bank[0], dtype=torch.float32) if center is None else center.float()
        self.register_buffer("center", center)
        self.register_buffer("bank", F.normalize(bank.float() - center, dim=1))
        self.register_buffer("labels", labels.long().to(bank.device))
        self.num_classes, self.k, self.temperature = num_classes, k, temperature
        self.out_features = num_classes

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        votes = knn_scores(features.float() - self.center, self.bank, self.labels, self.num_classes, self.k, self.temperature)
        return (votes / votes.sum(1, keepdim=True)).clamp_min(1e-12).log()


def knn_probe(
    model: Classifier, data: ImageDataset, ctx: RunContext, k: int = 200, temperature: float = 0.1, center: bool = False
) -> Classifier:
    """Install a :class:`KNNHead` over the frozen (eval-mode) encoder's un-augmented features of
    ``data`` (the victim's own, possibly poisoned, training set) as ``model.head``; returns
    ``model`` in eval mode. Nothing is trained. ``center``: subtract the bank's mean feature from
    bank and queries before the cosine (the "CL2N" transform of SimpleShot, Wang et al., 2019,
    arXiv:1911.04623; InstDisc's monitor does not center)."""
    bank = extract_features(model, data, ctx)
    mean = bank.mean(0) if center else None
    model.head = KNNHead(bank, data.y.to(bank.device), data.num_classes, k, temperature, mean)  # type: ignore[assignment]  # stands in for the Linear (has out_features)
    return model.eval()
