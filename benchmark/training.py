"""Shared training loops: supervised epochs, evaluation, signed-gradient PGD on inputs, schedules.

All loops read uint8 data from an :class:`ImageDataset`, convert one batch at a time to float on
the device (no float copy of the dataset), augment it batched, and run the model in channels_last
with bf16 autocast on CUDA (and wherever the matrix's ``precision`` asks for it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.augment import Augment, crop_flip
from benchmark.data.dataset import ImageDataset
from benchmark.folding import fold_batchnorm
from benchmark.interfaces import RunContext, TrainHooks
from benchmark.recipe import Recipe
from benchmark.trace import EpochEvent


class SGDRecipe(Recipe):
    """An SGD training recipe (the CIFAR standard: lr 0.1, momentum 0.9, wd 5e-4, batch 128, cosine);
    a plugin builds it with :meth:`~benchmark.recipe.Recipe.from_params`."""

    epochs: int = 200
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    schedule: Literal["cosine", "multistep", "constant"] = "cosine"
    milestones: tuple[float, ...] = ()  # epochs, for "multistep"
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    grad_clip: float | None = None
    drop_last: bool = True


def autocast(ctx: RunContext) -> torch.autocast | nullcontext:
    return torch.autocast(ctx.device.type, dtype=torch.bfloat16) if ctx.amp else nullcontext()


def to_model(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


#: a dataset is kept on an accelerator when its uint8 images take at most this share of its memory
RESIDENT_SHARE = 0.25


def resident(data: ImageDataset, device: torch.device) -> ImageDataset:
    """``data`` on ``device`` for a hot loop on an accelerator: batches are then gathered on the
    device, and no step copies from pageable host memory (each such copy waits for the GPU, which
    keeps the host from queueing work ahead). CPU, or images over :data:`RESIDENT_SHARE` of the
    device memory: ``data`` unchanged (batches are copied per step)."""
    if device.type != "cuda":
        return data
    if data.x.numel() > RESIDENT_SHARE * torch.cuda.get_device_properties(device).total_memory:
        return data
    return data.to(device)


def batches(
    n: int, batch_size: int, generator: torch.Generator | None, drop_last: bool, device: torch.device | None = None
) -> Iterator[torch.Tensor]:
    """Index batches over ``range(n)``: shuffled with ``generator`` (a CPU generator: the same order
    on every device), in order without one; on ``device`` (one copy per pass, not one per batch)."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    if device is not None:
        order = order.to(device)
    stop = n - n % batch_size if (drop_last and n >= batch_size) else n
    for s in range(0, stop, batch_size):
        yield order[s : s + batch_size]


def lr_lambda(recipe: SGDRecipe, steps_per_epoch: int) -> Callable[[int], float]:
    """Multiplier of the base lr at optimizer step ``t``: linear warm-up, then the schedule."""
    total = max(1, recipe.epochs * steps_per_epoch)
    warm = int(recipe.warmup_epochs * steps_per_epoch)

    def f(t: int) -> float:
        if t < warm:
            return (t + 1) / warm
        if recipe.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (t - warm) / max(1, total - warm))))
        if recipe.schedule == "multistep":
            epoch = t / steps_per_epoch
            return recipe.gamma ** sum(epoch >= m for m in recipe.milestones)
        return 1.0

    return f


def make_optimizer(params: Iterator[nn.Parameter] | list, recipe: SGDRecipe) -> torch.optim.SGD:
    return torch.optim.SGD(
        params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay, nesterov=recipe.nesterov
    )


