"""Adversarial poisoning against a frozen reference classifier: the crafting loop TAP (Fowl et al.,
NeurIPS 2021) and T-AAP / UT-AAP (Wang, Zhu & Gao, NeurIPS 2024) share.

For each batch of the training set (in index order, so ``delta[idx]`` is aligned with the dataset
index), ``steps`` signed L-inf PGD steps on ``delta`` with a fresh per-sample random augmentation
drawn every step, the model in eval mode:

* targeted: minimize CE(f(aug(x + delta)), (y + shift) mod K);
* untargeted: maximize CE(f(aug(x + delta)), y) (the core's :func:`pgd` minimizes its negative).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.data.dataset import ImageDataset
from benchmark.folding import fold_batchnorm
from benchmark.interfaces import RunContext
from benchmark.training import Augment, autocast, batches, pgd, to_model


def shifted_labels(y: torch.Tensor, num_classes: int, shift: int = 1) -> torch.Tensor:
    """The targeted-poisoning label map ``y -> (y + shift) mod K`` (TAP's ``_label_map``, AAP's
    ``--label-translation``)."""
    return (y + shift) % num_classes


def adversarial_loss(
    model: nn.Module,
    y: torch.Tensor,
    num_classes: int,
    ctx: RunContext,
    *,
    targeted: bool,
    shift: int = 1,
    augment: Augment | None = None,
    generator: torch.Generator | None = None,
) -> Any:
    """The loss PGD *minimizes*, as a function of the perturbed batch ``[B,C,H,W]`` in [0, 1]."""
    target = shifted_labels(y, num_classes, shift) if targeted else y
    sign = 1.0 if targeted else -1.0

    def loss(x: torch.Tensor) -> torch.Tensor:
        if augment is not None:
            assert generator is not None
            x = augment(x, generator)
        with autocast(ctx):
            logits = model(to_model(x)).float()
        return sign * F.cross_entropy(logits, target)

    return loss


def craft(
    model: nn.Module,
    train: ImageDataset,
    ctx: RunContext,
    *,
    eps: float,
    alpha: float,
    steps: int,
    batch_size: int,
    targeted: bool,
    augment: Augment | None,
    init: Literal["zero", "randn"] = "zero",
    shift: int = 1,
    restarts: int = 1,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Sample-wise ``delta`` ``[N, C, H, W]`` (float32, CPU) and crafting statistics.

    ``init``: ``zero`` (AAP) or ``randn`` (TAP: ``randn * eps`` clamped to the ball and the box).
    Statistics (no augmentation, on the float ``x + delta``): ``final_loss`` (the mean PGD
    objective on the final ``delta``) and ``target_rate`` (fraction classified as the target for
    targeted crafting, misclassified for untargeted).

    ``restarts`` > 1 (TAP's ``--restarts``, forgemaster_base ``_forge``): the whole crafting runs
    that many times from fresh initializations and augmentation draws, and the ``delta`` with the
    lowest mean objective *under the crafting augmentation* on its final value is kept (the
    official code scores a restart by its augmented target loss of the last pass);
    ``restart_losses`` lists every restart's score.
    """
    g_init, g_aug = ctx.generator("adversarial.init"), ctx.generator("adversarial.augment")
    args: dict[str, Any] = {"eps": eps, "alpha": alpha, "steps": steps, "batch_size": batch_size, "targeted": targeted, "augment": augment, "init": init, "shift": shift}
    if restarts <= 1:
        return _craft_once(model, train, ctx, g_init, g_aug, **args)
    best: tuple[float, torch.Tensor, dict[str, Any]] | None = None
    scores = []
    for r in range(restarts):
        delta, stats = _craft_once(model, train, ctx, g_init, g_aug, **args)
        score = _augmented_loss(model, train, ctx, delta, batch_size, targeted, shift, augment)
        scores.append(round(score, 4))
        ctx.log(f"craft: restart {r + 1}/{restarts}, augmented target loss {score:.4f}")
        if best is None or score < best[0]:
            best = (score, delta, stats)
    assert best is not None
    return best[1], {**best[2], "restart_losses": scores, "restart": scores.index(round(best[0], 4))}


@torch.no_grad()
def _augmented_loss(
    model: nn.Module, train: ImageDataset, ctx: RunContext, delta: torch.Tensor, batch_size: int, targeted: bool, shift: int,
    augment: Augment | None,
) -> float:
    """Mean PGD objective on ``clamp(x + delta)`` through one draw of the crafting augmentation
    (its own generator, so the crafting streams are untouched)."""
    g = ctx.generator("adversarial.restart-score")
    fm = fold_batchnorm(model)
    total = 0.0
    for idx in batches(len(train), batch_size, None, drop_last=False):
        x = train.float_batch(idx, ctx.device)
        y = train.y[idx].to(ctx.device)
        loss = adversarial_loss(fm, y, train.num_classes, ctx, targeted=targeted, shift=shift, augment=augment, generator=g)
        total += float(loss((x + delta[idx].to(ctx.device)).clamp(0, 1))) * len(idx)
    return total / len(train)


def _craft_once(
    model: nn.Module,
    train: ImageDataset,
    ctx: RunContext,
    g_init: torch.Generator,
    g_aug: torch.Generator,
    *,
    eps: float,
    alpha: float,
    steps: int,
    batch_size: int,
    targeted: bool,
    augment: Augment | None,
    init: Literal["zero", "randn"],
    shift: int,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """One crafting pass over the data (see :func:`craft`)."""
    n, k, dev = len(train), train.num_classes, ctx.device
    delta = torch.zeros(train.x.shape, dtype=torch.float32)
    if init == "randn":
        delta = (torch.randn(train.x.shape, generator=g_init) * eps).clamp_(-eps, eps)
    hits, loss_sum = 0, 0.0
    fm = fold_batchnorm(model)  # frozen, BN folded: the model is fixed for this pass
    for i, idx in enumerate(batches(n, batch_size, None, drop_last=False)):
        x = train.float_batch(idx, dev)
        y = train.y[idx].to(dev)
        d0 = ((x + delta[idx].to(dev)).clamp(0, 1) - x)
        loss = adversarial_loss(fm, y, k, ctx, targeted=targeted, shift=shift, augment=augment, generator=g_aug)
        d = pgd(loss, x, d0, eps=eps, alpha=alpha, steps=steps)
        delta[idx] = d.cpu()
        with torch.no_grad(), autocast(ctx):
            pred = fm(to_model(x + d)).argmax(1)
            plain = adversarial_loss(fm, y, k, ctx, targeted=targeted, shift=shift)(x + d)
        goal = shifted_labels(y, k, shift) if targeted else y
        hits += int((pred == goal).sum()) if targeted else int((pred != goal).sum())
        loss_sum += float(plain) * len(idx)
        if (i + 1) % 5 == 0:
            ctx.log(f"craft: {min(n, (i + 1) * batch_size)}/{n} images, success {hits / min(n, (i + 1) * batch_size):.3f}")
    return delta, {"target_rate": round(hits / n, 4), "final_loss": round(loss_sum / n, 4)}
