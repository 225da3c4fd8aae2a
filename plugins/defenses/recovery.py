"""Recovery: PUE's recovery attack as a model-stage defense (Wang, Xue, Li, Camtepe & Zhu,
"Provably Unlearnable Data Examples", NDSS 2025; NeuralSec/certified-data-learnability
``recover.py``, ``trainer.py`` ``train_recovery`` / ``project``)."""

from __future__ import annotations

import copy
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from benchmark.augment import crop_flip
from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import Defense, RunContext, Victim
from benchmark.params import Params
from benchmark.training import SGDRecipe, autocast, batches, lr_lambda, make_optimizer, resident, to_model
from benchmark.weight_noise import distance, project_, snapshot


class Recovery(Defense):
    """PUE's recovery attack (Wang et al., NDSS 2025; NeuralSec/certified-data-learnability). Threat
    model: the data user holds the trained model and a little clean data. What such an adversary
    regains inside a parameter-space ball: fine-tune
    the trained model ``theta0`` on the clean hold-out with SGD and, after every step, rescale
    ``theta - theta0`` (all parameters concatenated, BN affine included) to L2 norm exactly ``eta``
    (``onto: sphere``, the official ``project``; ``ball`` only shrinks longer moves). With ``eta``
    inside the certified radius of ``certified-learnability`` the regained accuracy is what the
    certificate bounds; outside it, what a larger move buys. Put two entries in a matrix:
    ``{name: recovery, label: recovery-in, params: {eta: ...}}`` and ``recovery-out``.

    Stage ``model``: ``repair(model, holdout)`` on the cell's victim (supervised or a probe on an
    encoder: any classifier), the matrix's ``dataset.holdout`` as the recovery set (the official
    default is 20% of the CIFAR test set, or a 20% train subset with ``--use_train_subset``). Input:
    the hold-out, uint8 ``[n, C, H, W]``; returns the fine-tuned model in eval mode.

    Recipe (``configs/cifar10/resnet18_recover.yaml``, ``recover.sh``): SGD lr 0.01, momentum 0.9,
    wd 5e-4, batch 128, drop-last, 60 epochs, cosine, grad-clip 5, train mode (BN running statistics
    follow the clean data and are not part of the distance), no augmentation (the official recovery
    set is the test split with ``ToTensor`` only; ``augment: true`` adds crop + flip, as its
    train-subset path). Differences: the lr schedule advances per batch; the projection leaves a
    model at its origin there (the official divides by zero); ``recover.sh`` sweeps eta 0.2 ... 2.0
    (default 1.0) for ResNet-18: radii are not comparable across architectures.
    """

    name = "recovery"
    stage = "model"

    class Params(Params):
        eta: float = Field(1.0, ge=0)  # L2 radius in parameter space of theta - theta0; 1.0 in recover.sh
        # rescale theta - theta0 onto the sphere of radius eta (official) or only into the ball
        onto: Literal["sphere", "ball"] = "sphere"
        project: bool = True  # project after every step; False: plain fine-tuning (the official flag)
        epochs: int = Field(60, ge=1)  # fine-tuning epochs on the clean hold-out
        batch_size: int = Field(128, ge=1)  # SGD batch (drop-last)
        lr: float = Field(0.01, gt=0)  # SGD lr, cosine to 0 over the steps
        momentum: float = 0.9  # SGD momentum
        weight_decay: float = 5e-4  # SGD weight decay
        grad_clip: float | None = 5.0  # max gradient norm; None: no clipping
        augment: bool = False  # crop (pad 4) + flip on the hold-out (the official train-subset path)

    profiles = {
        # 250 hold-out images (5% of 5k): batch 32 makes 7 steps an epoch
        "quick": {"batch_size": 32, "eta": 0.5},
        "smoke": {"epochs": 2, "batch_size": 16, "eta": 0.05},
    }

    def applies_to(self, victim: Victim) -> bool:
        return True

    def repair(self, model: nn.Module, holdout: ImageDataset, ctx: RunContext) -> nn.Module:
        p = self.params
        model = copy.deepcopy(model).to(ctx.device)
        origin = snapshot(model)
        recipe = SGDRecipe.from_params(p)
        g = ctx.generator("recovery.batches")
        opt = make_optimizer(model.parameters(), recipe)
        bs = min(p.batch_size, len(holdout))
        steps = len(list(batches(len(holdout), bs, None, True)))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(recipe, steps))
        data = resident(holdout, ctx.device)
        model.train()
        for epoch in range(p.epochs):
            loss_sum = torch.zeros((), device=ctx.device)
            total = 0
            for idx in batches(len(data), bs, g, True, data.x.device):
                x = data.float_batch(idx, ctx.device)
                y = data.y[idx].to(ctx.device, non_blocking=True)
                if p.augment:
                    x = crop_flip(x, g)
                with autocast(ctx):
                    loss = F.cross_entropy(model(to_model(x)).float(), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if p.grad_clip:
                    nn.utils.clip_grad_norm_(model.parameters(), p.grad_clip)
                opt.step()
                sched.step()
                if p.project:
                    project_(model, origin, p.eta, p.onto)
                loss_sum += loss.detach() * len(idx)
                total += len(idx)
            if epoch == p.epochs - 1 or (epoch + 1) % max(1, p.epochs // 5) == 0:
                ctx.log(f"recovery: epoch {epoch + 1}/{p.epochs} loss {float(loss_sum) / max(1, total):.4f}")
        moved = float(distance(model, origin))
        ctx.log(f"recovery: fine-tuned {p.epochs} epochs on {len(holdout)} clean images, ||theta - theta0|| = {moved:.4g}")
        return model.eval()


PLUGINS = [Recovery]
