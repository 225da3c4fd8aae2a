"""CIFAR-style VGG-19 with batch norm (Simonyan & Zisserman 2015; the kuangliu/pytorch-cifar layout)."""

from __future__ import annotations

import torch
from torch import nn

VGG19_LAYOUT: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
)


class VGG(nn.Module):
    """VGG backbone: [conv3x3, BN, ReLU] blocks and 2x2 max-pools as in ``layout`` ("M" = pool),
    then global average pooling (a 1x1 map at 32x32 input). Input ``[B, C, H, W]``, output
    ``[B, 512]``."""

    def __init__(self, layout: tuple[int | str, ...] = VGG19_LAYOUT, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for item in layout:
            if item == "M":
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            else:
                layers += [nn.Conv2d(cin, int(item), 3, padding=1), nn.BatchNorm2d(int(item)), nn.ReLU(inplace=True)]
                cin = int(item)
        self.features = nn.Sequential(*layers)
        self.feature_dim = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1)


def vgg19(in_channels: int = 3) -> VGG:
    return VGG(VGG19_LAYOUT, in_channels)