def train_supervised(
    model: nn.Module,
    data: ImageDataset,
    recipe: SGDRecipe,
    ctx: RunContext,
    *,
    hooks: TrainHooks | None = None,
    augment: Augment | None = crop_flip,
    desc: str = "train",
) -> nn.Module:
    """Cross-entropy training of ``model`` (input [0,1] pixels) on ``data`` for ``recipe.epochs``.

    Per step: a shuffled batch of uint8 images -> float on the device -> ``augment`` -> the
    defense's ``hooks.loss`` -> SGD step with the recipe's schedule and optional grad clipping.
    """
    hooks = hooks or TrainHooks()
    g = ctx.generator("train")
    opt = make_optimizer(model.parameters(), recipe)
    steps = len(list(batches(len(data), recipe.batch_size, None, recipe.drop_last)))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(recipe, steps))
    data = resident(data, ctx.device)
    model.train()
    for epoch in range(recipe.epochs):
        total = 0
        loss_sum = torch.zeros((), device=ctx.device)  # accumulated on the device: no host sync per step
        correct = torch.zeros((), dtype=torch.long, device=ctx.device)
        predicted = 0
        last: list[tuple[torch.Tensor, int]] = []

        def criterion(logits: torch.Tensor, target: torch.Tensor, *, last: list[tuple[torch.Tensor, int]] = last) -> torch.Tensor:
            # remembers the predictions of the last call of the step: the batch the model trains on
            # (a hook may call it before, e.g. inside an attack on the inputs)
            last[:] = [((logits.detach().argmax(1) == target).sum(), len(target))]
            return F.cross_entropy(logits, target)

        for idx in batches(len(data), recipe.batch_size, g, recipe.drop_last, data.x.device):
            x = data.float_batch(idx, ctx.device)
            y = data.y[idx].to(ctx.device, non_blocking=True)
            if augment is not None:
                x = augment(x, g)
            with autocast(ctx):
                loss = hooks.loss(model, to_model(x), y, criterion)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if recipe.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
            opt.step()
            sched.step()
            loss_sum += loss.detach().float() * len(idx)
            total += len(idx)
            if last:
                correct += last[0][0]
                predicted += last[0][1]
        mean_loss = float(loss_sum) / max(1, total)  # one host sync per epoch
        acc = int(correct) / predicted if predicted else math.nan
        ctx.trace.emit(EpochEvent("supervised", epoch + 1, recipe.epochs, mean_loss, acc, opt.param_groups[0]["lr"], model))
        if epoch == recipe.epochs - 1 or (epoch + 1) % max(1, recipe.epochs // 5) == 0:
            ctx.log(f"{desc}: epoch {epoch + 1}/{recipe.epochs} loss {mean_loss:.4f}")
    model.eval()
    return model


def eval_batch_size(device: torch.device) -> int:
    """Batch size for inference passes: 1024 on CUDA; 256 on a CPU, where activations that fit the
    caches make a small-CNN pass faster than at 1024."""
    return 1024 if device.type == "cuda" else 256


@torch.no_grad()
def predict_logits(model: nn.Module, data: ImageDataset, ctx: RunContext, batch_size: int | None = None) -> torch.Tensor:
    """Logits ``[N, K]`` (float32, CPU) of ``model`` in eval mode, computed on a copy with BatchNorm
    folded into the convolutions (:func:`benchmark.folding.fold_batchnorm`: the same function,
    2.3x faster on a CPU). ``model`` is left as it was."""
    net = fold_batchnorm(model)
    data = resident(data, ctx.device)
    out = []
    for idx in batches(len(data), batch_size or eval_batch_size(ctx.device), None, False, data.x.device):
        with autocast(ctx):
            out.append(net(to_model(data.float_batch(idx, ctx.device))).float())
    return torch.cat(out).cpu()  # one copy back, not one per batch


def accuracy(model: nn.Module, data: ImageDataset, ctx: RunContext, batch_size: int | None = None) -> float:
    """Top-1 accuracy in [0, 1] of ``model`` on ``data`` (eval mode, no augmentation)."""
    return (predict_logits(model, data, ctx, batch_size).argmax(1) == data.y).float().mean().item()


def pgd(
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    delta: torch.Tensor,
    *,
    eps: float,
    alpha: float,
    steps: int,
) -> torch.Tensor:
    """L-inf projected signed-gradient descent on an input perturbation.

    ``x`` ``[B,C,H,W]`` in [0,1], ``delta`` its starting perturbation. Each step computes
    ``loss_fn(clamp(x + delta, 0, 1))`` and moves ``delta <- delta - alpha * sign(grad)`` (to
    *maximize* a loss, pass its negative), then projects onto the eps-ball and the image box.
    Returns the new ``delta`` (detached).
    """
    delta = delta.detach().clone()
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = loss_fn((x + delta).clamp(0, 1))
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta = (delta - alpha * grad.sign()).clamp_(-eps, eps)
            delta = (x + delta).clamp_(0, 1) - x
    return delta.detach()


class frozen:
    """Context manager: ``model`` in eval mode with parameters not requiring grad (for noise steps)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self) -> nn.Module:
        self.mode = self.model.training
        self.flags = [p.requires_grad for p in self.model.parameters()]
        self.model.eval().requires_grad_(False)
        return self.model

    def __exit__(self, *exc: object) -> None:
        for p, f in zip(self.model.parameters(), self.flags):
            p.requires_grad_(f)
        self.model.train(self.mode)
