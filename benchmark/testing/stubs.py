"""The kit's own tiny plugins: a real attack, victims, a defense, a metric and a dataset that depend
on the core only, so a one-cell run (:func:`benchmark.testing.run_cell`) can exercise a third
party's plugin without any built-in plugin installed.

They are registered only in the kit's one-cell registries (never in ``bench plugins`` or a
matrix). Every one is small and real: the victims train, the metric measures, the attack perturbs.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar

import torch
from pydantic import Field
from torch import nn

from benchmark.augment import crop_flip
from benchmark.data.dataset import ImageDataset
from benchmark.data.source import DatasetSource
from benchmark.hookspecs import hookimpl
from benchmark.interfaces import Attack, CellArtifacts, Defense, Metric, Poison, RunContext, TrainHooks, Victim, release
from benchmark.models.classifier import Classifier
from benchmark.params import Params as BaseParams  # `class Params(Params)` trips mypy (python/mypy#10958)
from benchmark.ssl.losses import nt_xent
from benchmark.trace import EpochEvent
from benchmark.training import SGDRecipe, accuracy, batches, train_supervised


def synthetic_dataset(n: int = 64, classes: int = 4, size: int = 16, seed: int = 0, channels: int = 3) -> ImageDataset:
    """Learnable toy images: a class-dependent colour plus noise. uint8 ``[n, channels, size, size]``,
    labels ``arange(n) % classes``."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    base = torch.rand(classes, channels, 1, 1, generator=g) * 200 + 25
    x = base[y] + torch.randn(n, channels, size, size, generator=g) * 25
    return ImageDataset(x.clamp(0, 255).round().to(torch.uint8), y, tuple(f"class{i}" for i in range(classes)))


# ------------------------------------------------------------------------------------------- data


class TinyData(DatasetSource):
    """Synthetic learnable images (:func:`synthetic_dataset`): ``n`` training and ``test_n`` test
    images, uint8 ``[N, channels, size, size]``, ``classes`` classes. Not a paper's dataset: the
    kit's stand-in for CIFAR-10 in tests (milliseconds)."""

    name = "kit-tiny"

    class Params(BaseParams):
        n: int = Field(64, ge=1)
        test_n: int = Field(32, ge=1)
        classes: int = Field(4, ge=2)
        size: int = Field(16, ge=4)
        channels: int = Field(3, ge=1)
        seed: int = Field(0, ge=0)
    params: Params

    def load(self) -> tuple[ImageDataset, ImageDataset]:
        p = self.params
        both = synthetic_dataset(p.n + p.test_n, p.classes, p.size, p.seed, p.channels)  # one draw: shared class colours
        return (ImageDataset(both.x[: p.n].clone(), both.y[: p.n].clone(), both.classes),
                ImageDataset(both.x[p.n :].clone(), both.y[p.n :].clone(), both.classes))


#: datasets handed to :func:`benchmark.testing.run_cell` as tensors, by the digest of their content
MEMORY: dict[str, tuple[ImageDataset, ImageDataset]] = {}


def remember(train: ImageDataset, test: ImageDataset) -> str:
    """Keep ``(train, test)`` for :class:`MemoryData` and return its content digest."""
    h = hashlib.sha256()
    for ds in (train, test):
        h.update(ds.x.contiguous().numpy().tobytes())
        h.update(ds.y.contiguous().numpy().tobytes())
        h.update(repr(ds.classes).encode())
    digest = h.hexdigest()[:20]
    MEMORY[digest] = (train, test)
    return digest


class MemoryData(DatasetSource):
    """A dataset a test built in memory (registered by :func:`remember`), named by its content."""

    name = "kit-memory"

    class Params(BaseParams):
        digest: str = ""
    params: Params

    def load(self) -> tuple[ImageDataset, ImageDataset]:
        return MEMORY[self.params.digest]


# ----------------------------------------------------------------------------------------- attacks


class KitClean(Attack):
    """The identity: the released images are the clean ones (``kind="none"``, no delta). The kit's
    default attack when a one-cell run tests a victim, a defense or a metric.
    Threat model: none needed (L-inf 0). x: uint8 ``[N, C, H, W]``."""

    name = "kit-clean"

    class Params(BaseParams):
        eps: float = Field(0.0, ge=0, le=1)
    params: Params

    def generate(self, train: ImageDataset, ctx: RunContext) -> Poison:
        return Poison(x=train.x.clone(), delta=None, kind="none")


class KitNoise(Attack):
    """Uniform random noise in the L-inf ball, one draw per image (sample-wise ``delta``
    ``[N, C, H, W]``, from ``ctx.generator``), released with :func:`benchmark.release`.
    The smallest attack that honours every attack contract; not a paper's attack."""

    name = "kit-noise"

    class Params(BaseParams):
        eps: float = Field(8 / 255, ge=0, le=1)
    params: Params

    def generate(self, train: ImageDataset, ctx: RunContext) -> Poison:
        eps = self.params.eps
        delta = (torch.rand(train.x.shape, generator=ctx.generator("kit.attack")) * 2 - 1) * eps
        return Poison(x=release(train.x, delta), delta=delta, kind="samplewise", meta={"eps": eps})


# ----------------------------------------------------------------------------------------- victims


