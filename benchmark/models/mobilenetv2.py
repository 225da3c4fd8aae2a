"""CIFAR-style MobileNetV2 (Sandler et al., CVPR 2018; the kuangliu/pytorch-cifar layout):
3x3 stride-1 stem, and the 24-channel stage runs at stride 1 (stride 2 in the ImageNet net)."""

from __future__ import annotations

import torch
from torch import nn

# (expansion, out channels, repeats, stride of the first block); stage 2 at stride 1 for CIFAR.
CIFAR_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise 3x3 (stride) -> linear project (1x1); residual when shapes allow
    (a 1x1 projected shortcut at stride 1 when channels change, as in the CIFAR variant)."""

    def __init__(self, cin: int, cout: int, expansion: int, stride: int) -> None:
        super().__init__()
        hidden = cin * expansion
        self.stride = stride
        self.conv1 = nn.Conv2d(cin, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.conv3 = nn.Conv2d(hidden, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Sequential()
        if stride == 1 and cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return out + self.shortcut(x) if self.stride == 1 else out


class MobileNetV2(nn.Module):
    """MobileNetV2 backbone. Input ``[B, C, H, W]``, output ``[B, 1280]``."""

    def __init__(self, stages: tuple[tuple[int, int, int, int], ...] = CIFAR_STAGES, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        blocks: list[nn.Module] = []
        cin = 32
        for expansion, cout, repeats, stride in stages:
            for i in range(repeats):
                blocks.append(InvertedResidual(cin, cout, expansion, stride if i == 0 else 1))
                cin = cout
        self.layers = nn.Sequential(*blocks)
        self.conv2 = nn.Conv2d(cin, 1280, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(1280)
        self.feature_dim = 1280

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(torch.relu(self.bn1(self.conv1(x))))
        out = torch.relu(self.bn2(self.conv2(out)))
        return torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1)


def mobilenetv2(in_channels: int = 3) -> MobileNetV2:
    return MobileNetV2(CIFAR_STAGES, in_channels)
