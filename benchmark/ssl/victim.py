"""The base of the self-supervised victims: pretrain an encoder with an :class:`SSLMethod`, then
linear-probe its frozen features on the same training set (specs/defenses-metrics-victims.md §3.2)."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

from pydantic import Field
from torch import nn

from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import RunContext, TrainHooks, Victim
from benchmark.models import build_classifier
from benchmark.models.classifier import Classifier
from benchmark.params import Params
from benchmark.ssl.method import PretrainRecipe, SSLMethod, pretrain
from benchmark.ssl.probe import ProbeRecipe, linear_probe


class SSLParams(Params):
    """Shared parameters: the CP/TP faithful protocol (1000 epochs, batch 512, SGD m 0.9, wd 1e-4,
    10-epoch warm-up from lr 0.01, cosine to lr/1000; probe SGD lr 1.0, 100 epochs, x0.2 at 60/75/90).
    ``epochs: 0`` probes the randomly initialized encoder (the floor every SSL number needs)."""

    arch: str = "resnet18"
    epochs: int = 1000
    batch_size: int = 512
    lr: float = 0.5
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_epochs: int = 10
    warmup_from: float = 0.01  # absolute lr at the first step of the warm-up
    min_lr_ratio: float = 1e-3
    crop_scale_min: float = 0.2
    probe_epochs: int = 100
    probe_batch_size: int = 512
    probe_lr: float = 1.0
    probe_weight_decay: float = 0.0
    probe_standardize: bool = False
    probe_augment: bool = True
    probe_views: int | None = Field(None, ge=1)


#: The quick CPU profile shared by the SSL victims (small CNN, batch 256, z-scored probe features
#: with lr 0.1 / wd 5e-4 as in shared/reference/quick-scale-calibration.md).
QUICK_COMMON = {
    "arch": "small-cnn",
    "batch_size": 256,
    "warmup_epochs": 0,
    "probe_lr": 0.1,
    "probe_weight_decay": 5e-4,
    "probe_standardize": True,
    "probe_augment": False,
}
SMOKE_COMMON = {
    "arch": "small-cnn",
    "epochs": 1,
    "batch_size": 16,
    "warmup_epochs": 0,
    "probe_epochs": 2,
    "probe_batch_size": 16,
    "probe_lr": 0.1,
    "probe_standardize": True,
    "probe_views": 2,
}


class SSLVictim(Victim):
    """A self-supervised data user: two augmented views per image, an SSL objective, then a linear
    probe. Returns a :class:`Classifier` (pretrained backbone, probe as ``head``).

    The supervised :class:`TrainHooks` of training-stage defenses (AT, UEraser) are ignored:
    they define a per-batch cross-entropy step that has no meaning for an SSL objective.
    """

    paradigm: ClassVar[str] = "contrastive"

    @abstractmethod
    def build_method(self, encoder: Classifier, ctx: RunContext) -> SSLMethod:
        """The method's loss module around ``encoder``."""

    def pretrain_recipe(self) -> PretrainRecipe:
        p = self.params
        return PretrainRecipe(
            epochs=p.epochs,
            batch_size=p.batch_size,
            lr=p.lr,
            momentum=p.momentum,
            weight_decay=p.weight_decay,
            warmup_epochs=p.warmup_epochs,
            warmup_from=p.warmup_from / p.lr,
            min_lr_ratio=p.min_lr_ratio,
            crop_scale=(p.crop_scale_min, 1.0),
        )

    def probe_recipe(self) -> ProbeRecipe:
        p = self.params
        return ProbeRecipe(
            epochs=p.probe_epochs,
            batch_size=p.probe_batch_size,
            lr=p.probe_lr,
            weight_decay=p.probe_weight_decay,
            standardize=p.probe_standardize,
            augment=p.probe_augment,
            views=p.probe_views,
        )

    def fit(self, train: ImageDataset, ctx: RunContext, hooks: TrainHooks) -> nn.Module:
        p = self.params
        mean, std = train.mean_std()
        encoder = build_classifier(p.arch, train.shape[0], train.num_classes, mean, std, ctx.device)
        if p.epochs > 0:
            method = self.build_method(encoder, ctx).to(ctx.device)
            pretrain(method, train, self.pretrain_recipe(), ctx, desc=f"{self.name}/{p.arch}")
        return linear_probe(encoder, train, ctx, self.probe_recipe())
