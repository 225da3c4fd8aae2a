"""The shared SSL methods as the poisoning attacks train them jointly with a perturbation.

CP (He, Zha & Katabi, ICLR 2023), TUE (Ren et al., ICLR 2023) and TP (Liu, Backes & Zhang, 2023)
alternate a *model phase* (SGD on a contrastive loss of two augmented views of ``x + delta``) and a
*noise phase* (signed-gradient steps on ``delta`` that minimize the same loss, with the network
frozen in eval mode). Each objective here is one of the victims' methods (SimCLR, MoCo, BYOL,
SimSiam from this package: the same heads, losses and parameters) with what the attack codes add:

- ``noise_phase()``: eval mode, no parameter gradients, and the frozen branches run as copies with
  BatchNorm folded into the convolutions (:mod:`benchmark.folding`: equal outputs, no BN
  forward/backward). A momentum branch the official code keeps updating in noise steps (CP's
  EMA in every forward) runs unfolded.
- ``key_grad``: in noise phases the gradient also reaches the input through the momentum /
  stop-gradient branch (CP's ``--allow_mmt_grad`` for MoCo, TUE's ``--k_grad``).
- side effects as in the official codes: MoCo's EMA runs at the start of a forward and its keys
  are enqueued by the forward itself (both codes enqueue in noise steps too; CP also runs the EMA
  there); BYOL's two EMA updates per forward (CP) run in noise steps too.
- ``bn_groups``: train-mode BatchNorm statistics per chunk of the batch (CP ran 4 GPUs with
  per-GPU BN over 128 images; TUE's MoCo uses an 8-way split BatchNorm).

``forward(v1, v2, y)`` takes two views ``[B, C, H, W]`` in [0, 1] and labels ``[B]`` and returns the
scalar loss, in both phases; ``after_step`` does nothing (the side effects live in the forward).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from benchmark.folding import fold_batchnorm
from benchmark.models.classifier import Classifier
from benchmark.ssl.byol import BYOLMethod
from benchmark.ssl.contrastive import SimCLRMethod
from benchmark.ssl.losses import alignment, info_nce_queue, negative_cosine, uniformity
from benchmark.ssl.moco import MoCoMethod
from benchmark.ssl.momentum import ema_update, momentum_copy
from benchmark.ssl.simsiam import SimSiamMethod


class Embedder(nn.Module):
    """``head(encoder.features(x))``: ``[B, C, H, W]`` -> ``[B, D]`` as one traceable forward (so
    :func:`~benchmark.folding.fold_batchnorm` can fold it). Holds no parameters of its own."""

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
    """``net`` on both views in one forward; with ``groups`` each chunk's BN sees its 2 x B/G views
    (SimCLR on one GPU of CP's four)."""
    if groups <= 1 or not net.training or len(v1) < groups:
        z1, z2 = net(torch.cat([v1, v2])).chunk(2)
        return z1, z2
    outs = [net(torch.cat([a, b])).chunk(2) for a, b in zip(v1.chunk(groups), v2.chunk(groups))]
    return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])


class PoisonObjective:
    """The attack side of an :class:`~benchmark.ssl.method.SSLMethod` (a mixin, listed first).

    ``foldable`` names the (unregistered) :class:`Embedder` wrappers that are frozen during a noise
    phase and run folded there; :meth:`net` returns the folded copy during a noise phase.
    """

    foldable: tuple[str, ...] = ("embed",)
    bn_groups: int = 1
    _noise: bool = False
    _folded: dict[str, nn.Module]

    def _wrap(self, name: str, module: nn.Module) -> None:
        """Keep a wrapper of already registered modules without registering it twice."""
        object.__setattr__(self, name, module)

    def net(self, name: str) -> nn.Module:
        folded = getattr(self, "_folded", {})
        return folded[name] if name in folded else getattr(self, name)

    @property
    def in_noise_phase(self) -> bool:
        return self._noise

    def trainable(self) -> list[nn.Parameter]:
        """What the model phase's optimizer trains (momentum copies excluded)."""
        return [p for group in self.param_groups() for p in group["params"]]  # type: ignore[attr-defined]

    def after_step(self, step: int = 0, total_steps: int = 0) -> None:
        return None  # the attack codes' side effects happen in the forward

    @contextmanager
    def noise_phase(self) -> Iterator[Any]:
        """Eval mode, no parameter gradients, the ``foldable`` branches folded."""
        module: nn.Module = self  # type: ignore[assignment]
        mode = module.training
        flags = [p.requires_grad for p in module.parameters()]
        module.eval().requires_grad_(False)
        object.__setattr__(self, "_folded", {name: fold_batchnorm(getattr(self, name)) for name in self.foldable})
        object.__setattr__(self, "_noise", True)
        try:
            yield self
        finally:
            object.__setattr__(self, "_noise", False)
            object.__setattr__(self, "_folded", {})
            for p, f in zip(module.parameters(), flags):
                p.requires_grad_(f)
            module.train(mode)


