"""SAU: Shared Adversarial Unlearning (Wei, Zhang, Zha & Wu, "Shared Adversarial Unlearning:
Backdoor Mitigation by Unlearning Shared Adversarial Examples", NeurIPS 2023; the first author's
implementation SCLBD/BackdoorBench ``defense/sau.py``, ``config/defense/sau/config.yaml``),
applied to a model trained on unlearnable examples."""

from __future__ import annotations

import copy
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import Defense, RunContext
from benchmark.repair import FINETUNE_PROFILES, FinetuneParams, check_holdout, emit, holdout_batches, repair_mode, seeded


def js_divergence(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """Per-sample Jensen-Shannon divergence ``[B]`` of two softmax distributions, probabilities
    clamped at 1e-8 (the reference's ``loss_js`` summed over classes)."""
    p = F.softmax(logits_a.float(), dim=1).clamp(min=1e-8)
    q = F.softmax(logits_b.float(), dim=1).clamp(min=1e-8)
    m = 0.5 * (p + q)
    return (0.5 * (p * p.log() + q * q.log()) - 0.5 * (p * m.log() + q * m.log())).sum(1)


def shared_adversarial(
    pred: torch.Tensor, pred_ref: torch.Tensor, clean: torch.Tensor, clean_ref: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The masks of the shared PGD (reference ``Shared_PGD.attack``), all ``[B]`` bool, from the two
    models' predictions on the perturbed (``pred``, ``pred_ref``) and clean inputs: ``moved`` (h's
    prediction changed), ``moved_ref`` (h0's changed), ``shared`` (both changed, to the same label)."""
    moved, moved_ref = pred != clean, pred_ref != clean_ref
    return moved, moved_ref, moved & moved_ref & (pred == pred_ref)


def potential_poison(adv_ref: torch.Tensor, y: torch.Tensor, clean_ref: torch.Tensor) -> torch.Tensor:
    """SAU's unlearning mask ``[B]``: h0's prediction on the perturbed input is wrong **and** differs
    from its prediction on the clean input (reference: ``success_attack_ref``)."""
    return (adv_ref != y) & (adv_ref != clean_ref)


def shared_pgd(
    model: nn.Module,
    ref: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    step: float,
    steps: int,
    beta_adv: float,
    beta_share: float,
    init: Literal["max", "min", "zero", "random"] = "max",
    early_exit: bool = True,
) -> torch.Tensor:
    """Per-sample perturbations ``[B, C, H, W]`` (L-inf <= ``eps``, no clamp to the image range)
    that make ``model`` and ``ref`` both change their prediction on ``x``, to the **same** label
    (shared adversarial examples; reference ``Shared_PGD.attack``).

    Each step minimizes ``beta_adv * L_adv + beta_share * L_share`` by a signed-gradient step of
    ``step`` and clips to ``[-eps, eps]``: ``L_adv = -(sum CE(h(x'), y) over samples whose
    h-prediction has not changed yet + the same for h0) / (2 B)``; ``L_share = sum JS(h(x') || h0(x'))
    / B`` over samples not yet shared adversarial. A sample is shared adversarial when both
    predictions moved away from their clean-input predictions and agree. Once every sample is, the
    gradient is zero and the perturbation stops changing; ``early_exit`` then also stops computing
    (one host sync per step: the default on a CPU, where a sync costs nothing).
    Both models should be in eval mode; only input gradients are taken.
    """
    with torch.no_grad():
        clean = model(x).argmax(1)
        clean_ref = ref(x).argmax(1)
    if init == "max":
        delta = torch.full_like(x, eps)
    elif init == "min":
        delta = torch.full_like(x, -eps)
    elif init == "random":
        delta = torch.rand_like(x).clamp_(-eps, eps)  # the reference: rand_like, then projected
    else:
        delta = torch.zeros_like(x)
    b = x.shape[0]
    for _ in range(steps):
        delta.requires_grad_(True)
        xp = x + delta
        logits, logits_ref = model(xp), ref(xp)
        moved, moved_ref, shared = shared_adversarial(logits.argmax(1), logits_ref.argmax(1), clean, clean_ref)
        ce = F.cross_entropy(logits.float(), y, reduction="none")
        ce_ref = F.cross_entropy(logits_ref.float(), y, reduction="none")
        loss_adv = -((ce * ~moved).sum() + (ce_ref * ~moved_ref).sum()) / (2 * b)
        loss_share = (js_divergence(logits, logits_ref) * ~shared).sum() / b
        (grad,) = torch.autograd.grad(beta_adv * loss_adv + beta_share * loss_share, delta)
        with torch.no_grad():
            delta = (delta - step * grad.sign()).clamp_(-eps, eps)
        if early_exit and bool(shared.all()):
            break
    return delta.detach()


def sau_loss(
    model: nn.Module,
    ref: nn.Module,
    x: torch.Tensor,
    x_adv: torch.Tensor,
    y: torch.Tensor,
    *,
    lambda_clean: float,
    lambda_adv: float,
    lambda_share: float,
    bn: Literal["eval", "train"] = "eval",
) -> torch.Tensor:
    """The unlearning loss ``lambda_clean * CE(h(x), y) + lambda_adv * CE(h(x'), y) + lambda_share *
    L_SAR`` (reference ``sau.mitigation``). ``L_SAR`` = ``sum over potential-poison samples of
    -log(1 - p_h(yhat0 | x')) / B`` where ``yhat0 = argmax h0(x')`` and a sample is a potential
    poison when ``yhat0 != y`` and ``yhat0 != argmax h0(x)``; as the reference, the mean of two
    equal forms, ``-log(1e-6 + min(1 - p, 0.999))`` with ``1 - p`` summed over the other classes and
    ``-log(1 + 1e-6 - max(p, 0.001))``. ``h`` sees ``[x; x']`` in one forward (train-mode BN with
    ``bn="train"``), ``h0`` (no gradient) in eval mode."""
    b = x.shape[0]
    mode = model.training
    model.train(bn == "train")
    logits, logits_adv = model(torch.cat([x, x_adv])).float().split(b)
    model.train(mode)
    with torch.no_grad():
        pred_ref = ref(x).argmax(1)
        adv_ref = ref(x_adv).argmax(1)
    potential = potential_poison(adv_ref, y, pred_ref)
    prob = F.softmax(logits_adv, dim=1)
    one_hot = F.one_hot(adv_ref, prob.shape[1]).to(prob.dtype)
    pos = (prob * one_hot).sum(1)
    neg = (prob * (1 - one_hot)).sum(1)
    per = -torch.log(1e-6 + neg.clamp(max=0.999)) - torch.log(1 + 1e-6 - pos.clamp(min=0.001))
    loss_share = (per * potential).sum() / 2 / b
    loss = lambda_clean * F.cross_entropy(logits, y) + lambda_share * loss_share
    if lambda_adv:
        loss = loss + lambda_adv * F.cross_entropy(logits_adv, y)
    return loss


class SAU(Defense):
    """SAU: repair a trained classifier with a clean hold-out by unlearning shared adversarial
    examples of the model being repaired (h) and a frozen copy of the victim (h0).

    Threat model: as I-BAU's (the data user trained on the released set and owns a small clean
    labelled hold-out, ``dataset.holdout``). Stage ``model``: ``repair(model, holdout)`` -> a repaired
    copy; classifiers over ``[B, C, H, W]`` in [0, 1]. Applies to every victim whose model is a
    classifier (contrastive victims: encoder and linear probe repaired together).

    Per batch of the shuffled hold-out (no augmentation): :func:`shared_pgd` (L-inf 0.2 in [0, 1]
    pixel space, 5 steps of 0.2, start at +0.2, beta_adv 0.01, beta_share 1), then one step of
    :func:`sau_loss` (lambda 1 / 0 / 1) with Adam (amsgrad, lr 1e-4, wd 0; the reference builds a
    cosine scheduler but never steps it: constant lr), 100 epochs, batch 256, both models in eval
    mode (BackdoorBench ``config/defense/sau/config.yaml``; the paper's PGD-5, bound 0.2, 5 % clean
    data, 100 epochs).

    Deviations: the hold-out is class-balanced (the reference draws 5 % at random); the model
    normalizes its input inside, so the perturbation is added in [0, 1] space directly (the
    reference denormalizes, adds and renormalizes: the same); the PGD early exit is exact (see
    :func:`shared_pgd`) and skipped on an accelerator, where it would cost a host sync per step.
    The bound 0.2 (51/255) is the backdoor setting's, far above an 8/255 poison budget: sweep it with
    ``{eps: 8/255, pgd_step: 8/255}``. Quick profile: batch 64 and 25 epochs, so that the
    250-image quick hold-out still gets 100 optimizer steps (at batch 256 it would get one per
    epoch) at about the cost of one quick victim training. Emits one ``"repair"`` trace event per
    epoch. No published results against unlearnable examples; compare with ``finetune`` (the same
    optimizer and steps without the shared-adversarial term) and ``scratch``.
    """

    name = "sau"
    stage = "model"

    class Params(FinetuneParams):
        # L-inf bound of the shared adversarial perturbation on [0, 1] pixels (trigger_norm)
        eps: float = Field(0.2, gt=0)
        pgd_step: float = Field(0.2, gt=0)  # shared PGD step size on [0, 1] pixels (adv_lr)
        pgd_steps: int = Field(5, ge=1)  # shared PGD steps per batch (adv_steps)
        # shared PGD start: +eps (max), -eps (min), 0 (zero), or U(0, 1) clipped (random)
        pgd_init: Literal["max", "min", "zero", "random"] = "max"
        beta_adv: float = Field(0.01, ge=0)  # weight of the adversarial (CE) term of the shared PGD (beta_1)
        beta_share: float = Field(1.0, ge=0)  # weight of the prediction-sharing (JS) term of the shared PGD (beta_2)
        lambda_clean: float = Field(1.0, ge=0)  # weight of the clean cross entropy in the unlearning loss (lmd_1)
        lambda_adv: float = Field(0.0, ge=0)  # weight of the cross entropy on the perturbed images (lmd_2)
        lambda_share: float = Field(1.0, ge=0)  # weight of the shared-adversarial unlearning term L_SAR (lmd_3)

    profiles = {**FINETUNE_PROFILES, "smoke": {**FINETUNE_PROFILES["smoke"], "pgd_steps": 2}}

    def repair(self, model: nn.Module, holdout: ImageDataset | None, ctx: RunContext) -> nn.Module:
        p = self.params
        holdout = check_holdout(holdout, self.name)
        with seeded(ctx, "sau.repair") as g:
            net = repair_mode(copy.deepcopy(model), "eval")
            ref = copy.deepcopy(model).eval().requires_grad_(False)
            opt = torch.optim.Adam(net.parameters(), lr=p.lr, weight_decay=p.weight_decay, amsgrad=p.amsgrad)
            data = holdout.to(ctx.device)
            early_exit = ctx.device.type == "cpu"
            for epoch in range(p.epochs):
                total = torch.zeros((), device=ctx.device)
                for idx in holdout_batches(len(data), p.batch_size, g, data.x.device):
                    x = data.float_batch(idx, ctx.device)
                    y = data.y[idx].to(ctx.device)
                    delta = shared_pgd(
                        net, ref, x, y, eps=p.eps, step=p.pgd_step, steps=p.pgd_steps, beta_adv=p.beta_adv,
                        beta_share=p.beta_share, init=p.pgd_init, early_exit=early_exit,
                    )
                    loss = sau_loss(
                        net, ref, x, x + delta, y, lambda_clean=p.lambda_clean, lambda_adv=p.lambda_adv,
                        lambda_share=p.lambda_share, bn=p.bn,
                    )
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += loss.detach() * len(idx)
                emit(ctx, epoch + 1, p.epochs, total / len(data), net, p.lr)
        return net.eval()


PLUGINS = [SAU]
