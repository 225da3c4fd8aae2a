"""BYOL victim: bootstrap-your-own-latent pretraining (no negatives), then a linear probe."""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from benchmark.interfaces import RunContext
from benchmark.models.classifier import Classifier
from benchmark.ssl.heads import prediction_head, projection_head
from benchmark.ssl.losses import negative_cosine
from benchmark.ssl.method import SSLMethod
from benchmark.ssl.momentum import cosine_momentum, ema_update, momentum_copy
from benchmark.ssl.victim import QUICK_COMMON, SMOKE_COMMON, SSLParams, SSLVictim


class BYOLMethod(SSLMethod):
    """Online encoder -> projector ``F -> hidden (BN, ReLU) -> out`` -> predictor
    ``out -> hidden (BN, ReLU) -> out``; target encoder + projector = EMA of the online ones.
    Loss: ``0.5 * (-cos(p1, z2') - cos(p2, z1'))`` with ``z'`` from the target (no gradient)."""

    def __init__(
        self, encoder: Classifier, hidden: int, out: int, momentum: float, schedule: Literal["constant", "cosine"]
    ) -> None:
        super().__init__(encoder)
        self.projector = projection_head(encoder.feature_dim, hidden, out, bn=True)
        self.predictor = prediction_head(out, hidden)
        self.target_encoder = momentum_copy(encoder)
        self.target_projector = momentum_copy(self.projector)
        self.base_momentum, self.schedule = momentum, schedule

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x1, x2])
        p1, p2 = self.predictor(self.projector(self.encoder.features(x))).chunk(2)
        with torch.no_grad():
            t1, t2 = self.target_projector(self.target_encoder.features(x)).chunk(2)
        return 0.5 * (negative_cosine(p1, t2) + negative_cosine(p2, t1))

    def after_step(self, step: int, total_steps: int) -> None:
        m = self.base_momentum
        if self.schedule == "cosine":
            m = cosine_momentum(self.base_momentum, step, total_steps)
        ema_update(self.target_encoder, self.encoder, m)
        ema_update(self.target_projector, self.projector, m)

    def param_groups(self) -> list[dict[str, Any]]:
        trained: list[nn.Parameter] = [*self.encoder.parameters(), *self.projector.parameters(), *self.predictor.parameters()]
        return [{"params": [p for p in trained if p.requires_grad]}]


class BYOL(SSLVictim):
    """BYOL (Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020), the BYOL victim of CP
    (He, Zha & Katabi, ICLR 2023).

    Role: a victim (no threat model). Input uint8 ``[N, C, H, W]``; projections and predictions
    ``[B, 256]``; returns a linear-probed :class:`Classifier` ``[B, C, H, W] -> [B, K]``.

    Paper profile (§3.5, CP faithful): ResNet-18, projector 512 -> 4096 (BN, ReLU) -> 256,
    predictor 256 -> 4096 -> 256, target momentum 0.999 fixed, symmetric negative cosine,
    SGD lr 1.0, wd 1e-4, batch 512, 1000 epochs, warm-up + cosine; probe §3.2.
    ``momentum_schedule: cosine`` gives the BYOL paper's 0.99 -> 1 schedule instead.
    Deviation: ``-cos`` instead of ``2 - 2 cos`` (same gradients up to a factor 2, i.e. lr).
    ``quick``: small CNN, hidden 1024, out 256 (lightly's CIFAR heads), momentum 0.99, batch 256,
    lr 0.12, wd 5e-4. Supervised ``TrainHooks`` are ignored (see :class:`SSLVictim`).
    """

    name = "byol"

    class Params(SSLParams):
        lr: float = Field(1.0, gt=0)
        target_momentum: float = Field(0.999, ge=0, le=1)
        momentum_schedule: Literal["constant", "cosine"] = "constant"
        hidden_dim: int = Field(4096, ge=1)
        out_dim: int = Field(256, ge=1)

    profiles = {
        "quick": {**QUICK_COMMON, "epochs": 15, "lr": 0.12, "weight_decay": 5e-4, "target_momentum": 0.99,
                  "hidden_dim": 1024},
        "smoke": {**SMOKE_COMMON, "hidden_dim": 32, "out_dim": 16, "target_momentum": 0.9},
    }

    def build_method(self, encoder: Classifier, ctx: RunContext) -> SSLMethod:
        p = self.params
        return BYOLMethod(encoder, p.hidden_dim, p.out_dim, p.target_momentum, p.momentum_schedule)


PLUGINS = [BYOL]