class SimCLRObjective(PoisonObjective, SimCLRMethod):
    """:class:`SimCLRMethod` (projector ``F -> hidden -> out``, NT-Xent x ``scale``) with folding
    and ``bn_groups``."""

    def __init__(self, encoder: Classifier, *, hidden: int, out: int, temperature: float, scale: float = 1.0, bn_groups: int = 1) -> None:
        SimCLRMethod.__init__(self, encoder, hidden, out, temperature, scale)
        self.bn_groups = bn_groups
        self._wrap("embed", Embedder(self.encoder, self.projector))

    def project(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return grouped_pair(self.net("embed"), x1, x2, self.bn_groups)


class AlignUniformObjective(SimCLRObjective):
    """TP's contrastive loss (Liu et al., Eq. 3) on SimCLR's projector: Wang & Isola's
    ``lam * align(z1, z2; alpha) + (uniform(z1; t) + uniform(z2; t)) / 2`` (rows L2-normalized in
    the losses)."""

    def __init__(self, encoder: Classifier, *, hidden: int, out: int, lam: float = 1.0, alpha: float = 2.0, t: float = 2.0, bn_groups: int = 1) -> None:
        super().__init__(encoder, hidden=hidden, out=out, temperature=1.0, bn_groups=bn_groups)
        self.lam, self.alpha, self.t = lam, alpha, t

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z1, z2 = self.project(x1, x2)
        return self.lam * alignment(z1, z2, self.alpha) + (uniformity(z1, self.t) + uniformity(z2, self.t)) / 2


class MoCoObjective(PoisonObjective, MoCoMethod):
    """:class:`MoCoMethod`, one direction (query ``q(v1)``, key ``k(v2)``), as the attack codes run it.

    ``hidden`` > 0: MLP head ``F -> hidden -> out`` (MoCo v2, CP); 0: one linear layer (TUE's MoCo
    demo). Each forward first runs the EMA ``key <- m key + (1 - m) query`` (in noise phases only
    when ``ema_in_noise_phase``: CP yes, TUE no) and enqueues its keys (both codes, noise phases
    included). Train-mode keys are computed in ``bn_groups`` chunks, on a shuffled batch when
    ``shuffle_keys`` (shuffle BN; CP's ``cl_algs.MoCo`` skips the shuffle under
    ``--allow_mmt_grad``, TUE shuffles always). ``key_grad``: in noise phases the gradient also
    flows to the input through the keys.
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
        scale: float = 1.0,
        bn_groups: int = 1,
        shuffle_keys: bool = True,
    ) -> None:
        MoCoMethod.__init__(
            self, encoder, max(hidden, 1), out, temperature, queue_size, momentum, bn_groups, generator, symmetric=False, scale=scale
        )
        if hidden == 0:  # TUE's MoCo: a linear head
            self.projector = nn.Linear(encoder.feature_dim, out)
            self.key_projector = momentum_copy(self.projector)
        self.bn_groups, self.key_grad, self.ema_in_noise_phase = bn_groups, key_grad, ema_in_noise_phase
        self.shuffle_keys = shuffle_keys
        self._wrap("embed", Embedder(self.encoder, self.projector))
        self._wrap("key_embed", Embedder(self.key_encoder, self.key_projector))
        # the key branch is frozen in a noise phase only when the EMA does not move it there
        self.foldable = ("embed",) if ema_in_noise_phase else ("embed", "key_embed")

    def _keys(self, x: torch.Tensor) -> torch.Tensor:
        net = self.net("key_embed")
        with torch.set_grad_enabled(torch.is_grad_enabled() and self._noise and self.key_grad):
            if not net.training or not self.shuffle_keys:
                return grouped(net, x, self.bn_groups)
            perm = torch.randperm(len(x), generator=self.generator).to(x.device)
            return grouped(net, x[perm], self.bn_groups)[perm.argsort()]

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not self._noise or self.ema_in_noise_phase:
            ema_update(self.key_encoder, self.encoder, self.momentum)
            ema_update(self.key_projector, self.projector, self.momentum)
        q = grouped(self.net("embed"), x1, self.bn_groups)
        k = self._keys(x2)
        grad_k = self._noise and self.key_grad
        loss = self.scale * info_nce_queue(q, k, self.queue.queue.clone(), self.temperature, key_grad=grad_k)
        self.queue.enqueue(k)
        return loss


class BYOLObjective(PoisonObjective, BYOLMethod):
    """:class:`BYOLMethod` as CP's ``cl_algs.BYOL`` runs it: its forward performs two EMA updates of
    momentum ``m`` on an unchanged online network (one per view), i.e. one update of ``m ** 2``, at
    the start of every forward, noise steps included; each view goes through the online network
    on its own (per-view BN batches, in ``bn_groups`` chunks). The loss detaches the target, so
    CP's ``--allow_mmt_grad`` sends no gradient through it (no ``key_grad`` here)."""

    foldable = ("embed", "predictor")
    target: Embedder  # kept by _wrap, unregistered (mypy would see nn.Module.__getattr__)

    def __init__(self, encoder: Classifier, *, hidden: int, out: int, momentum: float, bn_groups: int = 1) -> None:
        BYOLMethod.__init__(self, encoder, hidden, out, momentum, "constant")
        self.bn_groups = bn_groups
        self._wrap("embed", Embedder(self.encoder, self.projector))
        self._wrap("target", Embedder(self.target_encoder, self.target_projector))

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        m = self.base_momentum**2
        ema_update(self.target_encoder, self.encoder, m)
        ema_update(self.target_projector, self.projector, m)
        online, pred, g = self.net("embed"), self.net("predictor"), self.bn_groups
        p1, p2 = grouped(pred, grouped(online, x1, g), g), grouped(pred, grouped(online, x2, g), g)
        with torch.no_grad():
            t1, t2 = grouped(self.target, x1, g), grouped(self.target, x2, g)
        return 0.5 * (negative_cosine(p1, t2) + negative_cosine(p2, t1))


class SimSiamObjective(PoisonObjective, SimSiamMethod):
    """:class:`SimSiamMethod` as TUE runs it; with ``key_grad`` the stop-gradient is dropped in
    noise phases (TUE's ``k_grad``: the gradient reaches the input through both branches)."""

    foldable = ("embed", "predictor")

    def __init__(self, encoder: Classifier, *, dim: int, pred_hidden: int, key_grad: bool, bn_groups: int = 1) -> None:
        SimSiamMethod.__init__(self, encoder, dim, pred_hidden, fixed_predictor_lr=False)
        self.key_grad, self.bn_groups = key_grad, bn_groups
        self._wrap("embed", Embedder(self.encoder, self.projector))

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        online, pred, g = self.net("embed"), self.net("predictor"), self.bn_groups
        z1, z2 = grouped(online, x1, g), grouped(online, x2, g)
        p1, p2 = grouped(pred, z1, g), grouped(pred, z2, g)
        sg = not (self._noise and self.key_grad)
        return 0.5 * (negative_cosine(p1, z2, stop_grad=sg) + negative_cosine(p2, z1, stop_grad=sg))


CLObjective = PoisonObjective  # the type the attack loops take
