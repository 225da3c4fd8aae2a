"""TUE: transferable unlearnable examples (Ren, Xu, Wan, Ma, Sun & Tang, "Transferable Unlearnable
Examples", ICLR 2023; code renjie3/TUE)."""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field, ValidationInfo, field_validator

from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import Attack, Poison, RunContext, release
from benchmark.models import build_classifier
from benchmark.params import Params, only_for
from benchmark.ssl.objectives import CLObjective, MoCoObjective, SimCLRObjective, SimSiamObjective
from benchmark.ssl.poisoning import model_phase, seeded, two_views
from benchmark.training import autocast, batches, resident

Objective = Literal["moco", "simclr", "simsiam"]

OWNERS: dict[str, tuple[str, ...]] = {
    "temperature": ("moco", "simclr"),
    "queue_size": ("moco",),
    "key_momentum": ("moco",),
    "key_grad": ("moco", "simsiam"),
}

#: the official demo.sh commands and the model/optimizer each one builds (ssl_perturbation.py)
DEFAULTS: dict[str, dict[str, Any]] = {
    "moco": {"epochs": 200, "pgd_steps": 5, "train_steps": 100, "w_ssl": 1.0, "w_csd": 1.0, "random_start": False,
             "lr": 0.3, "weight_decay": 1e-4, "temperature": 0.2, "queue_size": 4096, "key_momentum": 0.99,
             "key_grad": True, "bn_groups": 8, "drop_last": True},
    "simclr": {"epochs": 40, "pgd_steps": 20, "train_steps": 20, "w_ssl": 0.0, "w_csd": 0.1, "random_start": True,
               "lr": 1e-3, "weight_decay": 1e-6, "temperature": 0.5, "bn_groups": 1, "drop_last": False},
    "simsiam": {"epochs": 50, "pgd_steps": 20, "train_steps": 25, "w_ssl": 0.0, "w_csd": 0.1, "random_start": True,
                "lr": 0.06, "weight_decay": 5e-4, "key_grad": True, "bn_groups": 1, "drop_last": False},
}


