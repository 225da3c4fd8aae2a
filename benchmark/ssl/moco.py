"""MoCo v2 (He et al., CVPR 2020; Chen et al., 2020): a query encoder trained against keys from its
EMA copy and a queue of past keys. Used by the ``moco`` victim and by contrastive attacks."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from benchmark.models.classifier import Classifier
from benchmark.ssl.heads import projection_head
from benchmark.ssl.losses import info_nce_queue
from benchmark.ssl.method import SSLMethod
from benchmark.ssl.momentum import KeyQueue, ema_update, momentum_copy


class MoCoMethod(SSLMethod):
    """Query encoder + projector (trained), key encoder + projector (EMA of the query side), a
    queue ``[K, out]`` of past keys; InfoNCE at ``temperature`` over ``1 + K`` keys, times ``scale``.

    ``symmetric=False`` (MoCo v2 and CP's ``cl_algs.MoCo``): ``q(x1)`` against ``k(x2)``, ``B`` keys
    enqueued per step. ``symmetric=True``: the mean of that and ``q(x2)`` against ``k(x1)``, both
    key batches (``2B``) enqueued.

    Shuffle-BN substitute (single device): the key batch is permuted and encoded in
    ``key_splits`` chunks with separate BN statistics, then un-permuted, so a query and its
    positive key are not normalized with the same batch statistics.
    """

    def __init__(
        self,
        encoder: Classifier,
        hidden: int,
        out: int,
        temperature: float,
        queue_size: int,
        momentum: float,
        key_splits: int,
        generator: torch.Generator,
        *,
        symmetric: bool = True,
        scale: float = 1.0,
    ) -> None:
        super().__init__(encoder)
        self.projector: nn.Module = projection_head(encoder.feature_dim, hidden, out)  # TUE's MoCo: a Linear
        self.key_encoder = momentum_copy(encoder)
        self.key_projector: nn.Module = momentum_copy(self.projector)
        self.queue = KeyQueue(queue_size, out, generator)
        self.temperature, self.momentum, self.key_splits = temperature, momentum, key_splits
        self.symmetric, self.scale = symmetric, scale
        self.generator = generator

    @torch.no_grad()
    def _keys(self, x: torch.Tensor) -> torch.Tensor:
        perm = torch.randperm(len(x), generator=self.generator).to(x.device)
        chunks = [self.key_projector(self.key_encoder.features(c)) for c in x[perm].chunk(self.key_splits)]
        return torch.cat(chunks)[perm.argsort()]

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        bank = self.queue.queue.clone()
        if not self.symmetric:
            q = self.projector(self.encoder.features(x1))
            k = self._keys(x2)
            self._pending = k
            return self.scale * info_nce_queue(q, k, bank, self.temperature)
        q1, q2 = self.projector(self.encoder.features(torch.cat([x1, x2]))).chunk(2)
        k1, k2 = self._keys(torch.cat([x1, x2])).chunk(2)
        loss = 0.5 * (info_nce_queue(q1, k2, bank, self.temperature) + info_nce_queue(q2, k1, bank, self.temperature))
        self._pending = torch.cat([k1, k2])
        return self.scale * loss

    def after_step(self, step: int, total_steps: int) -> None:
        ema_update(self.key_encoder, self.encoder, self.momentum)
        ema_update(self.key_projector, self.projector, self.momentum)
        self.queue.enqueue(self._pending)

    def param_groups(self) -> list[dict[str, Any]]:
        trained: list[nn.Parameter] = [*self.encoder.parameters(), *self.projector.parameters()]
        return [{"params": [p for p in trained if p.requires_grad]}]
