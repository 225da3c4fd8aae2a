"""SupCL victim: supervised contrastive pretraining (SupCon loss), then a linear probe."""

from __future__ import annotations

import torch
from pydantic import Field

from benchmark.interfaces import RunContext
from benchmark.models.classifier import Classifier
from benchmark.ssl.losses import supcon
from benchmark.ssl.method import SSLMethod
from benchmark.ssl.victim import QUICK_COMMON, SMOKE_COMMON, SSLParams, SSLVictim
from plugins.victims.simclr import SimCLRMethod


class SupConMethod(SimCLRMethod):
    """SimCLR's encoder pass and projector; the loss treats every same-label view as a positive."""

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z1, z2 = self.projector(self.encoder.features(torch.cat([x1, x2]))).chunk(2)
        return supcon(z1, z2, y, self.temperature)


class SupCL(SSLVictim):
    """Supervised contrastive learning (Khosla et al., "Supervised Contrastive Learning",
    NeurIPS 2020), the SupCL victim of TP (Liu et al., "Transferable Unlearnable Examples",
    ICLR 2023).

    Role: a victim (no threat model). Input uint8 ``[N, C, H, W]`` plus labels ``[N]``; two views
    per image; SupCon over the ``2B`` projections ``[2B, 128]`` (positives: all other views with the
    same label); then a linear probe; returns a :class:`Classifier` ``[B, C, H, W] -> [B, K]``.

    Paper profile (§3.7, TP faithful): ResNet-18, projector 512 -> 512 -> 128, T 0.5, SGD lr 0.5,
    wd 1e-4, batch 512, 1000 epochs, warm-up + cosine; probe as §3.2. SupContrast's own default is
    T 0.1 (set ``temperature: 0.1``). Deviation: no T/0.07 loss scale (TP multiplies by it).
    ``quick``: small CNN, projector 256 -> 256 -> 128, batch 256, lr 0.12, wd 5e-4.
    Supervised ``TrainHooks`` are ignored (see :class:`SSLVictim`).
    """

    name = "supcl"

    class Params(SSLParams):
        temperature: float = Field(0.5, gt=0)
        proj_hidden: int | None = Field(None, ge=1)
        proj_dim: int = Field(128, ge=1)

    profiles = {
        "quick": {**QUICK_COMMON, "epochs": 15, "lr": 0.12, "weight_decay": 5e-4},
        "smoke": {**SMOKE_COMMON},
    }

    def build_method(self, encoder: Classifier, ctx: RunContext) -> SSLMethod:
        p = self.params
        return SupConMethod(encoder, p.proj_hidden or encoder.feature_dim, p.proj_dim, p.temperature)


PLUGINS = [SupCL]
