"""SL: plain supervised cross-entropy training, the victim every availability attack targets."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, NonNegativeFloat
from torch import nn

from benchmark.augment import random_crop, random_flip
from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import RunContext, TrainHooks, Victim
from benchmark.models import build_classifier
from benchmark.params import Params
from benchmark.training import SGDRecipe, train_supervised


class SL(Victim):
    """Supervised learning with cross-entropy (the standard CIFAR recipe of EM, ISS, TAP and APBench:
    Huang et al., ICLR 2021, HanxunH/Unlearnable-Examples; lafeat/apbench ``train.py``).
    
    Role: the victim, the data user who trains on the released data (no threat model of its own).

    Paper profile: CIFAR ResNet-18, SGD lr 0.1, momentum 0.9, wd 5e-4, batch 128, 200 epochs cosine,
    random crop (pad 4) + flip, final-epoch model: the
    standard recipe of the EM, ISS and APBench tables. The TP paper's Table 1 (Appendix A.3) trains
    100 epochs with lr x0.1 at epochs 60, 75 and 90: ``{epochs: 100, schedule: multistep,
    milestones: [60, 75, 90]}``. The EM/ISS repositories' own 60-epoch cosine recipe (grad-clip 5
    in EM): ``{epochs: 60, grad_clip: 5}``.
    ``arch`` is any registered architecture or ``timm/<name>`` (transfer across architectures).
    Input: uint8 ``[N, C, H, W]``; returns a classifier over [0, 1] pixels, normalized inside.
    """

    name = "sl"
    paradigm = "supervised"

    class Params(Params):
        arch: str = "resnet18"  # classifier architecture: a registered name or timm/<name>
        epochs: int = Field(200, ge=0)  # training epochs; the final-epoch model is evaluated
        batch_size: int = Field(128, ge=1)  # SGD batch
        lr: float = Field(0.1, gt=0)  # SGD base lr, scaled per step by the warm-up and the schedule
        momentum: float = Field(0.9, ge=0, lt=1)  # SGD momentum
        weight_decay: float = Field(5e-4, ge=0)  # SGD weight decay
        nesterov: bool = False  # Nesterov momentum
        # lr schedule, per step: cosine to 0, multistep (x gamma at milestones), or constant
        schedule: Literal["cosine", "multistep", "constant"] = "cosine"
        milestones: tuple[NonNegativeFloat, ...] = ()  # epochs at which a multistep schedule multiplies the lr by gamma
        gamma: float = Field(0.1, gt=0, le=1)  # multistep: factor on the lr at each milestone
        warmup_epochs: float = Field(0.0, ge=0)  # epochs of linear lr warm-up (fractions allowed)
        grad_clip: float | None = Field(None, gt=0)  # max gradient norm; None: no clipping (EM's code: 5)
        crop_padding: int = Field(4, ge=0)  # zero padding in pixels of the random crop; 0: no crop
        flip: bool = True  # random horizontal flip

    profiles = {
        "quick": {"arch": "small-cnn", "epochs": 20, "nesterov": True, "warmup_epochs": 1.0},
        "smoke": {"arch": "small-cnn", "epochs": 2, "batch_size": 64},
    }

    def fit(self, train: ImageDataset, ctx: RunContext, hooks: TrainHooks) -> nn.Module:
        p = self.params
        mean, std = train.mean_std()
        model = build_classifier(p.arch, train.shape[0], train.num_classes, mean, std, ctx.device)
        recipe = SGDRecipe.from_params(p)

        def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
            x = random_crop(x, p.crop_padding, g)
            return random_flip(x, g) if p.flip else x

        return train_supervised(model, train, recipe, ctx, hooks=hooks, augment=augment, desc=f"sl/{p.arch}")


PLUGINS = [SL]
