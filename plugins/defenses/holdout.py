"""The baselines every model-repair defense (I-BAU, SAU) must beat on the same clean hold-out:
plain fine-tuning of the victim, and training from scratch on the hold-out alone
(without them, a repair's gain cannot be told from what the clean hold-out alone buys)."""

from __future__ import annotations

import copy
import dataclasses

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from benchmark.augment import crop_flip
from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import Defense, RunContext
from benchmark.params import Params
from benchmark.repair import FINETUNE_PROFILES, FinetuneParams, check_holdout, emit, holdout_batches, reinitialized, repair_mode, seeded
from benchmark.trace import Trace
from benchmark.training import SGDRecipe, train_supervised


class FineTune(Defense):
    """Plain fine-tuning of the victim's classifier on the clean hold-out: cross-entropy, Adam.

    Threat model and stage as :class:`~plugins.defenses.sau.SAU` (stage ``model``, the matrix's
    ``dataset.holdout``; a classifier over ``[B, C, H, W]`` in [0, 1] in and out; every victim, the
    whole network of a contrastive victim). The defaults are SAU's optimizer and steps without its
    shared-adversarial term (SAU with lambda_share = 0: the spec's key ablation): Adam (amsgrad)
    lr 1e-4, batch 256, 100 epochs, shuffled, no augmentation, BatchNorm frozen in eval mode; the
    quick profile matches SAU's (batch 64, 25 epochs). I-BAU's budget (Adam lr 1e-3, batch 100, 5
    passes in a fixed order, eval mode) is ``{lr: 1e-3, amsgrad: false, batch_size: 100, epochs: 5,
    shuffle: false}`` (label it, e.g. ``finetune-ibau``). Source: the protocol of spec §1.5 (no
    official code: a baseline). Emits one ``"repair"`` trace event per epoch.
    """

    name = "finetune"
    stage = "model"

    class Params(FinetuneParams):
        shuffle: bool = True  # reshuffle the hold-out every epoch; False: one fixed random order (I-BAU's loader)
        augment: bool = False  # crop (pad 4) + flip on the hold-out batches

    profiles = FINETUNE_PROFILES

    def repair(self, model: nn.Module, holdout: ImageDataset | None, ctx: RunContext) -> nn.Module:
        p = self.params
        holdout = check_holdout(holdout, self.name)
        with seeded(ctx, "finetune.repair") as g:
            net = repair_mode(copy.deepcopy(model), p.bn)
            opt = torch.optim.Adam(net.parameters(), lr=p.lr, weight_decay=p.weight_decay, amsgrad=p.amsgrad)
            data = holdout.to(ctx.device)
            fixed = None if p.shuffle else torch.randperm(len(data), generator=g).to(data.x.device)
            for epoch in range(p.epochs):
                total = torch.zeros((), device=ctx.device)
                for idx in holdout_batches(len(data), p.batch_size, g if p.shuffle else None, data.x.device):
                    if fixed is not None:
                        idx = fixed[idx]
                    x = data.float_batch(idx, ctx.device)
                    if p.augment:
                        x = crop_flip(x, g)
                    loss = F.cross_entropy(net(x.contiguous(memory_format=torch.channels_last)).float(), data.y[idx].to(ctx.device))
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += loss.detach() * len(idx)
                emit(ctx, epoch + 1, p.epochs, total / len(data), net, p.lr)
        return net.eval()


class Scratch(Defense):
    """Train the victim's architecture from scratch on the clean hold-out alone: what the hold-out
    is worth without the poisoned training set (the floor a repair must beat to have used the
    victim at all).

    Threat model: the data user owns a small clean, labelled hold-out (``dataset.holdout``, uint8
    ``[n, C, H, W]``) and ignores the released set; returns a classifier over ``[B, C, H, W]`` in [0, 1].
    Stage ``model`` (it takes the victim's classifier only for its architecture and input
    normalization; every parameter and BatchNorm statistic is re-initialized by torch's defaults).
    Recipe: the CIFAR standard, SGD lr 0.1, momentum 0.9, wd 5e-4, cosine, crop (pad 4) + flip,
    batch 128, 200 epochs (2,500 images at the paper's 5 %: about 3,900 steps); quick: batch 64,
    100 epochs (250 images: 300 steps). Every victim (for a contrastive victim this is a supervised
    network of its encoder's architecture). Uses :func:`benchmark.training.train_supervised`, with
    its per-epoch events kept out of the cell's trace (they are not the victim's). Source: spec
    §1.5's baseline (c); no official code.
    """

    name = "scratch"
    stage = "model"

    class Params(Params):
        epochs: int = Field(200, ge=1)  # training epochs on the clean hold-out alone
        batch_size: int = Field(128, ge=1)  # SGD batch (capped at the hold-out size)
        lr: float = Field(0.1, gt=0)  # SGD lr, cosine to 0
        momentum: float = Field(0.9, ge=0, lt=1)  # SGD momentum
        weight_decay: float = Field(5e-4, ge=0)  # SGD weight decay
        nesterov: bool = False  # Nesterov momentum

    profiles = {
        "quick": {"epochs": 100, "batch_size": 64},
        "smoke": {"epochs": 2, "batch_size": 16},
    }

    def repair(self, model: nn.Module, holdout: ImageDataset | None, ctx: RunContext) -> nn.Module:
        p = self.params
        holdout = check_holdout(holdout, self.name)
        with seeded(ctx, "scratch.repair"):
            net = reinitialized(model).train().requires_grad_(True)
            recipe = SGDRecipe.from_params(p, batch_size=min(p.batch_size, len(holdout)))
            quiet = dataclasses.replace(ctx, trace=Trace())
            train_supervised(net, holdout, recipe, quiet, augment=crop_flip, desc="scratch")
        return net.eval()


PLUGINS = [FineTune, Scratch]