class _MLP(nn.Module):
    """Flatten, one hidden layer: a backbone with ``feature_dim``."""

    def __init__(self, in_features: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU())
        self.feature_dim = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _mlp_classifier(train: ImageDataset, hidden: int, device: torch.device) -> Classifier:
    c, h, w = train.shape
    mean, std = train.mean_std()
    return Classifier(_MLP(c * h * w, hidden), hidden, train.num_classes, mean, std).to(device)


class KitSupervised(Victim):
    """A one-hidden-layer MLP trained with cross-entropy through :func:`benchmark.training.train_supervised`
    (so every training-stage defense's :class:`TrainHooks` applies), crop + flip augmentation.
    Input uint8 ``[N, C, H, W]``; returns a :class:`Classifier` ``[B, C, H, W] -> [B, K]``.
    The kit's stand-in for ``sl``: seconds on a CPU, not a paper's victim."""

    name = "kit-supervised"
    paradigm: ClassVar[str] = "supervised"

    class Params(BaseParams):
        hidden: int = Field(32, ge=1)
        epochs: int = Field(4, ge=0)
        batch_size: int = Field(16, ge=1)
        lr: float = Field(0.05, gt=0)
    params: Params

    def fit(self, train: ImageDataset, ctx: RunContext, hooks: TrainHooks) -> nn.Module:
        p = self.params
        model = _mlp_classifier(train, p.hidden, ctx.device)
        recipe = SGDRecipe(epochs=p.epochs, batch_size=p.batch_size, lr=p.lr, weight_decay=5e-4, drop_last=False)
        augment = (lambda x, g: crop_flip(x, g, padding=2)) if train.shape[1] >= 8 else None
        return train_supervised(model, train, recipe, ctx, hooks=hooks, augment=augment, desc="kit-supervised")


class KitContrastive(Victim):
    """SimCLR in miniature: an MLP encoder trained with NT-Xent on two crop + flip views, then a
    linear probe (cross-entropy on frozen features) on the same training set. Ignores supervised
    :class:`TrainHooks`, as contrastive victims do (``paradigm = "contrastive"``).
    Input uint8 ``[N, C, H, W]``; returns a :class:`Classifier`. Not a paper's victim."""

    name = "kit-contrastive"
    paradigm: ClassVar[str] = "contrastive"

    class Params(BaseParams):
        hidden: int = Field(32, ge=1)
        epochs: int = Field(3, ge=0)
        probe_epochs: int = Field(4, ge=1)
        batch_size: int = Field(16, ge=2)
        lr: float = Field(0.05, gt=0)
        temperature: float = Field(0.5, gt=0)
    params: Params

    def fit(self, train: ImageDataset, ctx: RunContext, hooks: TrainHooks) -> nn.Module:
        p = self.params
        model = _mlp_classifier(train, p.hidden, ctx.device)
        g = ctx.generator("kit.victim")
        opt = torch.optim.SGD(model.backbone.parameters(), lr=p.lr, momentum=0.9)
        pad = 2 if train.shape[1] >= 8 else 0
        for epoch in range(p.epochs):
            total = torch.zeros(())
            for idx in batches(len(train), min(p.batch_size, len(train)), g, True):
                x = train.float_batch(idx, ctx.device)
                z1, z2 = model.features(crop_flip(x, g, pad)), model.features(crop_flip(x, g, pad))
                loss = nt_xent(z1, z2, p.temperature)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.detach()
            ctx.trace.emit(EpochEvent("pretrain", epoch + 1, p.epochs, float(total), model=model))
        model.backbone.requires_grad_(False)
        recipe = SGDRecipe(epochs=p.probe_epochs, batch_size=p.batch_size, lr=p.lr, weight_decay=0.0, drop_last=False)
        train_supervised(model, train, recipe, ctx, augment=None, desc="kit-contrastive/probe")
        return model.requires_grad_(True).eval()


# ----------------------------------------------------------------------------------------- defense


class KitNone(Defense):
    """No defense (stage ``none``): the victim trains on the released data as it is."""

    name = "kit-none"
    stage: ClassVar[str] = "none"


# ------------------------------------------------------------------------------------------ metric


class KitAccuracy(Metric):
    """Top-1 accuracy of the cell's model on the clean test split, in [0, 1] (``unit = "fraction"``)."""

    name = "kit-accuracy"
    unit = "fraction"

    def compute(self, cell: CellArtifacts, ctx: RunContext) -> dict[str, float]:
        return {"kit-accuracy": accuracy(cell.model, cell.splits.test, ctx)}


STUBS: tuple[type, ...] = (TinyData, MemoryData, KitClean, KitNoise, KitSupervised, KitContrastive, KitNone, KitAccuracy)


@hookimpl
def register_attacks() -> list[type[Attack]]:
    return [KitClean, KitNoise]


@hookimpl
def register_victims() -> list[type[Victim]]:
    return [KitSupervised, KitContrastive]


@hookimpl
def register_defenses() -> list[type[Defense]]:
    return [KitNone]


@hookimpl
def register_metrics() -> list[type[Metric]]:
    return [KitAccuracy]


@hookimpl
def register_datasets() -> list[type[DatasetSource]]:
    return [TinyData, MemoryData]


__all__ = [
    "KitAccuracy",
    "KitClean",
    "KitContrastive",
    "KitNoise",
    "KitNone",
    "KitSupervised",
    "MemoryData",
    "TinyData",
    "synthetic_dataset",
]
