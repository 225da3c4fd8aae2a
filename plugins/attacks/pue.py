"""PUE: provably unlearnable examples (Wang, Xue, Li, Camtepe & Zhu, "Provably Unlearnable Data
Examples", NDSS 2025)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from benchmark.data.dataset import ImageDataset
from benchmark.data.split import stratified_fraction
from benchmark.folding import fold_batchnorm
from benchmark.interfaces import Attack, Poison, RunContext, release
from benchmark.models import build_classifier
from benchmark.params import Params
from benchmark.training import autocast, batches, eval_batch_size, frozen, pgd, resident, to_model
from benchmark.weight_noise import ROBUST_SURROGATE_LEVELS, device_generator, noise_levels, noisy_input_grad, robust_step

Batch = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _cycle(n: int, batch_size: int, generator: torch.Generator | None, device: torch.device) -> Iterator[torch.Tensor]:
    """A persistent iterator over index batches that wraps around (the model phase's loader:
    shuffled and drop-last with a generator, in order without one)."""
    while True:
        yield from batches(n, batch_size, generator, drop_last=generator is not None, device=device)


class PUE(Attack):
    """Provably unlearnable examples: error-minimizing noise whose min-min game is played against a
    surrogate that is robust to random weight perturbations, so that the released data lower the
    *certified* (q, eta)-learnability of models trained on them, not only their accuracy.

    Threat model: L-inf, ``eps`` = 8/255; ``mode`` ``classwise`` (``delta`` ``[K, C, H, W]``, the
    official script) or ``samplewise`` (``[N, C, H, W]``, indexed by dataset index). Input: the clean
    training set, uint8 ``[N, C, H, W]``. Output: the poison and the trained generator as
    ``Poison.surrogate`` (the paper's "online certification surrogate"; the
    ``certified-learnability`` metric certifies it under its ``online_*`` keys).

    Loop (NeuralSec/certified-data-learnability ``make_pue.py`` with ``--pue``, ``toolbox.py``
    ``min_min_attack_robust``, ``trainer.py`` ``train_batch_robust``): EM's
    loop (class-wise: a stratified ``subset_fraction`` of the training set, shuffled, drop-last;
    sample-wise: the whole set in index order), from delta = 0, repeat {``train_steps`` model steps
    on x + delta (train mode, no clamp, grad-clip 5); one pass of ``steps`` PGD steps of ``alpha``
    (eval mode) minimizing CE(f(clamp(x + delta)), y), class-wise noise set to the per-class mean of
    the batch's results and clipped to eps; the eval-mode accuracy on x + delta (no weight noise)}
    until it exceeds ``stop_accuracy``. Once that accuracy has exceeded ``robust_switch`` (50%),
    permanently: every model step is ``train_batch_robust`` (per noise level 0, ``train_sigma_step``,
    ..., ``train_sigma``: the gradient averaged over ``model_draws`` weight draws, one optimizer
    step), and every PGD step becomes one signed step per noise level on the input gradient summed
    over ``input_draws`` (u_p) weight draws (:mod:`benchmark.weight_noise`). Generator: CIFAR
    ResNet-18 on unnormalized [0, 1] inputs, SGD lr 0.1, momentum 0.9, wd 5e-4
    (``configs/cifar10/resnet18.yaml``); ``make_pue.sh``: batch 128, 1 PGD step of 0.8/255,
    ``train_step`` 20, ``robust_noise`` 0.25, u_p 10, ``avgtimes`` 100 (the default).

    Stop: ``stop_accuracy`` 0.9 (``universal_stop_error`` 0.1 of the official ``make_pue.sh``, the
    authors' only script, written for CIFAR-100; no CIFAR-10 value is published, EM's class-wise
    0.01 would be stricter). Differences from the official code, on purpose: the release keeps the
    negative half of the noise (the EM loader it inherits clamps delta*255 to [0, 255] first);
    ``max_outer`` bounds the loop; the level-0 weight "draws" (all the noiseless model) are computed
    once; PGD's returned delta is the one re-derived after the [0, 1] clamp of the image (as uebench's
    ``em``); the noise comes from seeded generators. Weight noise goes on every parameter (BN affine
    too), never on BN running statistics; in the robust model steps BN is in train mode and updates
    its running statistics at every draw (as the official code).
    """

    name = "pue"

    class Params(Params):
        eps: float = Field(8 / 255, ge=0, le=1)  # L-inf budget on [0, 1] pixels; 8/255 in the paper
        alpha: float = Field(0.8 / 255, gt=0, le=1)  # PGD step size on [0, 1] pixels; 0.8/255 in make_pue.sh
        steps: int = Field(1, ge=1)  # PGD steps per noise update (each is one signed step per noise level once robust)
        train_steps: int = Field(20, ge=1)  # model steps per outer iteration
        batch_size: int = Field(128, ge=1)  # batch of the model steps and the noise pass
        # stop once the accuracy on x + delta exceeds this (1 - universal_stop_error)
        stop_accuracy: float = Field(0.9, gt=0, le=1)
        max_outer: int = Field(100, ge=1)  # cap on outer iterations (the official loop has none)
        # one noise per class [K, C, H, W] (the official script) or per sample
        mode: Literal["classwise", "samplewise"] = "classwise"
        # class-wise: stratified share of the training set the noise is fitted on
        subset_fraction: float = Field(0.2, gt=0, le=1)
        train_sigma: float = Field(0.25, ge=0)  # largest std of the robust steps' Gaussian weight noise (robust_noise)
        # spacing of the weight-noise levels 0, step, ..., train_sigma (robust_noise_step)
        train_sigma_step: float = Field(0.05, gt=0)
        model_draws: int = Field(100, ge=1)  # weight draws per noise level in a robust model step (avgtimes)
        input_draws: int = Field(10, ge=1)  # weight draws per noise level in a robust PGD step (u_p, avgtimes_perturb)
        # accuracy on x + delta past which all later steps are robust (weight noise)
        robust_switch: float = Field(0.5, ge=0, le=1)
        arch: str = "resnet18"  # architecture of the generator (the released surrogate)
        lr: float = 0.1  # generator SGD lr (constant)
        momentum: float = 0.9  # generator SGD momentum
        weight_decay: float = 5e-4  # generator SGD weight decay
        grad_clip: float = 5.0  # max gradient norm of the generator's model steps
        random_start: bool = False  # start delta from U(-eps, eps) instead of 0

    profiles = {
        "quick": {
            "arch": "small-cnn", "subset_fraction": 1.0, "max_outer": 30,
            "train_sigma": 0.02, "train_sigma_step": 0.01, "model_draws": 2, "input_draws": 2,
        },
        "smoke": {
            "arch": "small-cnn", "max_outer": 3, "batch_size": 16, "subset_fraction": 1.0, "train_steps": 2,
            "train_sigma": 0.05, "train_sigma_step": 0.05, "model_draws": 1, "input_draws": 1, "robust_switch": 0.0,
        },
    }  # fmt: skip

    def _model_step(self, model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, ctx: RunContext) -> None:
        with autocast(ctx):
            loss = F.cross_entropy(model(to_model(x)).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), self.params.grad_clip)
        opt.step()

    def _robust_pgd(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, delta: torch.Tensor, levels: tuple[float, ...], gen: torch.Generator, ctx: RunContext
    ) -> torch.Tensor:
        """``min_min_attack_robust``: per PGD step, one signed step per noise level on the input
        gradient summed over ``input_draws`` weight draws at that level; project onto the eps-ball
        and the image box after each."""
        p = self.params

        def loss(m: nn.Module, xa: torch.Tensor) -> torch.Tensor:
            with autocast(ctx):
                return F.cross_entropy(m(to_model(xa)).float(), y)

        d = delta.detach()
        for _ in range(p.steps):
            for s in levels:
                g = noisy_input_grad(model, loss, x + d, sigma=s, draws=p.input_draws, generator=gen)
                d = (d - p.alpha * g.sign()).clamp_(-p.eps, p.eps)
                d = (x + d).clamp_(0, 1) - x
        return d

    def _plain_pgd(self, fm: nn.Module, x: torch.Tensor, y: torch.Tensor, delta: torch.Tensor, ctx: RunContext) -> torch.Tensor:
        def loss(xa: torch.Tensor) -> torch.Tensor:
            with autocast(ctx):
                return F.cross_entropy(fm(to_model(xa)).float(), y)

        return pgd(loss, x, delta, eps=self.params.eps, alpha=self.params.alpha, steps=self.params.steps)

    @torch.no_grad()
    def _accuracy(self, fm: nn.Module, n: int, batch: Batch, ctx: RunContext, on: torch.device) -> float:
        correct = torch.zeros((), dtype=torch.long, device=ctx.device)  # one host sync at the end
        bs = eval_batch_size(ctx.device)
        pos = torch.arange(n, device=on)
        for s in range(0, n, bs):
            x, y = batch(pos[s : s + bs])
            with autocast(ctx):
                correct += (fm(to_model(x)).argmax(1) == y).sum()
        return int(correct) / n

    def generate(self, train: ImageDataset, ctx: RunContext) -> Poison:
        p = self.params
        dev = ctx.device
        k, c = train.num_classes, train.shape[0]
        classwise = p.mode == "classwise"
        pool = stratified_fraction(train.y, p.subset_fraction, ctx.seed) if classwise else torch.arange(len(train))
        model = build_classifier(p.arch, c, k, [0.0] * c, [1.0] * c, dev)
        opt = torch.optim.SGD(model.parameters(), lr=p.lr, momentum=p.momentum, weight_decay=p.weight_decay)
        delta = torch.zeros((k, *train.shape) if classwise else tuple(train.x.shape), dtype=torch.float32)
        if p.random_start:
            delta.uniform_(-p.eps, p.eps, generator=ctx.generator("pue.init"))
        delta = delta.to(dev)
        levels = noise_levels(p.train_sigma, p.train_sigma_step)
        noise = device_generator(dev, ctx.stream_seed("pue.noise"))
        order = ctx.generator("pue.classwise.batches") if classwise else None  # class-wise: shuffled, drop-last; sample-wise: in order
        bs = min(p.batch_size, len(pool))
        data = resident(train, dev)
        on = data.x.device
        pool = pool.to(on)

        def noisy(pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            idx = pool[pos]
            y = data.y[idx].to(dev)
            return data.float_batch(idx, dev) + (delta[y] if classwise else delta[idx.to(dev)]), y

        it = _cycle(len(pool), bs, order, on)
        history: list[float] = []
        robust_from = 0  # the outer iteration (1-based) whose steps were the first robust ones; 0: never
        robust = False
        for outer in range(p.max_outer):
            if robust and not robust_from:
                robust_from = outer + 1
            model.train()
            for _ in range(p.train_steps):
                x, y = noisy(next(it))
                if robust:
                    robust_step(model, opt, x, y, ctx, levels=levels, draws=p.model_draws, generator=noise, grad_clip=p.grad_clip)
                else:
                    self._model_step(model, opt, x, y, ctx)
            fm = fold_batchnorm(model)  # frozen, BN folded: for the plain steps and the stop check
            with frozen(model):
                for pos in batches(len(pool), bs, order, drop_last=classwise, device=on):
                    idx = pool[pos]
                    x = data.float_batch(idx, dev)
                    y = data.y[idx].to(dev)
                    d0 = (x + (delta[y] if classwise else delta[idx.to(dev)])).clamp(0, 1) - x
                    d = self._robust_pgd(model, x, y, d0, levels, noise, ctx) if robust else self._plain_pgd(fm, x, y, d0, ctx)
                    if classwise:
                        sums = torch.zeros_like(delta).index_add_(0, y, d)
                        counts = torch.bincount(y, minlength=k)
                        present = counts > 0
                        delta[present] = (sums[present] / counts[present].view(-1, 1, 1, 1)).clamp(-p.eps, p.eps)
                    else:
                        delta[idx.to(dev)] = d
            acc = self._accuracy(fm, len(pool), noisy, ctx, on)
            history.append(round(acc, 4))
            ctx.log(f"pue: outer iteration {outer + 1}{' (robust)' if robust else ''}: accuracy on x+delta {acc:.4f}")
            if acc > p.stop_accuracy:
                break
            if acc > p.robust_switch:
                robust = True
        delta = delta.cpu()
        model.eval()
        return Poison(
            x=release(train.x, delta[train.y] if classwise else delta),
            delta=delta,
            kind=p.mode,
            meta={
                "outer_iterations": len(history),
                "train_accuracy": history,
                "stopped": history[-1] > p.stop_accuracy,
                "robust_from": robust_from,
                # the surrogate is noise-robust (certified as `online_*`) only once the switch fired
                **({ROBUST_SURROGATE_LEVELS: list(levels)} if robust_from else {}),
                "generation_images": len(pool),
            },
            surrogate=model,
        )


PLUGINS = [PUE]
