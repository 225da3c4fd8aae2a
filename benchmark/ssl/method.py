"""The SSL pretraining loop shared by the contrastive victims (and, later, contrastive attacks)."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import torch
from torch import nn

from benchmark.augment import contrastive_view
from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import RunContext
from benchmark.models.classifier import Classifier
from benchmark.recipe import Recipe
from benchmark.ssl.schedule import warmup_cosine
from benchmark.trace import EpochEvent
from benchmark.training import autocast, batches, resident, to_model


class SSLMethod(nn.Module):
    """One self-supervised objective around an encoder.

    ``encoder`` is a :class:`Classifier` (its ``features`` normalize the [0, 1] input, then run the
    backbone: ``[B, C, H, W] -> [B, feature_dim]``; its ``head`` is unused until the probe).
    ``forward(x1, x2, y)`` takes two augmented views ``[B, C, H, W]`` and labels ``[B]`` and returns
    the scalar loss. ``after_step(step, total)`` runs after each optimizer step (EMA, queue).
    ``param_groups()`` lists what the optimizer trains (targets excluded); a group with
    ``fixed_lr=True`` is not scheduled (SimSiam's predictor).
    """

    def __init__(self, encoder: Classifier) -> None:
        super().__init__()
        self.encoder = encoder

    @abstractmethod
    def forward(self, x1: torch.Tensor, x2: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...

    def after_step(self, step: int, total_steps: int) -> None:
        return None

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]


class PretrainRecipe(Recipe):
    """SGD pretraining: momentum, weight decay, linear warm-up from ``warmup_from x lr``, cosine to
    ``lr x min_lr_ratio``; two views per image from :func:`~benchmark.augment.contrastive_view`."""

    epochs: int = 1000
    batch_size: int = 512
    lr: float = 0.5
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_epochs: int = 10
    warmup_from: float = 0.02
    min_lr_ratio: float = 1e-3
    crop_scale: tuple[float, float] = (0.2, 1.0)
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)
    p_jitter: float = 0.8
    p_gray: float = 0.2


def pretrain(method: SSLMethod, data: ImageDataset, recipe: PretrainRecipe, ctx: RunContext, desc: str = "ssl") -> SSLMethod:
    """Train ``method`` on ``data`` (uint8 ``[N, C, H, W]``): shuffled drop-last batches, two
    per-sample-random views of each image (batched tensor ops), SGD with the recipe's schedule."""
    g = ctx.generator("ssl.pretrain")
    bs = min(recipe.batch_size, len(data))
    steps = len(data) // bs
    total = recipe.epochs * steps
    groups = method.param_groups()
    opt = torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    f = warmup_cosine(total, recipe.warmup_epochs * steps, recipe.warmup_from, recipe.min_lr_ratio)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, [(lambda t: 1.0) if gr.get("fixed_lr") else f for gr in groups])
    view: dict[str, Any] = {"scale": recipe.crop_scale, "jitter": recipe.jitter, "p_jitter": recipe.p_jitter, "p_gray": recipe.p_gray}
    data = resident(data, ctx.device)
    method.train()
    step = 0
    for epoch in range(recipe.epochs):
        loss_sum = torch.zeros((), device=ctx.device)  # no host sync per step
        for idx in batches(len(data), bs, g, True, data.x.device):
            x = data.float_batch(idx, ctx.device)
            y = data.y[idx].to(ctx.device, non_blocking=True)
            with torch.no_grad():
                x1, x2 = contrastive_view(x, g, **view), contrastive_view(x, g, **view)
            with autocast(ctx):
                loss = method(to_model(x1), to_model(x2), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            method.after_step(step, total)
            loss_sum += loss.detach().float()
        mean_loss = float(loss_sum) / max(1, steps)  # one host sync per epoch
        ctx.trace.emit(EpochEvent("pretrain", epoch + 1, recipe.epochs, mean_loss, lr=opt.param_groups[0]["lr"], model=method.encoder))
        if epoch == recipe.epochs - 1 or (epoch + 1) % max(1, recipe.epochs // 10) == 0:
            ctx.log(f"{desc}: epoch {epoch + 1}/{recipe.epochs} loss {mean_loss:.4f}")
    method.eval()
    return method
