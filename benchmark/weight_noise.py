"""Gaussian noise on a model's weights, and the parameters as one point in space: the machinery of
PUE (Wang, Xue, Li, Camtepe & Zhu, "Provably Unlearnable Data Examples", NDSS 2025;
NeuralSec/certified-data-learnability ``trainer.py``, ``toolbox.py``, ``certify.py``) that the
``pue`` attack, the ``certified-learnability`` metric and the ``recovery`` defense share.

*Parameters* are every tensor of ``model.parameters()`` (conv, linear, BatchNorm affine), in
registration order; buffers (BatchNorm running statistics) never get noise and never count in a
distance. Noise is absolute: ``theta + sigma * N(0, I)``.

- :func:`add_noise_` / :func:`perturbed`: add noise in place and put the exact trained values back
  (from a copy, never by subtracting the noise: nothing drifts over thousands of draws);
- :func:`noise_levels`: PUE's training curriculum ``0, step, 2 step, ..., sigma``;
- :func:`robust_step` (``Trainer.train_batch_robust``) and :func:`train_robust` (epochs of it):
  training with gradients averaged over weight draws at each curriculum level;
- :func:`noisy_input_grad` (the inner sum of ``min_min_attack_robust``): an input gradient summed
  over weight draws;
- :func:`snapshot`, :func:`distance`, :func:`project_`: the parameter vector, the L2 distance
  between two of them, and the rescaling of ``theta - theta0`` onto the eta-sphere (or into the
  ball) of ``recover.py``'s ``project``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import RunContext
from benchmark.trace import EpochEvent
from benchmark.training import Augment, SGDRecipe, autocast, batches, lr_lambda, make_optimizer, resident, to_model

#: The ``Poison.meta`` key under which an attack lists the weight-noise levels its released
#: surrogate was trained with (PUE's online certification surrogate). A certificate assumes such a
#: noise-robust surrogate: the ``certified-learnability`` metric certifies an attack's own surrogate
#: only when its meta has this key (TAP's and AAP's clean reference models are not certified).
ROBUST_SURROGATE_LEVELS = "noise_levels"


def parameters(model: nn.Module) -> list[nn.Parameter]:
    """Every parameter tensor of ``model`` (``named_parameters()`` order, shared ones once)."""
    return [p for _, p in model.named_parameters()]


def device_generator(device: torch.device, seed: int) -> torch.Generator:
    """A generator on ``device`` seeded with ``seed``: noise drawn where the weights live (no host
    copies; reproducible per device type)."""
    return torch.Generator(device=device).manual_seed(seed)


@torch.no_grad()
def add_noise_(params: list[nn.Parameter] | list[torch.Tensor], sigma: float, generator: torch.Generator | None) -> None:
    """``p += sigma * N(0, I)`` for each tensor in order, one ``randn`` of ``p``'s shape each, drawn
    from ``generator`` (on ``p``'s device). ``sigma == 0`` draws nothing."""
    if sigma == 0:
        return
    for p in params:
        p.add_(torch.randn(p.shape, generator=generator, device=p.device, dtype=p.dtype), alpha=sigma)


@torch.no_grad()
def snapshot(model: nn.Module) -> list[torch.Tensor]:
    """Detached copies of the parameters (the point to restore, or the origin of a ball)."""
    return [p.detach().clone() for p in parameters(model)]


@torch.no_grad()
def restore_(model: nn.Module, saved: list[torch.Tensor]) -> None:
    """Put the values of :func:`snapshot` back, bit-exactly."""
    for p, s in zip(parameters(model), saved, strict=True):
        p.copy_(s)


@contextlib.contextmanager
def perturbed(model: nn.Module, sigma: float, generator: torch.Generator | None) -> Iterator[nn.Module]:
    """Inside the block ``model``'s parameters are ``theta + sigma * N(0, I)`` (in place, so a
    backward pass inside the block gives the gradient at the noisy point and accumulates it into
    ``p.grad``); on exit the exact ``theta`` is copied back. ``sigma == 0``: nothing changes."""
    if sigma == 0:
        yield model
        return
    saved = snapshot(model)
    add_noise_(parameters(model), sigma, generator)
    try:
        yield model
    finally:
        restore_(model, saved)


def noise_levels(sigma: float, step: float = 0.05) -> tuple[float, ...]:
    """PUE's curriculum: ``j * step`` for ``j = 0 .. floor(sigma / step)`` (``trainer.py``:
    ``times = int(robust_noise / robust_noise_step) + 1``; the floor here forgives float rounding,
    so 0.3 / 0.1 gives 4 levels where ``int`` would give 3). ``sigma`` 0.25, step 0.05: (0, 0.05,
    0.1, 0.15, 0.2, 0.25)."""
    if sigma < 0 or step <= 0:
        raise ValueError("noise levels need sigma >= 0 and step > 0")
    top = math.floor(sigma / step + 1e-9)
    return tuple(round(j * step, 12) for j in range(top + 1))


Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def robust_step(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    ctx: RunContext,
    *,
    levels: tuple[float, ...],
    draws: int,
    generator: torch.Generator | None,
    grad_clip: float | None = 5.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One training batch of ``Trainer.train_batch_robust``: for each level ``s`` in ``levels``,
    zero the gradients, then ``draws`` times {add ``s * N(0, I)`` to every parameter, back-propagate
    ``CE / (len(levels) * draws)``, clip the accumulated gradient to ``grad_clip``, restore the
    parameters}, then one optimizer step. So one batch makes ``len(levels)`` optimizer steps.

    ``model`` is in the caller's mode (train mode: BatchNorm uses batch statistics and updates its
    running statistics at every forward, as in the official code). The draws of level 0 are all the
    noiseless model: it is evaluated once with weight ``1 / len(levels)`` (the same gradient, also
    after clipping; BatchNorm's running statistics take one update there instead of ``draws``).
    Returns ``(loss, logits)`` of the last forward pass (detached).
    """
    scale = 1.0 / (len(levels) * draws)
    loss = logits = torch.zeros(())
    for s in levels:
        opt.zero_grad(set_to_none=True)
        n = 1 if s == 0 else draws
        w = scale * (draws if s == 0 else 1)
        for _ in range(n):
            with perturbed(model, s, generator):
                with autocast(ctx):
                    logits = model(to_model(x)).float()
                loss = F.cross_entropy(logits, y)
                (loss * w).backward()
            if grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
    return loss.detach(), logits.detach()


def noisy_input_grad(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    sigma: float,
    draws: int,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """``sum_k grad_x loss_fn(theta + xi_k, x)`` over ``draws`` weight draws ``xi_k ~ N(0, sigma^2 I)``
    (``toolbox.min_min_attack_robust``'s accumulation; its sign is what a signed step uses, so the
    sum and the mean step alike). ``sigma == 0``: one noiseless gradient (the ``draws`` identical
    terms have the same sign). ``loss_fn(model, x)`` returns a scalar; ``model`` keeps its mode
    (eval mode, frozen parameters in PUE's noise step). Returns a tensor shaped like ``x``."""
    x = x.detach().requires_grad_(True)
    total = torch.zeros_like(x)
    for _ in range(1 if sigma == 0 else draws):
        with perturbed(model, sigma, generator):
            (g,) = torch.autograd.grad(loss_fn(model, x), x)
        total += g
    return total


def train_robust(
    model: nn.Module,
    data: ImageDataset,
    recipe: SGDRecipe,
    ctx: RunContext,
    *,
    levels: tuple[float, ...],
    draws: int,
    seed: int,
    augment: Augment | None,
    desc: str = "robust",
) -> nn.Module:
    """``recipe.epochs`` epochs of :func:`robust_step` over shuffled batches of ``data`` (the
    official ``Trainer.train(..., pue=True)``): per batch, uint8 -> float on the device ->
    ``augment`` -> ``len(levels)`` noise-averaged optimizer steps (``levels=(0.0,)`` is exactly
    :func:`~benchmark.training.train_supervised` with grad clipping). The recipe's lr schedule advances
    once per batch (cosine over the epochs, as the official per-epoch ``CosineAnnealingLR`` but per
    batch), ``recipe.grad_clip`` clips after every draw. Weight noise comes from a generator on
    ``ctx.device`` seeded with ``seed``; the batch order and augmentation from ``ctx.generator``.
    Emits one ``EpochEvent("robust", ...)`` per epoch on ``ctx.trace``. Returns ``model`` in eval mode.
    """
    g = ctx.generator("train")  # the stream train_supervised uses: one level, one draw = its exact steps
    noise = device_generator(ctx.device, seed)
    opt = make_optimizer(model.parameters(), recipe)
    steps = len(list(batches(len(data), recipe.batch_size, None, recipe.drop_last)))
    lam = lr_lambda(recipe, steps)
    data = resident(data, ctx.device)
    model.train()
    t = 0
    for epoch in range(recipe.epochs):
        loss_sum = torch.zeros((), device=ctx.device)
        correct = torch.zeros((), dtype=torch.long, device=ctx.device)
        total = 0
        for idx in batches(len(data), recipe.batch_size, g, recipe.drop_last, data.x.device):
            for group in opt.param_groups:
                group["lr"] = recipe.lr * lam(t)
            x = data.float_batch(idx, ctx.device)
            y = data.y[idx].to(ctx.device, non_blocking=True)
            if augment is not None:
                x = augment(x, g)
            loss, logits = robust_step(model, opt, x, y, ctx, levels=levels, draws=draws, generator=noise, grad_clip=recipe.grad_clip)
            loss_sum += loss * len(idx)
            correct += (logits.argmax(1) == y).sum()
            total += len(idx)
            t += 1
        mean_loss = float(loss_sum) / max(1, total)  # one host sync per epoch
        ctx.trace.emit(EpochEvent(desc, epoch + 1, recipe.epochs, mean_loss, int(correct) / max(1, total), opt.param_groups[0]["lr"], model))
        if epoch == recipe.epochs - 1 or (epoch + 1) % max(1, recipe.epochs // 5) == 0:
            ctx.log(f"{desc}: epoch {epoch + 1}/{recipe.epochs} loss {mean_loss:.4f}")
    model.eval()
    return model


# ------------------------------------------------------------------------------ parameter space


def distance(model: nn.Module, origin: list[torch.Tensor]) -> torch.Tensor:
    """``||theta - theta0||_2`` over all parameters concatenated (a 0-dim tensor on the device: no
    host sync). ``origin`` is a :func:`snapshot`."""
    sq = [(p.detach().float() - o.float()).pow(2).sum() for p, o in zip(parameters(model), origin, strict=True)]
    return torch.stack(sq).sum().sqrt()


@torch.no_grad()
def project_(model: nn.Module, origin: list[torch.Tensor], eta: float, onto: Literal["sphere", "ball"] = "sphere") -> torch.Tensor:
    """Rescale ``theta - theta0`` to L2 norm ``eta`` (``onto="sphere"``: always, as
    ``trainer.project`` of the official recovery attack; ``"ball"``: only when it is longer).
    A model at its origin, or inside the ball, is left bit-exactly as it is (the official code
    divides by zero at the origin). Returns the distance before the projection (a 0-dim device tensor)."""
    d = distance(model, origin)
    factor = eta / d.clamp_min(1e-30)
    keep = d == 0  # decided on the device: no host sync per step
    if onto == "ball":
        keep = keep | (factor >= 1)
    for p, o in zip(parameters(model), origin, strict=True):
        p.copy_(torch.where(keep, p, o + (p - o) * factor.to(p.dtype)))
    return d
