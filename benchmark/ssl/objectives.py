"""Contrastive objectives as the poisoning attacks train them jointly with a perturbation.

CP (He, Zha & Katabi, ICLR 2023), TUE (Ren et al., ICLR 2023) and TP (Liu, Backes & Zhang, 2023)
alternate a *model phase* (SGD on a contrastive loss of two augmented views of ``x + delta``) and a
*noise phase* (signed-gradient steps on ``delta`` that minimize the same loss, with the network
frozen in eval mode). An objective here is that contrastive model: an encoder
(:class:`~benchmark.models.Classifier`) with the heads of one method and one ``loss(v1, v2, y)``
that both phases call (views ``[B, C, H, W]`` in [0, 1], labels ``[B]``, a scalar loss).

How they differ from the victims' pretraining methods (``plugins/victims``), as the attack codes do:
MoCo is asymmetric (query = view 1, key = view 2); the gradient may reach the input through the
momentum branch (``key_grad``: CP's ``--allow_mmt_grad``, TUE's ``--k_grad``); the momentum
encoder and the queue may be updated in noise-phase forwards too (CP updates the EMA in every
forward; both CP and TUE enqueue keys in every forward); ``bn_groups`` computes train-mode
BatchNorm statistics over chunks of the batch (CP ran 4 GPUs with per-GPU BN over 128 images;
TUE's MoCo uses an 8-way split BatchNorm).

Noise phase (:meth:`CLObjective.noise_phase`): the trained branch does not change during it, so it
runs as a frozen copy with BatchNorm folded into the convolutions (:mod:`benchmark.folding`:
equal outputs, no BN forward/backward, no parameter gradients); a momentum branch the official
code keeps updating there (CP's EMA) runs unfolded in eval mode.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from benchmark.folding import fold_batchnorm
from benchmark.models.classifier import Classifier
from benchmark.ssl.heads import mlp_head, prediction_head, projection_head
from benchmark.ssl.losses import alignment, info_nce_queue, negative_cosine, nt_xent, uniformity
from benchmark.ssl.momentum import KeyQueue, ema_update, momentum_copy


class Embedder(nn.Module):
    """``head(encoder.features(x))``: ``[B, C, H, W]`` -> ``[B, D]`` as one traceable forward (so
    :func:`~benchmark.folding.fold_batchnorm` can fold it)."""

    def __init__(self, encoder: Classifier, head: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder.features(x))


def grouped(net: nn.Module, x: torch.Tensor, groups: int) -> torch.Tensor:
    """``net(x)``, with train-mode BatchNorm statistics computed per chunk of ``groups`` (one
    device standing in for ``groups`` GPUs with per-GPU BN). Eval mode ignores ``groups``."""
    if groups <= 1 or not net.training or len(x) < groups:
        return net(x)
    return torch.cat([net(c) for c in x.chunk(groups)])


def grouped_pair(net: nn.Module, v1: torch.Tensor, v2: torch.Tensor, groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``net`` on both views in one forward (SimCLR: each GPU's BN sees its 2 x B/G views)."""
    if groups <= 1 or not net.training or len(v1) < groups:
        z1, z2 = net(torch.cat([v1, v2])).chunk(2)
        return z1, z2
    outs = [net(torch.cat([a, b])).chunk(2) for a, b in zip(v1.chunk(groups), v2.chunk(groups))]
    return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])


