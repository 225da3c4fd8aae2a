"""EM: error-minimizing noise (Huang, Ma, Erfani, Bailey & Wang, "Unlearnable Examples: Making
Personal Data Unexploitable", ICLR 2021)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from benchmark.data.dataset import ImageDataset
from benchmark.data.split import stratified_fraction
from benchmark.folding import fold_batchnorm
from benchmark.interfaces import Attack, Poison, RunContext, release
from benchmark.models import build_classifier
from benchmark.params import Params
from benchmark.training import autocast, batches, eval_batch_size, pgd, resident, to_model


def _cycle(n: int, batch_size: int, generator: torch.Generator | None, device: torch.device) -> Iterator[torch.Tensor]:
    """A persistent iterator over index batches that wraps around (EM's ``train_step`` loader)."""
    while True:
        yield from batches(n, batch_size, generator, drop_last=generator is not None, device=device)


class EM(Attack):
    """Sample-wise error-minimizing noise: a bi-level min-min optimization.

    Threat model: L-inf, ``eps`` = 8/255, sample-wise ``delta`` ``[N, C, H, W]`` indexed by dataset
    index. Loop (HanxunH/Unlearnable-Examples ``perturbation.py``): from delta = 0, repeat
    {``train_steps`` SGD steps (train mode, grad-clip 5) on x + delta over a persistent unshuffled
    iterator, no clamp; then for every batch of 512, ``steps`` PGD steps of ``alpha`` (eval mode)
    *minimizing* CE(f(clamp(x + delta)), y)} until the eval-mode accuracy on x + delta exceeds
    ``stop_accuracy`` (99%). The generator is a CIFAR ResNet-18 on unnormalized [0, 1] inputs.

    Differences from the official code, on purpose: the release keeps the negative half of the
    noise (the official loader clamps delta*255 to [0, 255] before adding, its issue #13), and
    ``max_outer`` bounds the loop (the official loop has no bound).
    """

    name = "em"
    mode: Literal["samplewise", "classwise"] = "samplewise"

    class Params(Params):
        eps: float = Field(8 / 255, ge=0, le=1)  # L-inf budget on [0, 1] pixels; 8/255 in the paper
        alpha: float = Field(0.8 / 255, gt=0, le=1)  # PGD step size on [0, 1] pixels; 0.8/255 in the paper
        steps: int = Field(20, ge=1)  # PGD steps per noise update
        train_steps: int = Field(10, ge=1)  # model steps per outer iteration
        batch_size: int = Field(512, ge=1)  # batch of the model steps and the noise pass
        stop_accuracy: float = Field(0.99, le=1)  # stop once the accuracy on x + delta exceeds this; 0.99 in the paper
        max_outer: int = Field(100, ge=1)  # cap on outer iterations (the official loop has none)
        arch: str = "resnet18"  # architecture of the generator model
        lr: float = Field(0.1, gt=0)  # generator SGD lr (constant)
        momentum: float = Field(0.9, ge=0, lt=1)  # generator SGD momentum
        weight_decay: float = Field(5e-4, ge=0)  # generator SGD weight decay
        grad_clip: float = Field(5.0, gt=0)  # max gradient norm of the generator's model steps
        random_start: bool = False  # start delta from U(-eps, eps) instead of 0

    profiles = {
        "quick": {"arch": "small-cnn", "steps": 10, "max_outer": 15},
        "smoke": {"arch": "small-cnn", "steps": 2, "max_outer": 2, "batch_size": 128},
    }

    # ------------------------------------------------------------------ shared by both modes
    def _generator_model(self, train: ImageDataset, ctx: RunContext) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        p = self.params
        c = train.shape[0]
        model = build_classifier(p.arch, c, train.num_classes, [0.0] * c, [1.0] * c, ctx.device)
        opt = torch.optim.SGD(model.parameters(), lr=p.lr, momentum=p.momentum, weight_decay=p.weight_decay)
        return model, opt

    def _model_steps(self, model: torch.nn.Module, opt: torch.optim.Optimizer, it: Iterator[torch.Tensor], batch: callable, ctx: RunContext) -> None:  # type: ignore[valid-type]
        model.train()
        for _ in range(self.params.train_steps):
            x, y = batch(next(it))
            with autocast(ctx):
                loss = F.cross_entropy(model(to_model(x)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.params.grad_clip)
            opt.step()

    def _pgd(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, delta: torch.Tensor, ctx: RunContext, steps: int) -> torch.Tensor:
        def loss(xa: torch.Tensor) -> torch.Tensor:
            with autocast(ctx):
                return F.cross_entropy(model(to_model(xa)).float(), y)

        return pgd(loss, x, delta, eps=self.params.eps, alpha=self.params.alpha, steps=steps)

    @torch.no_grad()
    def _accuracy(self, model: torch.nn.Module, idx_all: torch.Tensor, batch: callable, ctx: RunContext) -> float:  # type: ignore[valid-type]
        correct = torch.zeros((), dtype=torch.long, device=ctx.device)  # one host sync at the end
        bs = eval_batch_size(ctx.device)
        for s in range(0, len(idx_all), bs):
            x, y = batch(idx_all[s : s + bs])
            with autocast(ctx):
                correct += (model(to_model(x)).argmax(1) == y).sum()
        return int(correct) / len(idx_all)

    # --------------------------------------------------------------------------- sample-wise
    def generate(self, train: ImageDataset, ctx: RunContext) -> Poison:
        p = self.params
        dev = ctx.device
        n = len(train)
        model, opt = self._generator_model(train, ctx)
        # The one float copy EM needs (N x C x H x W float32, inherent to sample-wise noise) lives
        # on the device, so the noise pass moves no float data between host and device.
        delta = torch.zeros(train.x.shape, dtype=torch.float32)
        if p.random_start:
            delta.uniform_(-p.eps, p.eps, generator=ctx.generator("em.init"))
        delta = delta.to(dev)
        data = resident(train, dev)  # on an accelerator: batches gathered there, no per-step copies
        on = data.x.device

        def noisy(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return data.float_batch(idx, dev) + delta[idx.to(dev)], data.y[idx].to(dev)

        it = _cycle(n, p.batch_size, None, on)
        history: list[float] = []
        for outer in range(p.max_outer):
            self._model_steps(model, opt, it, noisy, ctx)
            fm = fold_batchnorm(model)  # frozen, BN folded: the model is fixed for this pass
            for idx in batches(n, p.batch_size, None, False, on):
                x = data.float_batch(idx, dev)
                y = data.y[idx].to(dev)
                i = idx.to(dev)
                delta[i] = self._pgd(fm, x, y, delta[i], ctx, p.steps)
            acc = self._accuracy(fm, torch.arange(n, device=on), noisy, ctx)
            history.append(round(acc, 4))
            ctx.log(f"em: outer iteration {outer + 1}: train accuracy on x+delta {acc:.4f}")
            if acc > p.stop_accuracy:
                break
        delta = delta.cpu()
        return Poison(
            x=release(train.x, delta),
            delta=delta,
            kind="samplewise",
            meta={"outer_iterations": len(history), "train_accuracy": history, "stopped": history[-1] > p.stop_accuracy},
        )


class EMClasswise(EM):
    """Class-wise error-minimizing noise: one ``delta`` ``[K, C, H, W]`` per class (Huang et al.,
    ICLR 2021, the class-wise setting). Threat model: L-inf, ``eps`` = 8/255, class-wise.

    As the official ``perturbation.py`` (``universal_perturbation`` with ``--use_subset``): each outer
    iteration runs ``train_steps`` model steps on x + delta[y] drawn from the *whole* training set,
    shuffled, then one pass over a stratified ``subset_fraction`` (20%) of it with ``steps`` = 1 PGD
    step per batch on per-sample copies of the class noise (drop-last); the new class noise is the
    mean of the per-sample results of that class in the batch, clipped to eps. Stops at 99%
    accuracy on the noisy subset. (Before 2026-12-07 the model steps drew from the subset too; at
    ``subset_fraction`` 1, the quick and smoke profiles, the two are the same poison, bit for bit,
    so the version was not bumped: recompute a paper-profile ``em-class`` poison made before.)
    ``random_start`` (off by default, as official) draws from the run's ``em.init`` stream since
    2026-12-07 (torch's global RNG before: another draw, equally valid; not bumped either).
    """

    name = "em-class"
    mode = "classwise"

    class Params(EM.Params):
        steps: int = Field(1, ge=1)
        # stratified share of the training set the noise is fitted and checked on
        subset_fraction: float = Field(0.2, gt=0, le=1)

    profiles = {
        "quick": {"arch": "small-cnn", "subset_fraction": 1.0, "max_outer": 20},
        "smoke": {"arch": "small-cnn", "max_outer": 2, "batch_size": 128, "subset_fraction": 1.0},
    }

    def generate(self, train: ImageDataset, ctx: RunContext) -> Poison:
        p = self.params
        dev = ctx.device
        k = train.num_classes
        sub = stratified_fraction(train.y, p.subset_fraction, ctx.seed)
        model, opt = self._generator_model(train, ctx)
        delta = torch.zeros((k, *train.shape), dtype=torch.float32)
        if p.random_start:  # seeded, as the sample-wise start (was the global RNG before 2026-12-07)
            delta.uniform_(-p.eps, p.eps, generator=ctx.generator("em.init"))
        delta = delta.to(dev)
        g = ctx.generator("em.classwise.batches")
        bs = min(p.batch_size, len(sub))
        data = resident(train, dev)
        on = data.x.device
        sub = sub.to(on)

        def noisy(pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            idx = sub[pos]
            y = data.y[idx].to(dev)
            return data.float_batch(idx, dev) + delta[y], y

        def noisy_train(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # the model steps' batches: any image
            y = data.y[idx].to(dev)
            return data.float_batch(idx, dev) + delta[y], y

        it = _cycle(len(train), min(p.batch_size, len(train)), g, on)
        history: list[float] = []
        for outer in range(p.max_outer):
            self._model_steps(model, opt, it, noisy_train, ctx)
            fm = fold_batchnorm(model)  # frozen, BN folded: the model is fixed for this pass
            for pos in batches(len(sub), bs, g, drop_last=True, device=on):
                idx = sub[pos]
                x = data.float_batch(idx, dev)
                y = data.y[idx].to(dev)
                d = self._pgd(fm, x, y, delta[y], ctx, p.steps)
                sums = torch.zeros_like(delta).index_add_(0, y, d)
                counts = torch.bincount(y, minlength=k)
                present = counts > 0
                delta[present] = (sums[present] / counts[present].view(-1, 1, 1, 1)).clamp(-p.eps, p.eps)
            acc = self._accuracy(fm, torch.arange(len(sub), device=on), noisy, ctx)
            history.append(round(acc, 4))
            ctx.log(f"em-class: outer iteration {outer + 1}: subset accuracy on x+delta {acc:.4f}")
            if acc > p.stop_accuracy:
                break
        delta = delta.cpu()
        return Poison(
            x=release(train.x, delta[train.y]),
            delta=delta,
            kind="classwise",
            meta={"outer_iterations": len(history), "train_accuracy": history, "stopped": history[-1] > p.stop_accuracy},
        )


PLUGINS = [EM, EMClasswise]
