"""CP: contrastive poisoning (He, Zha & Katabi, "Indiscriminate Poisoning Attacks on Unsupervised
Contrastive Learning", ICLR 2023; code kaiwenzha/contrastive-poisoning)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any, Literal

import torch
from pydantic import Field, ValidationInfo, field_validator, model_validator

from benchmark.data.dataset import ImageDataset, content_key
from benchmark.interfaces import Attack, Poison, RunContext, release
from benchmark.models import build_classifier
from benchmark.params import Params, only_for
from benchmark.ssl.objectives import BYOLObjective, CLObjective, MoCoObjective, SimCLRObjective
from benchmark.ssl.poisoning import cosine_epoch_lr, linf_step, model_phase, seeded, set_lr, two_views
from benchmark.streams import StreamName
from benchmark.training import autocast, batches, resident

Objective = Literal["simclr", "moco", "byol"]

#: params that apply to some objectives only (a misplaced one is a config error naming it)
OWNERS: dict[str, tuple[str, ...]] = {
    "temperature": ("simclr", "moco"),
    "queue_size": ("moco",),
    "key_momentum": ("moco",),
    "key_grad": ("moco",),
    "target_momentum": ("byol",),
}

#: the official code's per-objective defaults (main.py parse_option, cl_algs.py, model.py)
DEFAULTS: dict[str, dict[str, Any]] = {
    "simclr": {"lr": 0.5, "temperature": 0.5, "proj_dim": 128},
    "moco": {"lr": 0.3, "temperature": 0.2, "proj_dim": 128, "queue_size": 4096, "key_momentum": 0.99, "key_grad": True},
    "byol": {"lr": 1.0, "proj_hidden": 4096, "proj_dim": 256, "target_momentum": 0.999},
}


def _cycle(n: int, batch_size: int, generator: torch.Generator, device: torch.device) -> Iterator[torch.Tensor]:
    """A persistent shuffled drop-last iterator that starts a new pass when one ends (the
    official model phase's ``train_iterator``)."""
    while True:
        yield from batches(n, batch_size, generator, drop_last=True, device=device)


#: a poisoning phase: the class-wise initialization (``init: classwise``) or the sample-wise run
Phase = Literal["classwise", "samplewise"]
#: each phase's random streams: (encoder initialization, MoCo key shuffling, batch order and views)
_STREAMS: dict[Phase, tuple[StreamName, StreamName, StreamName]] = {
    "classwise": ("cp.classwise.model", "cp.classwise.keys", "cp.classwise.batches"),
    "samplewise": ("cp.samplewise.model", "cp.samplewise.keys", "cp.samplewise.batches"),
}

class CP(Attack):
    """Contrastive poisoning: a perturbation and a contrastive model optimized jointly, the
    perturbation *minimizing* the contrastive loss (contrastive error minimization).

    Threat model: L-inf, ``eps`` = 8/255. ``mode: samplewise`` (CP-S) releases ``delta``
    ``[N, C, H, W]`` indexed by dataset index; ``mode: classwise`` (CP-C) releases ``delta[y]``
    from ``[K, C, H, W]``. ``objective``: ``simclr`` (NT-Xent), ``moco`` (MoCo v2) or ``byol``.

    Loop (kaiwenzha/contrastive-poisoning ``main.py``
    ``train_contrastive_poisoning``, ``model.py``, ``cl_algs.py``), per epoch e = 1..E: the lr is
    set to the cosine value of epoch e (to lr/1000, no warm-up while poisoning); *model phase*:
    ``model_steps`` batches of 512 from a persistent shuffled drop-last iterator, one SGD step each
    (train mode) on the contrastive loss of two differentiable SimCLR views (random resized crop
    0.2-1, flip, jitter 0.4/0.4/0.4/0.1 p 0.8, grayscale p 0.2) of ``clamp(x + delta, 0, 1)``;
    *noise phase* (eval mode, network frozen): the first ``noise_steps`` batches of a fresh
    shuffled pass, ``pgd_steps`` signed steps each, fresh views every step:
    ``delta <- clamp(delta - step_size * eps * sign(grad), -eps, eps)``. Class-wise, a step moves
    each class's delta by the sign of the gradient summed over that class's images in the batch.

    Paper profile = the README commands. CP-C: 1000 epochs of 20 model steps and 20 noise batches
    with 1 step of 0.1 eps, delta from U(-eps, eps). CP-S: 200 epochs of a full model epoch and a
    full noise pass with 5 steps of 0.1 eps (BYOL: the code's 1 step of 0.02 eps), delta
    initialized from the CP-C result of the same objective (``init: classwise``, computed first
    and cached; ``init: uniform`` starts from U(-eps, eps)). SimCLR CP-S releases the epoch-160
    delta of the 200-epoch schedule, as the README evaluates (``release_epoch``; others the last).
    Model: CIFAR ResNet-18 (input standardized inside the model), SGD m 0.9, wd 1e-4; SimCLR lr
    0.5, T 0.5, projector 512-512-128; MoCo v2 lr 0.3, T 0.2, MLP 512-512-128, queue 4096, key
    momentum 0.99, gradient through the key branch (the README's ``--allow_mmt_grad``); BYOL lr
    1.0, heads 512-4096-256 and 256-4096-256, target momentum 0.999.

    Faithful details kept: the official 4-GPU run computes BatchNorm over 128 images per GPU
    (``bn_groups: 4``); the MoCo key encoder's EMA runs in every forward and keys are enqueued in
    every forward, noise steps included, as are BYOL's two EMA updates per forward; MoCo's keys are
    shuffled for BN only without ``key_grad`` (as ``cl_algs.MoCo``); the effective
    loss scale of the official code (``loss_scale: null``): SupContrast-style losses multiply by
    T/0.07, and SimCLR's GatherLayer + DDP averaging divides its gradient by the 4 GPUs, so SimCLR
    x (0.5/0.07)/4 = 1.79, MoCo x 0.2/0.07 = 2.86, BYOL x 1.
    Deviations: one device (the batch is not split across GPUs except for BN statistics); our
    tensor augmentations instead of the kornia-pil fork (hue is a YIQ rotation; fixed jitter
    order); delta is kept in pixel units (the code's unit-scale delta times eps: the same
    arithmetic); the released poison rounds to nearest (official: ``ToPILImage`` truncation).
    """

    name = "cp"

    class Params(Params):
        objective: Objective = "simclr"  # contrastive loss of the model and the noise: SimCLR, MoCo v2 or BYOL
        mode: Literal["samplewise", "classwise"] = "samplewise"  # sample-wise noise (CP-S) or one per class (CP-C)
        init: Literal["classwise", "uniform"] | None = None  # CP-S start: CP-C noise or U(-eps, eps); None: classwise
        eps: float = Field(8 / 255, gt=0, le=1)  # L-inf budget on [0, 1] pixels; 8/255 in the paper
        # CP-S schedule (the README's sample-wise command)
        epochs: int = Field(200, ge=1)  # CP-S epochs, each a model phase then a noise phase
        # CP-S SGD steps per model phase; None: a full epoch (the code's 1000, capped)
        model_steps: int | None = Field(None, ge=1)
        noise_steps: int | None = Field(None, ge=1)  # CP-S batches per noise phase; None: a full pass
        pgd_steps: int | None = Field(None, ge=1)  # CP-S signed steps per noise batch; None: 5 (BYOL: 1)
        step_size: float | None = Field(None, gt=0)  # CP-S step size as a fraction of eps; None: 0.1 (BYOL: 0.02)
        # CP-S epoch whose noise is released; None: 0.8 x epochs (SimCLR), else the last
        release_epoch: int | None = Field(None, ge=1)
        # CP-C schedule (the README's class-wise command; also CP-S's initialization)
        classwise_epochs: int = Field(1000, ge=1)  # CP-C epochs (also run first as CP-S's init)
        classwise_model_steps: int = Field(20, ge=1)  # CP-C SGD steps per model phase
        classwise_noise_steps: int = Field(20, ge=1)  # CP-C batches per noise phase
        classwise_pgd_steps: int = Field(1, ge=1)  # CP-C signed steps per noise batch
        classwise_step_size: float = Field(0.1, gt=0)  # CP-C step size as a fraction of eps
        # the contrastive model
        arch: str = "resnet18"  # architecture of the contrastive model's encoder
        batch_size: int = Field(512, ge=2)  # batch of the model and noise phases
        lr: float | None = Field(None, gt=0)  # SGD lr, cosine per epoch; None: SimCLR 0.5, MoCo 0.3, BYOL 1.0
        momentum: float = 0.9  # SGD momentum
        weight_decay: float = 1e-4  # SGD weight decay
        min_lr_ratio: float = 1e-3  # floor of the per-epoch cosine lr, as a fraction of lr
        bn_groups: int = Field(4, ge=1)  # train-mode BN statistics per 1/bn_groups of the batch (the official 4 GPUs)
        crop_scale_min: float = Field(0.2, gt=0, le=1)  # smallest area fraction of the views' random resized crop
        proj_hidden: int | None = Field(None, ge=1)  # projector hidden width; None: the feature dim (BYOL: 4096)
        proj_dim: int | None = Field(None, ge=1)  # projector output dim; None: 128 (BYOL: 256)
        # factor on the contrastive loss; None: the official effective scale (see docstring)
        loss_scale: float | None = Field(None, gt=0)
        temperature: float | None = Field(None, gt=0)  # softmax temperature (simclr, moco); None: SimCLR 0.5, MoCo 0.2
        queue_size: int | None = Field(None, ge=1)  # MoCo: length of the queue of negative keys; None: 4096
        key_momentum: float | None = Field(None, ge=0, le=1)  # MoCo: EMA momentum of the key encoder; None: 0.99
        key_grad: bool | None = None  # MoCo: noise gradient also through the keys; None: True (--allow_mmt_grad)
        # BYOL: EMA momentum of the target, applied twice per forward; None: 0.999
        target_momentum: float | None = Field(None, ge=0, le=1)

        @field_validator(*OWNERS)
        @classmethod
        def _objective_only(cls, value: Any, info: ValidationInfo) -> Any:
            return only_for(OWNERS, "objective", value, info)

        @model_validator(mode="after")
        def _consistent(self) -> CP.Params:
            if self.mode == "classwise" and self.init == "classwise":
                raise ValueError("init: classwise is the sample-wise start; mode classwise starts from uniform")
            if self.release_epoch is not None and self.release_epoch > self.epochs:
                raise ValueError(f"release_epoch {self.release_epoch} is after the last epoch {self.epochs}")
            return self

    # quick: small CNN on 5k; the class-wise init runs 40 epochs of the 9 batches of 512 the 5k
    # subset holds (the code's model/noise steps are capped at an epoch), CP-S 10 epochs.
    profiles = {
        "quick": {"arch": "small-cnn", "epochs": 10, "classwise_epochs": 40, "bn_groups": 1},
        "smoke": {"arch": "small-cnn", "epochs": 1, "classwise_epochs": 1, "batch_size": 16, "bn_groups": 2, "model_steps": 2,
                  "noise_steps": 2, "pgd_steps": 2, "classwise_model_steps": 2, "classwise_noise_steps": 2},
    }

    # ------------------------------------------------------------------------------- settings
    def settings(self) -> dict[str, Any]:
        """Every effective setting (``None`` params resolved to the objective's defaults)."""
        p = self.params
        d = DEFAULTS[p.objective]
        byol_s = p.objective == "byol" and p.mode == "samplewise"
        s = p.model_dump()
        for key in ("lr", "temperature", "proj_dim", "proj_hidden", "queue_size", "key_momentum", "key_grad", "target_momentum"):
            if s.get(key) is None:
                s[key] = d.get(key)
        s["init"] = p.init or ("classwise" if p.mode == "samplewise" else "uniform")
        s["pgd_steps"] = p.pgd_steps or (1 if byol_s else 5)
        s["step_size"] = p.step_size or (0.02 if byol_s else 0.1)
        if p.release_epoch is None:
            simclr_s = p.objective == "simclr" and p.mode == "samplewise"
            s["release_epoch"] = max(1, round(0.8 * p.epochs)) if simclr_s else p.epochs
        if p.loss_scale is None:  # SupContrast's T/0.07; SimCLR's gradient also averaged over 4 GPUs
            s["loss_scale"] = 1.0 if p.objective == "byol" else s["temperature"] / 0.07 / (4 if p.objective == "simclr" else 1)
        return s

    def _objective(self, train: ImageDataset, ctx: RunContext, s: dict[str, Any], phase: Phase) -> CLObjective:
        c = train.shape[0]
        with seeded(ctx, _STREAMS[phase][0]):
            enc = build_classifier(s["arch"], c, train.num_classes, *train.mean_std(), ctx.device)
            hidden = s["proj_hidden"] or enc.feature_dim
            if s["objective"] == "simclr":
                obj: CLObjective = SimCLRObjective(
                    enc, hidden=hidden, out=s["proj_dim"], temperature=s["temperature"], scale=s["loss_scale"], bn_groups=s["bn_groups"]
                )
            elif s["objective"] == "moco":
                obj = MoCoObjective(
                    enc, hidden=hidden, out=s["proj_dim"], temperature=s["temperature"], queue_size=s["queue_size"],
                    momentum=s["key_momentum"], key_grad=s["key_grad"], ema_in_noise_phase=True,
                    generator=ctx.generator(_STREAMS[phase][1]), scale=s["loss_scale"], bn_groups=s["bn_groups"],
                    shuffle_keys=not s["key_grad"],  # cl_algs.MoCo shuffles keys only without --allow_mmt_grad
                )
            else:
                obj = BYOLObjective(enc, hidden=hidden, out=s["proj_dim"], momentum=s["target_momentum"], bn_groups=s["bn_groups"])
        return obj.to(ctx.device)

    # ---------------------------------------------------------------------------------- loop
    def _poison(
        self, train: ImageDataset, ctx: RunContext, delta: torch.Tensor, *, classwise: bool, epochs: int, release_epoch: int,
        model_steps: int | None, noise_steps: int | None, pgd_steps: int, step_size: float, phase: Phase,
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """Run the joint optimization from ``delta`` (on ``ctx.device``, updated in place)."""
        s = self.settings()
        dev, eps = ctx.device, s["eps"]
        alpha = step_size * eps
        obj = self._objective(train, ctx, s, phase)
        opt = torch.optim.SGD(obj.trainable(), lr=s["lr"], momentum=s["momentum"], weight_decay=s["weight_decay"])
        g = ctx.generator(_STREAMS[phase][2])
        view = {"scale": (s["crop_scale_min"], 1.0)}
        data = resident(train, dev)
        on = data.x.device
        n = len(data)
        bs = min(s["batch_size"], n)
        per_epoch = n // bs
        m_steps = min(model_steps or per_epoch, per_epoch)
        n_steps = min(noise_steps or per_epoch, per_epoch)
        y_all = data.y.to(dev)

        def rows(idx: torch.Tensor) -> torch.Tensor:
            i = idx.to(dev)
            return y_all[i] if classwise else i

        def perturb(idx: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            return (x + delta[rows(idx)]).clamp(0, 1)

        it = _cycle(n, bs, g, on)
        history: dict[str, list[float]] = {"model_loss": [], "noise_loss": []}
        for epoch in range(1, release_epoch + 1):
            set_lr(opt, cosine_epoch_lr(s["lr"], epoch, epochs, s["min_lr_ratio"]))
            m_loss = model_phase(obj, opt, data, itertools.islice(it, m_steps), perturb, g, view, ctx)
            noise_sum = torch.zeros((), device=dev)
            with obj.noise_phase():
                for idx in itertools.islice(batches(n, bs, g, drop_last=True, device=on), n_steps):
                    x = data.float_batch(idx, dev)
                    y = y_all[idx.to(dev)]
                    r = rows(idx)
                    for _ in range(pgd_steps):
                        d = (delta if classwise else delta[r]).detach().clone().requires_grad_(True)
                        xp = (x + (d[y] if classwise else d)).clamp(0, 1)
                        v1, v2 = two_views(xp, g, view)
                        with autocast(ctx):
                            loss = obj(v1, v2, y)
                        (grad,) = torch.autograd.grad(loss, d)
                        if classwise:
                            delta.copy_(linf_step(d.detach(), grad, alpha, eps))
                        else:
                            delta[r] = linf_step(d.detach(), grad, alpha, eps)
                        noise_sum += loss.detach().float()
            history["model_loss"].append(round(m_loss, 4))
            history["noise_loss"].append(round(float(noise_sum) / max(1, n_steps * pgd_steps), 4))
            ctx.log(
                f"cp/{s['objective']}/{'classwise' if classwise else 'samplewise'}: epoch {epoch}/{release_epoch} "
                f"model loss {history['model_loss'][-1]:.4f}, noise loss {history['noise_loss'][-1]:.4f}"
            )
        return delta, history

    def classwise_delta(self, train: ImageDataset, ctx: RunContext) -> tuple[torch.Tensor, dict[str, Any], bool]:
        """CP-C's ``[K, C, H, W]`` delta (from ``ctx.cache`` when a run with the same CP-C
        settings on the same data and seed stored it). Returns ``(delta, meta, cached)``."""
        s = self.settings()
        keys = [k for k in s if not k.startswith("classwise_") and k not in
                ("mode", "init", "epochs", "model_steps", "noise_steps", "pgd_steps", "step_size", "release_epoch")]
        spec = {
            "purpose": "cp-classwise-delta",
            "version": self.version,
            "settings": {k: s[k] for k in sorted(keys)} | {k: s[k] for k in s if k.startswith("classwise_")},
            "data": ctx.data_key or content_key(train),
            "seed": ctx.seed,
        }

        def create() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
            k = train.num_classes
            init = torch.empty((k, *train.shape)).uniform_(-s["eps"], s["eps"], generator=ctx.generator("cp.classwise.init")).to(ctx.device)
            delta, hist = self._poison(
                train, ctx, init, classwise=True, epochs=s["classwise_epochs"], release_epoch=s["classwise_epochs"],
                model_steps=s["classwise_model_steps"], noise_steps=s["classwise_noise_steps"],
                pgd_steps=s["classwise_pgd_steps"], step_size=s["classwise_step_size"], phase="classwise",
            )
            return {"delta": delta.cpu()}, {"classwise_" + k: v for k, v in hist.items()}

        if ctx.cache is None:
            tensors, meta = create()
            return tensors["delta"], meta, False
        tensors, meta, cached = ctx.cache.get_or_create(spec, create)
        return tensors["delta"], meta, cached

    def generate(self, train: ImageDataset, ctx: RunContext) -> Poison:
        s = self.settings()
        meta: dict[str, Any] = {"settings": {k: v for k, v in s.items() if isinstance(v, (int, float, str, bool))}}
        if s["mode"] == "classwise" or s["init"] == "classwise":
            dc, cmeta, cached = self.classwise_delta(train, ctx)
            meta.update(cmeta)
            meta["classwise_cached"] = cached
            if s["mode"] == "classwise":
                return Poison(x=release(train.x, dc[train.y]), delta=dc, kind="classwise", meta=meta)
            delta = dc[train.y].to(ctx.device)
        else:
            delta = torch.empty(train.x.shape).uniform_(-s["eps"], s["eps"], generator=ctx.generator("cp.samplewise.init")).to(ctx.device)
        delta, hist = self._poison(
            train, ctx, delta, classwise=False, epochs=s["epochs"], release_epoch=s["release_epoch"],
            model_steps=s["model_steps"], noise_steps=s["noise_steps"], pgd_steps=s["pgd_steps"],
            step_size=s["step_size"], phase="samplewise",
        )
        meta.update(hist)
        delta = delta.cpu()
        return Poison(x=release(train.x, delta), delta=delta, kind="samplewise", meta=meta)


PLUGINS = [CP]
