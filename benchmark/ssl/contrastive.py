"""In-batch contrastive objectives around one encoder: SimCLR's NT-Xent (Chen et al., ICML 2020)
and supervised contrastive learning's SupCon (Khosla et al., NeurIPS 2020). Used by the ``simclr``
and ``supcl`` victims and by contrastive attacks (CP, TP) that optimize through the same loss."""

from __future__ import annotations

import torch

from benchmark.models.classifier import Classifier
from benchmark.ssl.heads import projection_head
from benchmark.ssl.losses import nt_xent, supcon
from benchmark.ssl.method import SSLMethod


def loss_scale(temperature: float, base_temperature: float | None) -> float:
    """The factor SupContrast-derived code (CP: kaiwenzha/contrastive-poisoning ``losses.py``; TP:
    TrustMLRG/TransPoison ``losses.py``) multiplies its InfoNCE/SupCon loss by:
    ``temperature / base_temperature`` (``base_temperature`` 0.07 there), or 1 when ``None``.
    It scales the gradient, i.e. the effective learning rate: x7.1 at T 0.5, x2.9 at T 0.2."""
    return 1.0 if base_temperature is None else temperature / base_temperature


class SimCLRMethod(SSLMethod):
    """SimCLR: both views through one encoder pass (``[2B, C, H, W] -> [2B, F]``), a projector
    ``F -> hidden -> out`` (ReLU, no BN), NT-Xent at ``temperature`` over the ``2B`` projections,
    times ``scale`` (see :func:`loss_scale`)."""

    def __init__(self, encoder: Classifier, hidden: int, out: int, temperature: float, scale: float = 1.0) -> None:
        super().__init__(encoder)
        self.projector = projection_head(encoder.feature_dim, hidden, out)
        self.temperature, self.scale = temperature, scale

    def project(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Projections ``[B, out]`` of both views, from one encoder pass over ``[2B, C, H, W]``."""
        z1, z2 = self.projector(self.encoder.features(torch.cat([x1, x2]))).chunk(2)
        return z1, z2

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z1, z2 = self.project(x1, x2)
        return self.scale * nt_xent(z1, z2, self.temperature)


class SupConMethod(SimCLRMethod):
    """SupCon: SimCLR's encoder pass and projector; every other view with the same label is a
    positive (the ``L_out`` form), times ``scale``."""

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z1, z2 = self.project(x1, x2)
        return self.scale * supcon(z1, z2, y, self.temperature)
