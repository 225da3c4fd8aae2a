"""Projection and prediction MLP heads of the SSL methods (SimCLR, MoCo v2, BYOL, SimSiam)."""

from __future__ import annotations

import itertools
from typing import Literal

from torch import nn

LastBN = Literal["none", "affine", "plain"]


def mlp_head(dims: list[int], *, hidden_bn: bool = False, last_bn: LastBN = "none") -> nn.Sequential:
    """Linear layers through ``dims`` (``[in, hidden..., out]``), ReLU between them, optional BN on
    hidden layers (before ReLU) and on the output (``plain`` = BN without affine, as SimSiam)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(dims)):
        last = i == len(dims) - 2
        use_bn = (last_bn != "none") if last else hidden_bn
        layers.append(nn.Linear(a, b, bias=not use_bn))
        if use_bn:
            layers.append(nn.BatchNorm1d(b, affine=not (last and last_bn == "plain")))
        if not last:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def projection_head(in_dim: int, hidden_dim: int, out_dim: int, *, bn: bool = False, last_bn: LastBN = "none") -> nn.Sequential:
    """Two-layer projector ``in -> hidden -> out`` (SimCLR/MoCo v2: no BN; BYOL: hidden BN;
    SimSiam: hidden BN and output BN without affine)."""
    return mlp_head([in_dim, hidden_dim, out_dim], hidden_bn=bn, last_bn=last_bn)


def prediction_head(dim: int, hidden_dim: int) -> nn.Sequential:
    """BYOL/SimSiam predictor ``dim -> hidden (BN, ReLU) -> dim``."""
    return mlp_head([dim, hidden_dim, dim], hidden_bn=True)