def csd_loss(delta: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """TUE's class-wise separability discriminant on a batch of raw perturbations ``[B, ...]``
    with labels ``[B]`` (``get_linear_noise_csd_loss``): over ordered pairs of distinct classes
    present in the batch, the mean of ``(s_i + s_j + 1e-5) / (||c_i - c_j|| + 1e-5)``, where
    ``c_i`` is the mean perturbation of class i and ``s_i`` the mean distance of its
    perturbations to ``c_i`` -- a Davies-Bouldin ratio, minimized.

    As in the official code the intra-class spreads ``s_i`` are constants (rebuilt there from
    Python floats): the gradient flows only through the centre distances, pushing the class
    centres of delta apart. 0 when fewer than two classes are present.
    """
    flat = delta.flatten(1).float()
    classes, inverse = torch.unique(y, return_inverse=True)
    if len(classes) < 2:
        return flat.sum() * 0
    onehot = torch.zeros(len(classes), len(flat), device=flat.device, dtype=flat.dtype)
    onehot[inverse, torch.arange(len(flat), device=flat.device)] = 1.0
    centres = (onehot @ flat) / onehot.sum(1, keepdim=True)
    with torch.no_grad():
        spread = (onehot @ (flat - centres[inverse]).norm(dim=1)) / onehot.sum(1)
    dist = torch.cdist(centres, centres, p=2)
    off = ~torch.eye(len(classes), dtype=torch.bool, device=flat.device)
    pair = spread[:, None] + spread[None, :]
    return ((pair[off] + 1e-5) / (dist[off] + 1e-5)).mean()


class TUE(Attack):
    """Transferable unlearnable examples: contrastive error minimization plus a class-wise
    separability term (CSD) on the perturbations, so the noise fools both contrastive and
    supervised learners.

    Threat model: L-inf, ``eps`` = 8/255, sample-wise ``delta`` ``[N, C, H, W]`` indexed by
    dataset index.

    Loop (renjie3/TUE ``ssl_perturbation.py`` ``sample_wise_perturbation``,
    ``toolbox.py`` ``min_min_attack_*_eot_v1``), per epoch: a shuffled pass over the data in
    rounds; each round takes ``train_steps`` batches of 512 for the *model phase* (one step each
    on two views of ``x + delta``, not clamped, train mode), then runs a *noise phase*: a full
    shuffled pass with ``pgd_steps`` signed steps of ``alpha`` per batch on
    ``w_ssl * L_CL(views of clamp(x + delta)) + w_csd * CSD(delta, y)`` (eval mode, fresh views
    every step), projected on the eps-ball and the image box. As in the code, a pass whose batch
    count is a multiple of ``train_steps`` ends with one more noise phase after an empty round.

    Default = the TUE-MoCo demo (the spec's recommendation: its objective couples delta to the
    contrastive loss): 200 epochs, ``train_steps`` 100 (one model epoch then one noise pass per
    epoch), 5 steps of 0.8/255, w_ssl = w_csd = 1, delta from 0. MoCo: CIFAR ResNet-18 without
    input normalization, a linear 512 -> 128 head, queue 4096, key momentum 0.99 (EMA before every
    model step), T 0.2, asymmetric loss, 8-way split BatchNorm, gradient through the key branch
    (``--k_grad``), keys enqueued in noise steps too; SGD lr 0.3, m 0.9, wd 1e-4, constant lr;
    drop-last batches. ``objective: simclr`` / ``simsiam`` are the other demo commands (40 / 50
    epochs, 20 steps, ``train_steps`` 20 / 25, w_ssl = 0, w_csd = 0.1, U(-eps, eps) start; SimCLR
    Adam 1e-3 wd 1e-6, SimSiam SGD 0.06 wd 5e-4): with w_ssl = 0 delta does not depend on the
    network (CSD only), as in the official demo.

    Deviations: the noise-phase views are drawn per sample (the code applies torchvision
    transforms to the batched tensor: one crop/flip/jitter for the whole batch); our tensor
    augmentations stand in for kornia in the model phase (crop scale 0.08-1 there, as kornia's
    default); the projection is on the ball, then the box (the code: box, then ball, leaving
    ``x + delta`` up to one step outside [0, 1] until the next clamp); the SimCLR model's head has
    no BN; SimSiam's noise steps run in eval mode (the code leaves it in train mode); release
    rounds to nearest (official: floor).
    """

    name = "tue"

    class Params(Params):
        objective: Objective = "moco"  # contrastive loss of the model and noise phases (the official demo commands)
        eps: float = Field(8 / 255, gt=0, le=1)  # L-inf budget on [0, 1] pixels; 8/255 in the paper
        alpha: float = Field(0.8 / 255, gt=0, le=1)  # PGD step size on [0, 1] pixels; 0.8/255 in the demos
        epochs: int | None = Field(None, ge=1)  # passes over the data; None: moco 200, simclr 40, simsiam 50
        train_steps: int | None = Field(None, ge=1)  # model steps per round, then a noise pass; None: 100 / 20 / 25
        pgd_steps: int | None = Field(None, ge=1)  # signed steps per batch in a noise pass; None: 5 / 20 / 20
        # weight of the contrastive loss in the noise objective; None: 1 / 0 / 0
        w_ssl: float | None = Field(None, ge=0)
        w_csd: float | None = Field(None, ge=0)  # weight of the class-wise separability term (CSD); None: 1 / 0.1 / 0.1
        random_start: bool | None = None  # start delta from U(-eps, eps), else 0; None: False / True / True
        batch_size: int = Field(512, ge=2)  # batch of the model and noise phases
        arch: str = "resnet18"  # architecture of the encoder
        lr: float | None = Field(None, gt=0)  # lr (simclr: Adam, else SGD, constant); None: 0.3 / 1e-3 / 0.06
        weight_decay: float | None = Field(None, ge=0)  # weight decay; None: 1e-4 / 1e-6 / 5e-4
        momentum: float = 0.9  # SGD momentum (moco, simsiam; simclr uses Adam)
        # train-mode BN statistics per 1/bn_groups of the batch; None: 8 (MoCo's SplitBatchNorm), else 1
        bn_groups: int | None = Field(None, ge=1)
        crop_scale_min: float = Field(0.08, gt=0, le=1)  # smallest area fraction of the views' random resized crop
        proj_dim: int = Field(128, ge=1)  # projector output dim (moco, simclr; simsiam: proj_hidden)
        # projector hidden width, 0: linear (simsiam: its dim); None: 0 / 512 / 2048
        proj_hidden: int | None = Field(None, ge=0)
        temperature: float | None = Field(None, gt=0)  # softmax temperature (moco, simclr); None: moco 0.2, simclr 0.5
        queue_size: int | None = Field(None, ge=1)  # MoCo: length of the queue of negative keys; None: 4096
        key_momentum: float | None = Field(None, ge=0, le=1)  # MoCo: EMA momentum of the key encoder; None: 0.99
        # noise gradient also through the key / stop-grad branch (moco, simsiam); None: True
        key_grad: bool | None = None

        @field_validator(*OWNERS)
        @classmethod
        def _objective_only(cls, value: Any, info: ValidationInfo) -> Any:
            return only_for(OWNERS, "objective", value, info)

    # quick: small CNN on 5k (9 batches of 512 per pass: one model epoch, then one noise pass per
    # epoch, as the demo's train_steps 100 > 97 batches gives on 50k); 8 epochs.
    profiles = {
        "quick": {"arch": "small-cnn", "epochs": 8},
        "smoke": {"arch": "small-cnn", "epochs": 1, "batch_size": 16, "pgd_steps": 2},
    }

    def settings(self) -> dict[str, Any]:
        """Every effective setting (``None`` params resolved to the objective's demo values)."""
        p = self.params
        s = p.model_dump()
        for key, value in DEFAULTS[p.objective].items():
            if s.get(key) is None:
                s[key] = value
        if s["proj_hidden"] is None:
            s["proj_hidden"] = {"moco": 0, "simclr": 512, "simsiam": 2048}[p.objective]
        return s

    def _objective(self, train: ImageDataset, ctx: RunContext, s: dict[str, Any]) -> CLObjective:
        c = train.shape[0]
        with seeded(ctx, "tue.model"):
            enc = build_classifier(s["arch"], c, train.num_classes, [0.0] * c, [1.0] * c, ctx.device)
            if s["objective"] == "moco":
                obj: CLObjective = MoCoObjective(
                    enc, hidden=s["proj_hidden"], out=s["proj_dim"], temperature=s["temperature"], queue_size=s["queue_size"],
                    momentum=s["key_momentum"], key_grad=s["key_grad"], ema_in_noise_phase=False,
                    generator=ctx.generator("tue.keys"), bn_groups=s["bn_groups"],
                )
            elif s["objective"] == "simclr":
                obj = SimCLRObjective(enc, hidden=s["proj_hidden"] or enc.feature_dim, out=s["proj_dim"], temperature=s["temperature"])
            else:
                dim = s["proj_hidden"] or 2048
                obj = SimSiamObjective(enc, dim=dim, pred_hidden=max(1, dim // 4), key_grad=s["key_grad"], bn_groups=s["bn_groups"])
        return obj.to(ctx.device)

    def generate(self, train: ImageDataset, ctx: RunContext) -> Poison:
        s = self.settings()
        dev, eps, alpha = ctx.device, s["eps"], s["alpha"]
        obj = self._objective(train, ctx, s)
        if s["objective"] == "simclr":
            opt: torch.optim.Optimizer = torch.optim.Adam(obj.trainable(), lr=s["lr"], weight_decay=s["weight_decay"])
        else:
            opt = torch.optim.SGD(obj.trainable(), lr=s["lr"], momentum=s["momentum"], weight_decay=s["weight_decay"])
        delta = torch.zeros(train.x.shape)
        if s["random_start"]:
            delta.uniform_(-eps, eps, generator=ctx.generator("tue.init"))
        delta = delta.to(dev)
        g = ctx.generator("tue.batches")
        view = {"scale": (s["crop_scale_min"], 1.0)}
        data = resident(train, dev)
        on, n = data.x.device, len(data)
        bs = min(s["batch_size"], n)
        y_all = data.y.to(dev)

        def perturb(idx: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            return x + delta[idx.to(dev)]  # the model phase does not clamp (official)

        history: dict[str, list[float]] = {"model_loss": [], "noise_loss": [], "csd": []}
        for epoch in range(s["epochs"]):
            order = list(batches(n, bs, g, drop_last=s["drop_last"], device=on))
            rounds = len(order) // s["train_steps"] + 1
            m_losses, noise_sum, csd_sum, noise_n = [], torch.zeros((), device=dev), torch.zeros((), device=dev), 0
            for r in range(rounds):
                chunk = order[r * s["train_steps"] : (r + 1) * s["train_steps"]]
                if chunk:
                    m_losses.append(model_phase(obj, opt, data, chunk, perturb, g, view, ctx))
                with obj.noise_phase():
                    for idx in batches(n, bs, g, drop_last=s["drop_last"], device=on):
                        i = idx.to(dev)
                        x, y = data.float_batch(idx, dev), y_all[i]
                        d = delta[i]
                        for _ in range(s["pgd_steps"]):
                            d = d.detach().requires_grad_(True)
                            loss = torch.zeros((), device=dev)
                            if s["w_ssl"]:
                                v1, v2 = two_views((x + d).clamp(0, 1), g, view)
                                with autocast(ctx):
                                    loss = loss + s["w_ssl"] * obj(v1, v2, y)
                            csd = csd_loss(d, y)
                            if s["w_csd"]:
                                loss = loss + s["w_csd"] * csd
                            (grad,) = torch.autograd.grad(loss, d)
                            with torch.no_grad():
                                d = (d - alpha * grad.sign()).clamp_(-eps, eps)
                                d = (x + d).clamp_(0, 1) - x
                            noise_sum += loss.detach().float()
                            csd_sum += csd.detach().float()
                            noise_n += 1
                        delta[i] = d.detach()
            history["model_loss"].append(round(sum(m_losses) / max(1, len(m_losses)), 4))
            history["noise_loss"].append(round(float(noise_sum) / max(1, noise_n), 4))
            history["csd"].append(round(float(csd_sum) / max(1, noise_n), 4))
            ctx.log(
                f"tue/{s['objective']}: epoch {epoch + 1}/{s['epochs']} model loss {history['model_loss'][-1]:.4f}, "
                f"noise loss {history['noise_loss'][-1]:.4f}, csd {history['csd'][-1]:.4f}"
            )
        delta = delta.cpu()
        meta = {"settings": {k: v for k, v in s.items() if isinstance(v, (int, float, str, bool))}, **history}
        return Poison(x=release(train.x, delta), delta=delta, kind="samplewise", meta=meta)


PLUGINS = [TUE]
