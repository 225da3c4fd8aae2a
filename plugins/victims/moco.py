"""MoCo v2 victim: momentum-contrast pretraining with a queue of negatives, then a linear probe."""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import nn

from benchmark.interfaces import RunContext
from benchmark.models.classifier import Classifier
from benchmark.ssl.heads import projection_head
from benchmark.ssl.losses import info_nce_queue
from benchmark.ssl.method import SSLMethod
from benchmark.ssl.momentum import KeyQueue, ema_update, momentum_copy
from benchmark.ssl.victim import QUICK_COMMON, SMOKE_COMMON, SSLParams, SSLVictim


class MoCoMethod(SSLMethod):
    """Query encoder + projector (trained), key encoder + projector (EMA of the query side),
    a queue ``[K, out]`` of past keys. Symmetric loss: ``q(x1)`` against ``k(x2)`` and ``q(x2)``
    against ``k(x1)``, each InfoNCE over ``1 + K`` keys, averaged; both key batches are enqueued.

    Shuffle-BN substitute (single device): the key batch ``[2B, C, H, W]`` is permuted and
    encoded in ``key_splits`` chunks with separate BN statistics, then un-permuted, so a query
    and its positive key are not normalized with the same batch statistics.
    """

    def __init__(
        self, encoder: Classifier, hidden: int, out: int, temperature: float, queue_size: int, momentum: float,
        key_splits: int, generator: torch.Generator,
    ) -> None:
        super().__init__(encoder)
        self.projector = projection_head(encoder.feature_dim, hidden, out)
        self.key_encoder = momentum_copy(encoder)
        self.key_projector = momentum_copy(self.projector)
        self.queue = KeyQueue(queue_size, out, generator)
        self.temperature, self.momentum, self.key_splits = temperature, momentum, key_splits
        self.generator = generator

    @torch.no_grad()
    def _keys(self, x: torch.Tensor) -> torch.Tensor:
        perm = torch.randperm(len(x), generator=self.generator).to(x.device)
        chunks = [self.key_projector(self.key_encoder.features(c)) for c in x[perm].chunk(self.key_splits)]
        return torch.cat(chunks)[perm.argsort()]

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        q1, q2 = self.projector(self.encoder.features(torch.cat([x1, x2]))).chunk(2)
        k1, k2 = self._keys(torch.cat([x1, x2])).chunk(2)
        bank = self.queue.queue.clone()
        loss = 0.5 * (info_nce_queue(q1, k2, bank, self.temperature) + info_nce_queue(q2, k1, bank, self.temperature))
        self._pending = torch.cat([k1, k2])
        return loss

    def after_step(self, step: int, total_steps: int) -> None:
        ema_update(self.key_encoder, self.encoder, self.momentum)
        ema_update(self.key_projector, self.projector, self.momentum)
        self.queue.enqueue(self._pending)

    def param_groups(self) -> list[dict[str, Any]]:
        trained: list[nn.Parameter] = [*self.encoder.parameters(), *self.projector.parameters()]
        return [{"params": [p for p in trained if p.requires_grad]}]


class MoCoV2(SSLVictim):
    """MoCo v2 (He et al., "Momentum Contrast for Unsupervised Visual Representation Learning",
    CVPR 2020; Chen et al., "Improved Baselines with Momentum Contrastive Learning", 2020), the
    MoCo victim of CP (He, Zha & Katabi, ICLR 2023).

    Role: a victim (no threat model). Input uint8 ``[N, C, H, W]``; queries and keys ``[B, 128]``;
    queue ``[4096, 128]``; returns a linear-probed :class:`Classifier` ``[B, C, H, W] -> [B, K]``.

    Paper profile (§3.4, CP faithful): ResNet-18, MLP 512 -> 512 -> 128, queue 4096, key momentum
    0.99, T 0.2, SGD lr 0.3, wd 1e-4, batch 512, 1000 epochs, warm-up + cosine; probe §3.2.
    Deviations: single device, so no shuffle-BN across GPUs: the key batch is shuffled and
    encoded in ``key_splits`` (4) chunks with their own BN statistics instead; the loss is
    symmetrized (both views act as query) and not scaled by T/0.07.
    ``quick``: small CNN, MLP 256 -> 256 -> 128, batch 256, lr 0.12, wd 5e-4, queue 4096.
    Supervised ``TrainHooks`` are ignored (see :class:`SSLVictim`).
    """

    name = "moco"

    class Params(SSLParams):
        lr: float = Field(0.3, gt=0)
        temperature: float = Field(0.2, gt=0)
        queue_size: int = Field(4096, ge=1)
        key_momentum: float = Field(0.99, ge=0, le=1)
        key_splits: int = Field(4, ge=1)
        proj_hidden: int | None = Field(None, ge=1)
        proj_dim: int = Field(128, ge=1)

    profiles = {
        "quick": {**QUICK_COMMON, "epochs": 15, "lr": 0.12, "weight_decay": 5e-4},
        "smoke": {**SMOKE_COMMON, "queue_size": 64, "key_splits": 2},
    }

    def build_method(self, encoder: Classifier, ctx: RunContext) -> SSLMethod:
        p = self.params
        return MoCoMethod(
            encoder, p.proj_hidden or encoder.feature_dim, p.proj_dim, p.temperature, p.queue_size, p.key_momentum,
            p.key_splits, ctx.generator(13),
        )


PLUGINS = [MoCoV2]
