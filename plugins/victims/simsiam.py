"""SimSiam victim: siamese pretraining with a predictor and stop-gradient, then a linear probe."""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from benchmark.interfaces import RunContext
from benchmark.models.classifier import Classifier
from benchmark.ssl.heads import mlp_head, projection_head
from benchmark.ssl.losses import negative_cosine
from benchmark.ssl.method import SSLMethod
from benchmark.ssl.victim import QUICK_COMMON, SMOKE_COMMON, SSLParams, SSLVictim


class SimSiamMethod(SSLMethod):
    """Encoder -> projector ``F -> D (BN, ReLU) -> D (BN, no affine)`` -> predictor
    ``D -> D/4 (BN, ReLU) -> D``. Loss ``0.5 * (-cos(p1, sg(z2)) - cos(p2, sg(z1)))``.
    The predictor's parameter group keeps a constant lr (SimSiam paper)."""

    def __init__(self, encoder: Classifier, dim: int, pred_hidden: int, fixed_predictor_lr: bool) -> None:
        super().__init__(encoder)
        self.projector = projection_head(encoder.feature_dim, dim, dim, bn=True, last_bn="plain")
        self.predictor = mlp_head([dim, pred_hidden, dim], hidden_bn=True)
        self.fixed_predictor_lr = fixed_predictor_lr

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z = self.projector(self.encoder.features(torch.cat([x1, x2])))
        p1, p2 = self.predictor(z).chunk(2)
        z1, z2 = z.chunk(2)
        return 0.5 * (negative_cosine(p1, z2) + negative_cosine(p2, z1))

    def param_groups(self) -> list[dict[str, Any]]:
        body = [*self.encoder.parameters(), *self.projector.parameters()]
        return [
            {"params": [p for p in body if p.requires_grad]},
            {"params": list(self.predictor.parameters()), "fixed_lr": self.fixed_predictor_lr},
        ]


class SimSiam(SSLVictim):
    """SimSiam (Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021), the
    SimSiam victim of TP (Liu et al., "Transferable Unlearnable Examples", ICLR 2023).

    Role: a victim (no threat model). Input uint8 ``[N, C, H, W]``; projections ``[B, 2048]``;
    returns a linear-probed :class:`Classifier` ``[B, C, H, W] -> [B, K]``.

    Paper profile (§3.6, TP faithful): ResNet-18, projector 512 -> 2048 (BN, ReLU) -> 2048 (BN
    without affine), predictor 2048 -> 512 -> 2048 with constant lr, symmetric negative cosine,
    SGD lr 0.5, wd 1e-4, batch 512, 1000 epochs, warm-up + cosine; probe §3.2.
    Deviation: the SimSiam CIFAR recipe's lr 0.06 / wd 5e-4 is not the default (TP's is).
    ``quick``: small CNN, projector 256 -> 512 -> 512, predictor 512 -> 128 -> 512, batch 256,
    lr 0.06, wd 5e-4. Supervised ``TrainHooks`` are ignored (see :class:`SSLVictim`).
    """

    name = "simsiam"

    class Params(SSLParams):
        dim: int = Field(2048, ge=1)
        pred_hidden: int = Field(512, ge=1)
        fixed_predictor_lr: bool = True

    profiles = {
        "quick": {**QUICK_COMMON, "epochs": 20, "lr": 0.06, "weight_decay": 5e-4, "dim": 512, "pred_hidden": 128},
        "smoke": {**SMOKE_COMMON, "dim": 32, "pred_hidden": 8},
    }

    def build_method(self, encoder: Classifier, ctx: RunContext) -> SSLMethod:
        p = self.params
        return SimSiamMethod(encoder, p.dim, p.pred_hidden, p.fixed_predictor_lr)


PLUGINS = [SimSiam]
