"""SimCLR victim: NT-Xent contrastive pretraining, then a linear probe."""

from __future__ import annotations

import torch
from pydantic import Field

from benchmark.interfaces import RunContext
from benchmark.models.classifier import Classifier
from benchmark.ssl.heads import projection_head
from benchmark.ssl.losses import nt_xent
from benchmark.ssl.method import SSLMethod
from benchmark.ssl.victim import QUICK_COMMON, SMOKE_COMMON, SSLParams, SSLVictim


class SimCLRMethod(SSLMethod):
    """Both views through one encoder pass (``[2B, C, H, W] -> [2B, F]``), a projector
    ``F -> hidden -> out`` (ReLU, no BN) and NT-Xent over the ``2B`` projections."""

    def __init__(self, encoder: Classifier, hidden: int, out: int, temperature: float) -> None:
        super().__init__(encoder)
        self.projector = projection_head(encoder.feature_dim, hidden, out)
        self.temperature = temperature

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z1, z2 = self.projector(self.encoder.features(torch.cat([x1, x2]))).chunk(2)
        return nt_xent(z1, z2, self.temperature)


class SimCLR(SSLVictim):
    """SimCLR (Chen, Kornblith, Norouzi & Hinton, ICML 2020) as the contrastive data user of the
    CP paper (He, Zha & Katabi, "Indiscriminate Poisoning Attacks on Unsupervised Contrastive
    Learning", ICLR 2023) and of TP (Liu et al., "Transferable Unlearnable Examples", ICLR 2023).

    Role: a victim (no threat model of its own): it trains on whatever (poisoned, defended) uint8
    images ``[N, C, H, W]`` it gets, then fits a linear probe on the same set, and returns a
    :class:`Classifier` mapping [0, 1] images ``[B, C, H, W]`` to logits ``[B, K]``.

    Paper profile (specs/defenses-metrics-victims.md §3.2-3.3, CP faithful): ResNet-18, projector
    512 -> 512 -> 128, NT-Xent T 0.5, SGD lr 0.5, m 0.9, wd 1e-4, batch 512, 1000 epochs, 10-epoch
    warm-up from 0.01, cosine to lr/1000; probe SGD lr 1.0, 100 epochs, x0.2 at 60/75/90.
    Deviations: the loss is *not* multiplied by T/0.07 as in CP's SupContrast-derived code (an lr
    rescale); the probe sees un-augmented features extracted once (CP augments the probe's
    inputs); the probe is trained on the victim's own training set and the final epoch is kept.
    ``quick``: small CNN (256-d), projector 256 -> 256 -> 128, batch 256, lr 0.12, wd 5e-4.
    Supervised ``TrainHooks`` are ignored (see :class:`SSLVictim`).
    """

    name = "simclr"

    class Params(SSLParams):
        temperature: float = Field(0.5, gt=0)
        proj_hidden: int | None = Field(None, ge=1)  # None: the encoder's feature dimension (512 for ResNet-18)
        proj_dim: int = Field(128, ge=1)

    profiles = {
        "quick": {**QUICK_COMMON, "epochs": 20, "lr": 0.12, "weight_decay": 5e-4},
        "smoke": {**SMOKE_COMMON},
    }

    def build_method(self, encoder: Classifier, ctx: RunContext) -> SSLMethod:
        p = self.params
        return SimCLRMethod(encoder, p.proj_hidden or encoder.feature_dim, p.proj_dim, p.temperature)


PLUGINS = [SimCLR]
