"""Orthogonal Projection (Sandoval-Segura et al., NeurIPS 2023): remove the directions a linear
model learns from the poisoned training set, so a network cannot use class-wise shortcuts."""

from __future__ import annotations

import torch
from pydantic import Field

from benchmark import Defense, ImageDataset, Params, RunContext


def fit_linear(train: ImageDataset, epochs: int, lr: float, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """Train a bias-free linear classifier ``W`` [K, D] on the flattened images (float in [0, 1],
    no augmentation, no normalization) with cross-entropy and plain SGD, batches in dataset order,
    the learning rate divided by 10 at 50 % and 75 % of the epochs. ``W`` starts uniform in
    ``+-1/sqrt(D)`` (``nn.Linear``'s default) drawn from ``generator``."""
    n, d, k = len(train), train.x[0].numel(), train.num_classes
    bound = 1.0 / d**0.5
    w = (torch.rand(k, d, generator=generator) * 2 - 1).mul_(bound).requires_grad_(True)
    opt = torch.optim.SGD([w], lr=lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [int(epochs * 0.5), int(epochs * 0.75)])
    for _ in range(epochs):
        for s in range(0, n, batch_size):
            idx = torch.arange(s, min(s + batch_size, n))
            x = train.float_batch(idx).flatten(1)
            loss = torch.nn.functional.cross_entropy(x @ w.T, train.y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
    return w.detach()


def project_out(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``x - Q Q^T x`` for every row of ``x`` [N, D], where ``Q`` [D, K] is an orthonormal basis
    of the span of ``w``'s rows (QR of the row-normalized ``w^T``), computed in float64."""
    v = w.double()
    q, _ = torch.linalg.qr((v / v.norm(dim=1, keepdim=True)).T)
    xd = x.double()
    return (xd - (xd @ q) @ q.T).to(x.dtype)


class OrthogonalProjection(Defense):
    """Orthogonal Projection: learn a linear model on the (poisoned) training set, then project
    every training image onto the orthogonal complement of the model's K class directions.

    Paper: Sandoval-Segura, Singla, Geiping, Goldblum, Goldstein, "What Can We Learn from
    Unlearnable Datasets?", NeurIPS 2023, Section 4.4 (Algorithm 1). Threat model: the defender
    holds only the poisoned training set; class-wise perturbations (LSP, OPS, CP) are linearly
    separable, so the learned directions are the perturbations and projecting them out removes
    them. Sample-wise perturbations (EM, TAP) are not expected to be removed.

    Source followed: github.com/psandovalsegura/learn-from-unlearnable,
    ``orthogonal_projection_step_1.py`` (linear model: no bias, SGD lr 0.1 without momentum,
    batch 1024 in dataset order, 20 epochs, MultiStepLR at 50 % / 75 %) and
    ``utils_projection.project_data(..., use_q_matrix=True)`` (QR of the normalized weights).

    Stage ``data``: uint8 ``[N, C, H, W]`` -> uint8 ``[N, C, H, W]``, same labels and indices;
    applies to every victim. Deterministic: the linear model's initial weights come from
    ``ctx.generator(0)``.

    Deviations: (1) uebench releases uint8 images, the official code trains on the float
    projection; the projected set is mapped to [0, 1] by one affine map (its global min and max)
    and rounded: a global affine map changes nothing a network with input normalization can
    learn, the rounding adds at most half a level of the rescaled range. (2) The official victim
    trains with strong augmentation and CutMix after projecting; here the victim is the matrix's,
    so the defense is measured alone. (3) ``quick`` uses batch 128 so that 5k images get about the
    paper's number of SGD steps (20 epochs x 40 vs 20 x 49).
    """

    name = "ortho-proj"
    version = "1"
    stage = "data"

    class Params(Params):
        epochs: int = Field(20, ge=1, description="epochs of the linear model")
        lr: float = Field(0.1, gt=0, description="SGD learning rate of the linear model")
        batch_size: int = Field(1024, ge=1, description="batch size of the linear model")

    profiles = {"quick": {"batch_size": 128}, "smoke": {"epochs": 2, "batch_size": 256}}

    def transform(self, train: ImageDataset, ctx: RunContext) -> ImageDataset:
        p = self.params
        w = fit_linear(train, p.epochs, p.lr, p.batch_size, ctx.generator(0))
        x = project_out(train.x.flatten(1).float().div(255), w)
        lo, hi = x.min(), x.max()
        x = (x - lo).div_((hi - lo).clamp_min(1e-12)).mul_(255).round_().to(torch.uint8)
        return ImageDataset(x.view_as(train.x), train.y, train.classes, train.index)
