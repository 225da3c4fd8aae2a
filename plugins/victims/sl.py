"""SL: plain supervised cross-entropy training, the victim every availability attack targets."""

from __future__ import annotations

import torch
from torch import nn

from benchmark.augment import random_crop, random_flip
from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import RunContext, TrainHooks, Victim
from benchmark.models import build_classifier
from benchmark.params import Params
from benchmark.training import SGDRecipe, train_supervised


class SL(Victim):
    """Supervised learning with cross-entropy (the standard CIFAR recipe of EM, ISS, TAP and APBench).

    Paper profile: CIFAR ResNet-18, SGD lr 0.1, momentum 0.9, wd 5e-4, batch 128, 200 epochs cosine,
    random crop (pad 4) + flip, final-epoch model (specs/defenses-metrics-victims.md §3.1).
    ``arch`` is any registered architecture or ``timm/<name>`` (transfer across architectures).
    Input: uint8 ``[N, C, H, W]``; returns a classifier over [0, 1] pixels, normalized inside.
    """

    name = "sl"
    paradigm = "supervised"

    class Params(Params):
        arch: str = "resnet18"
        epochs: int = 200
        batch_size: int = 128
        lr: float = 0.1
        momentum: float = 0.9
        weight_decay: float = 5e-4
        nesterov: bool = False
        warmup_epochs: float = 0.0
        grad_clip: float | None = None
        crop_padding: int = 4
        flip: bool = True

    profiles = {
        "quick": {"arch": "small-cnn", "epochs": 20, "nesterov": True, "warmup_epochs": 1.0},
        "smoke": {"arch": "small-cnn", "epochs": 2, "batch_size": 64},
    }

    def fit(self, train: ImageDataset, ctx: RunContext, hooks: TrainHooks) -> nn.Module:
        p = self.params
        mean, std = train.mean_std()
        model = build_classifier(p.arch, train.shape[0], train.num_classes, mean, std, ctx.device)
        recipe = SGDRecipe(
            epochs=p.epochs,
            batch_size=p.batch_size,
            lr=p.lr,
            momentum=p.momentum,
            weight_decay=p.weight_decay,
            nesterov=p.nesterov,
            warmup_epochs=p.warmup_epochs,
            grad_clip=p.grad_clip,
        )

        def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
            x = random_crop(x, p.crop_padding, g)
            return random_flip(x, g) if p.flip else x

        return train_supervised(model, train, recipe, ctx, hooks=hooks, augment=augment, desc=f"sl/{p.arch}")


PLUGINS = [SL]
