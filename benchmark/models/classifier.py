"""A backbone with input normalization and a linear head: what victims return and attacks train."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Classifier(nn.Module):
    """``head(backbone((x - mean) / std))``.

    Input ``[B, C, H, W]`` float in [0, 1] pixel space (perturbations live there); normalization is
    inside the model, so pixel-space attacks and defenses never see normalized tensors.
    ``features(x)`` returns ``[B, feature_dim]``; ``forward(x)`` returns logits ``[B, num_classes]``.
    """

    # buffers (registered in __init__) and the architecture name build_classifier sets
    mean: torch.Tensor
    std: torch.Tensor
    arch: str

    def __init__(
        self, backbone: nn.Module, feature_dim: int, num_classes: int, mean: Sequence[float], std: Sequence[float]
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.feature_dim = feature_dim
        self.head = nn.Linear(feature_dim, num_classes)
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self(x).argmax(1)