class CLObjective(nn.Module):
    """Base: ``encoder`` plus heads; ``loss(v1, v2, y)``; ``trainable()`` for the optimizer.

    ``foldable`` names the submodules that are frozen during a noise phase and can run folded.
    """

    foldable: tuple[str, ...] = ("online",)

    def __init__(self, encoder: Classifier, bn_groups: int = 1) -> None:
        super().__init__()
        self.encoder = encoder
        self.bn_groups = bn_groups
        self._noise = False
        self._folded: dict[str, nn.Module] = {}

    @abstractmethod
    def loss(self, v1: torch.Tensor, v2: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...

    def forward(self, v1: torch.Tensor, v2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss(v1, v2, y)

    def trainable(self) -> list[nn.Parameter]:
        """Parameters the model phase trains (momentum copies excluded)."""
        return [p for name in self.foldable for p in getattr(self, name).parameters()]

    @property
    def in_noise_phase(self) -> bool:
        return self._noise

    def net(self, name: str) -> nn.Module:
        """Submodule ``name``: its folded frozen copy during a noise phase, else itself."""
        return self._folded[name] if name in self._folded else getattr(self, name)

    @contextmanager
    def noise_phase(self) -> Iterator[CLObjective]:
        """Eval mode, no parameter gradients, the ``foldable`` branches folded (see module doc)."""
        mode = self.training
        flags = [p.requires_grad for p in self.parameters()]
        self.eval().requires_grad_(False)
        self._folded = {name: fold_batchnorm(getattr(self, name)) for name in self.foldable}
        self._noise = True
        try:
            yield self
        finally:
            self._noise = False
            self._folded = {}
            for p, f in zip(self.parameters(), flags):
                p.requires_grad_(f)
            self.train(mode)


class SimCLRObjective(CLObjective):
    """SimCLR: projector ``F -> hidden -> out`` (ReLU, no BN), NT-Xent at ``temperature`` times
    ``loss_scale`` (CP's SupContrast loss multiplies by T/0.07)."""

    def __init__(
        self, encoder: Classifier, *, hidden: int, out: int, temperature: float, loss_scale: float = 1.0, bn_groups: int = 1
    ) -> None:
        super().__init__(encoder, bn_groups)
        self.online = Embedder(encoder, projection_head(encoder.feature_dim, hidden, out))
        self.temperature, self.loss_scale = temperature, loss_scale

    def loss(self, v1: torch.Tensor, v2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z1, z2 = grouped_pair(self.net("online"), v1, v2, self.bn_groups)
        return nt_xent(z1, z2, self.temperature) * self.loss_scale


class AlignUniformObjective(CLObjective):
    """Wang & Isola's alignment and uniformity, TP's contrastive loss (Liu et al., Eq. 3):
    ``lam * align(z1, z2; alpha) + (uniform(z1; t) + uniform(z2; t)) / 2`` on the projector's
    output (L2-normalized in the losses)."""

    def __init__(
        self, encoder: Classifier, *, hidden: int, out: int, lam: float = 1.0, alpha: float = 2.0, t: float = 2.0, bn_groups: int = 1
    ) -> None:
        super().__init__(encoder, bn_groups)
        self.online = Embedder(encoder, projection_head(encoder.feature_dim, hidden, out))
        self.lam, self.alpha, self.t = lam, alpha, t

    def loss(self, v1: torch.Tensor, v2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z1, z2 = grouped_pair(self.net("online"), v1, v2, self.bn_groups)
        return self.lam * alignment(z1, z2, self.alpha) + (uniformity(z1, self.t) + uniformity(z2, self.t)) / 2


class MoCoObjective(CLObjective):
    """Asymmetric MoCo: query ``online(v1)``, key ``key(v2)`` from the EMA copy, InfoNCE against a
    queue ``[queue_size, out]`` at ``temperature``, times ``loss_scale``.

    ``hidden`` > 0: MLP head ``F -> hidden -> out`` (MoCo v2, CP); 0: one linear layer (TUE's
    MoCo demo). Every forward enqueues its keys (both codes do, noise phase included). The EMA
    ``key <- m key + (1 - m) online`` runs at the start of every model-phase forward, and of every
    noise-phase forward too when ``ema_in_noise_phase`` (CP). Train-mode keys are computed on a
    shuffled batch (shuffle BN). ``key_grad``: in noise phases the gradient also flows to the
    input through the key branch.
    """

    def __init__(
        self,
        encoder: Classifier,
        *,
        hidden: int,
        out: int,
        temperature: float,
        queue_size: int,
        momentum: float,
        key_grad: bool,
        ema_in_noise_phase: bool,
        generator: torch.Generator,
        loss_scale: float = 1.0,
        bn_groups: int = 1,
    ) -> None:
        super().__init__(encoder, bn_groups)
        f = encoder.feature_dim
        head = mlp_head([f, hidden, out]) if hidden > 0 else nn.Linear(f, out)
        self.online = Embedder(encoder, head)
        self.key = momentum_copy(self.online)
        self.queue = KeyQueue(queue_size, out, generator)
        self.temperature, self.momentum, self.loss_scale = temperature, momentum, loss_scale
        self.key_grad, self.ema_in_noise_phase = key_grad, ema_in_noise_phase
        self.generator = generator
        # the key branch is frozen in a noise phase only when the EMA does not move it there
        self.foldable = ("online",) if ema_in_noise_phase else ("online", "key")

    def trainable(self) -> list[nn.Parameter]:
        return list(self.online.parameters())

    def _keys(self, v2: torch.Tensor) -> torch.Tensor:
        net = self.net("key")
        with torch.set_grad_enabled(torch.is_grad_enabled() and self._noise and self.key_grad):
            if not net.training:
                return net(v2)
            perm = torch.randperm(len(v2), generator=self.generator).to(v2.device)
            return grouped(net, v2[perm], self.bn_groups)[perm.argsort()]

    def loss(self, v1: torch.Tensor, v2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not self._noise or self.ema_in_noise_phase:
            ema_update(self.key, self.online, self.momentum)
        q = grouped(self.net("online"), v1, self.bn_groups)
        k = self._keys(v2)
        loss = info_nce_queue(q, k, self.queue.queue.clone(), self.temperature, key_grad=self._noise and self.key_grad)
        self.queue.enqueue(k)
        return loss * self.loss_scale


class BYOLObjective(CLObjective):
    """BYOL as CP's ``cl_algs.BYOL``: online encoder -> projector ``F -> hidden (BN, ReLU) -> out``
    -> predictor ``out -> hidden (BN, ReLU) -> out``; target = EMA copy of encoder + projector;
    loss ``(-cos(p1, sg t2) - cos(p2, sg t1)) / 2``. CP's forward runs two EMA updates of
    momentum ``m`` on an unchanged online network (one per view), i.e. one update of ``m**2``; it
    does so in noise-phase forwards too. The loss detaches the target outputs, so CP's
    ``--allow_mmt_grad`` has no effect on BYOL's gradient (none reaches the input through the
    target), and there is no ``key_grad`` here.
    """

    foldable = ("online", "predictor")

    def __init__(self, encoder: Classifier, *, hidden: int, out: int, momentum: float, bn_groups: int = 1) -> None:
        super().__init__(encoder, bn_groups)
        self.online = Embedder(encoder, projection_head(encoder.feature_dim, hidden, out, bn=True))
        self.predictor = prediction_head(out, hidden)
        self.target = momentum_copy(self.online)
        self.momentum = momentum

    def loss(self, v1: torch.Tensor, v2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        ema_update(self.target, self.online, self.momentum**2)
        online, pred, g = self.net("online"), self.net("predictor"), self.bn_groups
        p1, p2 = grouped(pred, grouped(online, v1, g), g), grouped(pred, grouped(online, v2, g), g)
        with torch.no_grad():
            t1, t2 = grouped(self.target, v1, g), grouped(self.target, v2, g)
        return 0.5 * (negative_cosine(p1, t2) + negative_cosine(p2, t1))


class SimSiamObjective(CLObjective):
    """SimSiam (TUE's variant): projector ``F -> dim (BN, ReLU) -> dim (BN, no affine)``,
    predictor ``dim -> pred_hidden (BN, ReLU) -> dim``, loss ``(-cos(p1, sg z2) - cos(p2, sg z1))
    / 2``; with ``key_grad`` the stop-gradient is dropped in noise phases (TUE's ``k_grad``)."""

    foldable = ("online", "predictor")

    def __init__(self, encoder: Classifier, *, dim: int, pred_hidden: int, key_grad: bool, bn_groups: int = 1) -> None:
        super().__init__(encoder, bn_groups)
        self.online = Embedder(encoder, projection_head(encoder.feature_dim, dim, dim, bn=True, last_bn="plain"))
        self.predictor = mlp_head([dim, pred_hidden, dim], hidden_bn=True)
        self.key_grad = key_grad

    def loss(self, v1: torch.Tensor, v2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        online, pred, g = self.net("online"), self.net("predictor"), self.bn_groups
        z1, z2 = grouped(online, v1, g), grouped(online, v2, g)
        p1, p2 = grouped(pred, z1, g), grouped(pred, z2, g)
        sg = not (self._noise and self.key_grad)
        return 0.5 * (negative_cosine(p1, z2, stop_grad=sg) + negative_cosine(p2, z1, stop_grad=sg))
