"""SimSiam (Chen & He, CVPR 2021): a siamese encoder with a predictor and stop-gradient, no
negatives, no momentum encoder. Used by the ``simsiam`` victim and by contrastive attacks."""

from __future__ import annotations

from typing import Any

import torch

from benchmark.models.classifier import Classifier
from benchmark.ssl.heads import mlp_head, projection_head
from benchmark.ssl.losses import negative_cosine
from benchmark.ssl.method import SSLMethod


class SimSiamMethod(SSLMethod):
    """Encoder -> projector ``F -> D (BN, ReLU) -> D (BN, no affine)`` -> predictor
    ``D -> pred_hidden (BN, ReLU) -> D``. Loss ``0.5 * (-cos(p1, sg(z2)) - cos(p2, sg(z1)))``.
    ``fixed_predictor_lr``: the predictor's parameter group is not scheduled (the SimSiam paper);
    TP's code schedules every parameter alike (``False``)."""

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
