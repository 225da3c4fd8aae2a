"""TP: transferable poisoning (Liu, Backes & Zhang, "Transferable Availability Poisoning Attacks",
arXiv 2310.05141; Algorithm 1 and Appendix A.2; code TrustMLRG/TransPoison)."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from pydantic import Field

from benchmark.data.dataset import ImageDataset
from benchmark.folding import fold_batchnorm
from benchmark.interfaces import Attack, Poison, RunContext, release
from benchmark.models import build_classifier
from benchmark.params import Params
from benchmark.ssl.objectives import AlignUniformObjective
from benchmark.ssl.poisoning import model_phase, seeded, two_views
from benchmark.training import autocast, batches, pgd, resident, to_model


class TP(Attack):
    """Transferable poisoning: error-minimizing noise against one backbone that is trained, in
    turn, contrastively (alignment + uniformity) and supervised (cross entropy), so the poison
    transfers across supervised and contrastive learners.

    Threat model: L-inf, ``eps`` = 8/255, sample-wise ``delta`` ``[N, C, H, W]`` indexed by
    dataset index.

    Loop (the paper's Algorithm 1 with Appendix A.2): one backbone
    (CIFAR ResNet-18, input standardized inside the model) with a linear classifier head and a
    projection head 512 -> 512 -> 128. Each of T = ``epochs`` = 300 epochs runs four phases of
    M = |D| / B batches (B = 512, each phase its own shuffled pass):
    (1) M contrastive model updates on two views (SimCLR augmentations: random resized crop
    0.2-1, flip, jitter 0.4/0.4/0.4/0.1 p 0.8, grayscale p 0.2) of x + delta, loss
    ``L_CL = lam * align(z_a, z_b; align_alpha) + (uniform(z_a; t) + uniform(z_b; t)) / 2``
    (lam = 1, align_alpha = 2, t = 2), SGD lr 0.5, m 0.9, wd 1e-4 on backbone + projection head;
    (2) for every batch ``cl_pgd_steps`` = 5 signed steps of alpha = 0.1 eps minimizing L_CL, two
    fresh views every step (network frozen, eval mode); (3) M supervised updates of cross entropy
    on x + delta, SGD lr 0.1, m 0.9, wd 5e-4 on backbone + classifier head; (4) for every batch
    ``sl_pgd_steps`` = 5 signed steps of 0.1 eps minimizing the cross entropy (error-minimizing,
    EM-style). Steps project on the eps-ball and the image box.

    Choices where the paper is silent (documented, not from its text): delta starts at 0; the
    supervised phases use no augmentation (Algorithm 1 feeds ``x_i + delta_i``); learning rates
    are constant; the noise phases visit every sample (a shuffled pass without drop-last), the
    model phases drop the last partial batch (M = floor(|D| / B)); the projector follows CP's
    SimCLR head (TP's code builds on CP's).

    The public code (TrustMLRG/TransPoison ``anneal.py``: a frozen TAP-pretrained classifier with
    targeted steps plus SimCLR InfoNCE on a separate network) is *not* implemented here; the
    paper's Table 7 calls that design "two models" / "TAP-based" and reports it as weaker.
    Deviations: our tensor augmentations (kornia in TP's code base); the release rounds to
    nearest (the code: round half up).
    """

    name = "tp"

    class Params(Params):
        eps: float = Field(8 / 255, gt=0, le=1)  # L-inf budget on [0, 1] pixels; 8/255 in the paper
        alpha: float | None = Field(None, gt=0, le=1)  # PGD step size on [0, 1] pixels, both noise phases; None: 0.1 * eps
        epochs: int = Field(300, ge=1)  # T: epochs of the four phases (CL model, CL noise, SL model, SL noise)
        cl_pgd_steps: int = Field(5, ge=0)  # S_cl: signed steps per batch minimising the contrastive loss
        sl_pgd_steps: int = Field(5, ge=0)  # S_sl: signed steps per batch minimising the cross entropy
        lam: float = Field(1.0, ge=0)  # weight of the alignment term
        align_alpha: float = Field(2.0, gt=0)  # exponent alpha of the alignment loss E ||z_a - z_b||^alpha
        unif_t: float = Field(2.0, gt=0)  # t of the uniformity loss log E exp(-t ||z_i - z_j||^2)
        batch_size: int = Field(512, ge=2)  # batch B of all four phases
        arch: str = "resnet18"  # architecture of the shared backbone
        sl_lr: float = Field(0.1, gt=0)  # SGD lr of the supervised model phase (constant)
        sl_weight_decay: float = Field(5e-4, ge=0)  # SGD weight decay of the supervised model phase
        cl_lr: float = Field(0.5, gt=0)  # SGD lr of the contrastive model phase (constant)
        cl_weight_decay: float = Field(1e-4, ge=0)  # SGD weight decay of the contrastive model phase
        momentum: float = 0.9  # SGD momentum of both model phases
        crop_scale_min: float = Field(0.2, gt=0, le=1)  # smallest area fraction of the views' random resized crop
        proj_hidden: int | None = Field(None, ge=1)  # projection head hidden width; None: the feature dim
        proj_dim: int = Field(128, ge=1)  # projection head output dim

    # quick: small CNN on 5k (9 model batches of 512 per phase), 10 epochs; see docs/attacks.md.
    profiles = {
        "quick": {"arch": "small-cnn", "epochs": 10},
        "smoke": {"arch": "small-cnn", "epochs": 1, "batch_size": 16, "cl_pgd_steps": 2, "sl_pgd_steps": 2},
    }

    def generate(self, train: ImageDataset, ctx: RunContext) -> Poison:
        p = self.params
        dev, eps = ctx.device, p.eps
        alpha = p.alpha if p.alpha is not None else 0.1 * eps
        c = train.shape[0]
        with seeded(ctx, "tp.model"):
            model = build_classifier(p.arch, c, train.num_classes, *train.mean_std(), dev)
            obj = AlignUniformObjective(
                model, hidden=p.proj_hidden or model.feature_dim, out=p.proj_dim, lam=p.lam, alpha=p.align_alpha, t=p.unif_t
            ).to(dev)
        cl_opt = torch.optim.SGD(obj.trainable(), lr=p.cl_lr, momentum=p.momentum, weight_decay=p.cl_weight_decay)
        sl_opt = torch.optim.SGD(model.parameters(), lr=p.sl_lr, momentum=p.momentum, weight_decay=p.sl_weight_decay)
        g = ctx.generator("tp.batches")
        view = {"scale": (p.crop_scale_min, 1.0)}
        data = resident(train, dev)
        on, n = data.x.device, len(data)
        bs = min(p.batch_size, n)
        y_all = data.y.to(dev)
        delta = torch.zeros(train.x.shape, device=dev)

        def perturb(idx: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            return (x + delta[idx.to(dev)]).clamp(0, 1)

        def model_batches() -> itertools.islice[torch.Tensor]:
            return itertools.islice(batches(n, bs, g, drop_last=True, device=on), n // bs)

        history: dict[str, list[float]] = {"cl_model_loss": [], "cl_noise_loss": [], "sl_model_loss": [], "sl_noise_loss": [], "train_accuracy": []}
        for epoch in range(p.epochs):
            # (1) contrastive model phase
            history["cl_model_loss"].append(round(model_phase(obj, cl_opt, data, model_batches(), perturb, g, view, ctx), 4))
            # (2) contrastive PGD phase
            cl_sum = torch.zeros((), device=dev)
            with obj.noise_phase():
                for idx in batches(n, bs, g, drop_last=False, device=on):
                    i = idx.to(dev)
                    x, y = data.float_batch(idx, dev), y_all[i]

                    last: list[torch.Tensor] = []

                    def cl_loss(xp: torch.Tensor, y: torch.Tensor = y, last: list[torch.Tensor] = last) -> torch.Tensor:
                        v1, v2 = two_views(xp, g, view)
                        with autocast(ctx):
                            loss = obj(v1, v2, y)
                        last[:] = [loss.detach().float()]
                        return loss

                    if p.cl_pgd_steps:
                        delta[i] = pgd(cl_loss, x, delta[i], eps=eps, alpha=alpha, steps=p.cl_pgd_steps)
                        cl_sum += last[0] * len(idx)  # the loss at the last step (before its update)
            history["cl_noise_loss"].append(round(float(cl_sum) / n, 4))
            # (3) supervised model phase
            model.train()
            sl_sum = torch.zeros((), device=dev)
            for idx in model_batches():
                x = perturb(idx, data.float_batch(idx, dev))
                with autocast(ctx):
                    loss = F.cross_entropy(model(to_model(x)), y_all[idx.to(dev)])
                sl_opt.zero_grad(set_to_none=True)
                loss.backward()
                sl_opt.step()
                sl_sum += loss.detach().float()
            history["sl_model_loss"].append(round(float(sl_sum) / max(1, n // bs), 4))
            # (4) supervised error-minimizing PGD phase
            fm = fold_batchnorm(model)
            ce_sum = torch.zeros((), device=dev)
            correct = torch.zeros((), dtype=torch.long, device=dev)
            for idx in batches(n, bs, g, drop_last=False, device=on):
                i = idx.to(dev)
                x, y = data.float_batch(idx, dev), y_all[i]

                def ce(xp: torch.Tensor, y: torch.Tensor = y, fm: torch.nn.Module = fm) -> torch.Tensor:
                    with autocast(ctx):
                        return F.cross_entropy(fm(to_model(xp)).float(), y)

                if p.sl_pgd_steps:
                    delta[i] = pgd(ce, x, delta[i], eps=eps, alpha=alpha, steps=p.sl_pgd_steps)
                with torch.no_grad(), autocast(ctx):
                    logits = fm(to_model((x + delta[i]).clamp(0, 1))).float()
                    ce_sum += F.cross_entropy(logits, y, reduction="sum")
                    correct += (logits.argmax(1) == y).sum()
            history["sl_noise_loss"].append(round(float(ce_sum) / n, 4))
            history["train_accuracy"].append(round(int(correct) / n, 4))
            ctx.log(
                f"tp: epoch {epoch + 1}/{p.epochs} CL model {history['cl_model_loss'][-1]:.4f} / noise "
                f"{history['cl_noise_loss'][-1]:.4f}; SL model {history['sl_model_loss'][-1]:.4f} / noise "
                f"{history['sl_noise_loss'][-1]:.4f}, train acc on x+delta {history['train_accuracy'][-1]:.4f}"
            )
        delta = delta.cpu()
        return Poison(x=release(train.x, delta), delta=delta, kind="samplewise", meta={"alpha": alpha, **history})


PLUGINS = [TP]
