"""CIFAR-style DenseNet-121 (Huang et al., CVPR 2017; the kuangliu/pytorch-cifar layout):
3x3 stem of 2k channels, no initial pooling, growth rate k = 32, blocks (6, 12, 24, 16),
bottleneck layers, transitions with compression 0.5."""

from __future__ import annotations

import torch
from torch import nn


class DenseLayer(nn.Module):
    """BN-ReLU-conv1x1 (4k) -> BN-ReLU-conv3x3 (k), output concatenated to the input."""

    def __init__(self, cin: int, growth: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(torch.relu(self.bn1(x)))
        out = self.conv2(torch.relu(self.bn2(out)))
        return torch.cat([out, x], 1)


class Transition(nn.Module):
    """BN-ReLU-conv1x1 to ``cout`` channels, then 2x2 average pooling."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(cin)
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.avg_pool2d(self.conv(torch.relu(self.bn(x))), 2, ceil_mode=True)


class DenseNet(nn.Module):
    """DenseNet backbone. Input ``[B, C, H, W]``, output ``[B, feature_dim]`` (1024 for DenseNet-121)."""

    def __init__(self, blocks: tuple[int, ...] = (6, 12, 24, 16), growth: int = 32, reduction: float = 0.5, in_channels: int = 3) -> None:
        super().__init__()
        c = 2 * growth
        self.conv1 = nn.Conv2d(in_channels, c, 3, padding=1, bias=False)
        stages: list[nn.Module] = []
        for i, n in enumerate(blocks):
            layers: list[nn.Module] = []
            for _ in range(n):
                layers.append(DenseLayer(c, growth))
                c += growth
            stages.append(nn.Sequential(*layers))
            if i < len(blocks) - 1:
                cout = int(c * reduction)
                stages.append(Transition(c, cout))
                c = cout
        self.body = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(c)
        self.feature_dim = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn(self.body(self.conv1(x))))
        return torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1)


def densenet121(in_channels: int = 3) -> DenseNet:
    return DenseNet((6, 12, 24, 16), 32, 0.5, in_channels)
