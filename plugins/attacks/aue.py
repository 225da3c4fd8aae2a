"""AUE: augmented unlearnable examples (Wang, Zhu & Gao, "Efficient Availability Attacks against
Supervised and Contrastive Learning Simultaneously", NeurIPS 2024; code EhanW/AUE-AAP ``aue.py``)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field

from benchmark.augment import strength_augment
from benchmark.data.dataset import ImageDataset
from benchmark.folding import fold_batchnorm
from benchmark.interfaces import Attack, Poison, RunContext, release
from benchmark.models import build_classifier
from benchmark.params import Params
from benchmark.training import autocast, batches, pgd, to_model


class AUE(Attack):
    """Error-minimizing noise crafted through strong, contrastive-like augmentations.

    Threat model: L-inf, ``eps`` = 8/255, sample-wise ``delta`` ``[N, C, H, W]`` indexed by
    dataset index.

    Loop (EhanW/AUE-AAP ``aue.py``): from ``delta = 0`` and a fresh model (no input normalization),
    for each of ``epochs`` = 60 epochs: (1) one shuffled epoch of SGD (train mode, batch 128) on
    CE(f(aug_s(x + delta)), y); (2) with the model frozen in eval mode, for every batch ``steps``
    = 5 signed PGD steps of ``alpha`` = eps/10, each through a fresh aug_s, *minimizing*
    CE(f(aug_s(x + delta)), y); projection onto the eps-ball and the [0, 1] box. SGD lr 0.1,
    momentum 0.9, wd 1e-4, cosine per epoch down to 1e-6. ``strength`` s = 0.6 on CIFAR-10: crop
    scale (0.46, 1), flip, jitter (0.24, 0.24, 0.24, 0.06) with p 0.48, grayscale p 0.12.
    No stop condition.

    Deviations from the official code: the augmentation is our tensor implementation of
    ``utils.Augment`` (:func:`benchmark.augment.contrastive_view`, kornia upstream; hue is a YIQ
    rotation, jitter order fixed; a resized crop that does not fit the image is shrunk to fit, where
    kornia and torchvision redraw it, so crops are a little larger on average (a review measured area
    0.72 against 0.68 at s = 0.6; :func:`benchmark.augment.random_resized_crop`)); the release rounds
    to nearest (official: floor); the noise pass
    visits batches in index order (the official loader is shuffled; with the model frozen in eval
    mode only the random augmentation draws differ); the model pass clamps x + delta to [0, 1]
    (a no-op: the projection keeps it there).
    """

    name = "aue"

    class Params(Params):
        eps: float = Field(8 / 255, ge=0, le=1)  # L-inf budget on [0, 1] pixels; 8/255 in the paper
        alpha: float | None = Field(None, gt=0, le=1)  # PGD step size on [0, 1] pixels; None: eps / 10
        steps: int = Field(5, ge=1)  # PGD steps per batch in each noise pass, each through a fresh augmentation
        epochs: int = Field(60, ge=1)  # rounds of one model epoch then one noise pass over the data
        batch_size: int = Field(128, ge=1)  # batch of the model's training epoch
        noise_batch_size: int = Field(128, ge=1)  # batch of the noise pass (the model is frozen there)
        strength: float = Field(0.6, ge=0)  # strength s of the augmentation (crop, jitter, grayscale); 0.6 on CIFAR-10
        arch: str = "resnet18"  # architecture of the generator model
        lr: float = Field(0.1, gt=0)  # generator SGD lr at the start of its per-epoch cosine schedule
        momentum: float = Field(0.9, ge=0, lt=1)  # generator SGD momentum
        weight_decay: float = Field(1e-4, ge=0)  # generator SGD weight decay
        min_lr: float = Field(1e-6, ge=0)  # floor of the generator's cosine lr schedule

    profiles = {
        "quick": {"arch": "small-cnn", "epochs": 8, "noise_batch_size": 512},
        "smoke": {"arch": "small-cnn", "epochs": 2, "steps": 2, "batch_size": 32, "noise_batch_size": 64},
    }

    def generate(self, train: ImageDataset, ctx: RunContext) -> Poison:
        p = self.params
        dev, n, c = ctx.device, len(train), train.shape[0]
        alpha = p.alpha if p.alpha is not None else p.eps / 10
        aug = strength_augment(p.strength)
        g_batch, g_aug = ctx.generator("aue.batches"), ctx.generator("aue.augment")
        model = build_classifier(p.arch, c, train.num_classes, [0.0] * c, [1.0] * c, dev)
        opt = torch.optim.SGD(model.parameters(), lr=p.lr, momentum=p.momentum, weight_decay=p.weight_decay)
        delta = torch.zeros(train.x.shape, dtype=torch.float32)
        history: list[float] = []
        for epoch in range(p.epochs):
            for group in opt.param_groups:
                group["lr"] = p.min_lr + (p.lr - p.min_lr) * (1 + math.cos(math.pi * epoch / p.epochs)) / 2
            model.train()
            for idx in batches(n, p.batch_size, g_batch, drop_last=False):
                x = (train.float_batch(idx, dev) + delta[idx].to(dev)).clamp(0, 1)
                y = train.y[idx].to(dev)
                with autocast(ctx):
                    loss = F.cross_entropy(model(to_model(aug(x, g_aug))), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            correct = 0
            fm = fold_batchnorm(model)  # frozen, BN folded: the model is fixed for this pass
            for idx in batches(n, p.noise_batch_size, None, drop_last=False):
                x = train.float_batch(idx, dev)
                y = train.y[idx].to(dev)

                def objective(xa: torch.Tensor, y: torch.Tensor = y, fm: torch.nn.Module = fm) -> torch.Tensor:
                    with autocast(ctx):
                        return F.cross_entropy(fm(to_model(aug(xa, g_aug))).float(), y)

                d = pgd(objective, x, delta[idx].to(dev), eps=p.eps, alpha=alpha, steps=p.steps)
                delta[idx] = d.cpu()
                with torch.no_grad(), autocast(ctx):
                    correct += int((fm(to_model(x + d)).argmax(1) == y).sum())
            history.append(round(correct / n, 4))
            ctx.log(f"aue: epoch {epoch + 1}/{p.epochs}: train accuracy on x+delta {history[-1]:.4f}")
        return Poison(
            x=release(train.x, delta),
            delta=delta,
            kind="samplewise",
            meta={"train_accuracy": history, "alpha": alpha},
        )


PLUGINS = [AUE]
