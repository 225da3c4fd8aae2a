"""BYOL (Grill et al., NeurIPS 2020): an online network with a predictor regresses the projection
of an EMA target network; no negatives. Used by the ``byol`` victim and by contrastive attacks."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from benchmark.models.classifier import Classifier
from benchmark.ssl.heads import prediction_head, projection_head
from benchmark.ssl.losses import negative_cosine
from benchmark.ssl.method import SSLMethod
from benchmark.ssl.momentum import cosine_momentum, ema_update, momentum_copy


class BYOLMethod(SSLMethod):
    """Online encoder -> projector ``F -> hidden (BN, ReLU) -> out`` -> predictor
    ``out -> hidden (BN, ReLU) -> out``; target encoder + projector = EMA of the online ones,
    updated once per step with ``momentum`` (``schedule="cosine"``: BYOL's ``momentum -> 1``).
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
