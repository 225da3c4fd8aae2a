"""Mixup (Zhang et al., ICLR 2018) and CutMix (Yun et al., ICCV 2019) as baselines against
unlearnable examples, as APBench runs them (``train.py``: kornia ``RandomMixUpV2`` /
``RandomCutMixV2`` on each batch, soft-label loss ``util.loss_mix``; spec §1.4)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from benchmark.interfaces import SUPERVISED_ONLY, Defense, RunContext, TrainHooks, Victim
from benchmark.params import Params

Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def mixed_loss(logits: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor, weight_b: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``(1 - w) * CE(logits, y_a) + w * CE(logits, y_b)``, ``w`` per sample
    the share of the image that came from the sample labelled ``y_b`` (APBench's ``loss_mix``)."""
    logits = logits.float()
    ce_a = F.cross_entropy(logits, y_a, reduction="none")
    ce_b = F.cross_entropy(logits, y_b, reduction="none")
    w = weight_b.to(logits.dtype)
    return ((1 - w) * ce_a + w * ce_b).mean()


class MixHooks(TrainHooks):
    """Mix each training batch with a kornia mix augmentation, then the soft-label loss. The
    victim's ``criterion`` is called on the first labels only for its training-accuracy count."""

    def __init__(self, kind: str, lambda_range: tuple[float, float], beta: float) -> None:
        import kornia.augmentation as K

        self.kind = kind
        if kind == "mixup":
            self.aug = K.RandomMixUpV2(lambda_val=lambda_range, data_keys=["input", "class"])
        else:
            self.aug = K.RandomCutMixV2(beta=beta, data_keys=["input", "class"], use_correct_lambda=True)

    def mix(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mixed images, first labels, second labels, weight of the second labels per sample)."""
        with torch.autocast(x.device.type, enabled=False):
            xm, lab = self.aug(x.float(), y)
        if self.kind == "mixup":  # lab [B, 3]: y, y[pairs], lambda; image = (1 - lambda) x + lambda x[pairs]
            return xm, lab[:, 0].long(), lab[:, 1].long(), lab[:, 2]
        lab = lab[0]  # [num_mix=1, B, 3]: y, y[pairs], 1 - pasted area / image area
        return xm, lab[:, 0].long(), lab[:, 1].long(), 1 - lab[:, 2]

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, criterion: Criterion) -> torch.Tensor:
        xm, y_a, y_b, w = self.mix(x, y)
        logits = model(xm.contiguous(memory_format=torch.channels_last))
        criterion(logits.detach(), y_a)  # training-accuracy bookkeeping only
        return mixed_loss(logits, y_a, y_b, w)


class _Mix(Defense):
    stage = "train"
    requires = ("kornia",)

    class Params(Params):
        # mixup: lower bound of the mixing weight lam ~ U(lambda_min, lambda_max)
        lambda_min: float = Field(0.0, ge=0, le=1)
        lambda_max: float = Field(1.0, ge=0, le=1)  # mixup: upper bound of the mixing weight lam

        @model_validator(mode="after")
        def _range(self) -> _Mix.Params:
            if self.lambda_min > self.lambda_max:
                raise ValueError(f"lambda_min {self.lambda_min} exceeds lambda_max {self.lambda_max}")
            return self

    applies_note = SUPERVISED_ONLY

    def applies_to(self, victim: Victim) -> bool:
        return victim.paradigm == "supervised"


class MixUp(_Mix):
    """Mixup on every training batch: image ``(1 - lam) x + lam x[perm]``, loss
    ``(1 - lam) CE(y) + lam CE(y[perm])``, ``lam ~ U(lambda_min, lambda_max)`` per sample (kornia's
    ``RandomMixUpV2``; U(0, 1) = Beta(1, 1), the spec's alpha = 1), ``perm`` a random pairing.

    Source: APBench ``train.py`` (``K.RandomMixUpV2(data_keys=["input", "class"])``, ``loss_mix``).
    Stage ``train``: a hook on the float batch ``[B, C, H, W]`` after the victim's crop/flip;
    randomness from torch's global RNG (kornia draws its own parameters; the runner seeds it per
    cell). Supervised victims only (it needs labels; contrastive cells are N/A). A negative control.
    kornia 0.9 vs 0.7: 0.9 gates ``p`` once per batch (p = 1 here, so no difference).
    """

    name = "mixup"

    def train_hooks(self, ctx: RunContext) -> TrainHooks:
        return MixHooks("mixup", (self.params.lambda_min, self.params.lambda_max), 1.0)


class CutMix(_Mix):
    """CutMix (Yun et al., ICCV 2019) on every training batch ``[B, C, H, W]`` in [0, 1] (threat model:
    the data user augments blind to which images are poisoned): a box of ``floor(sqrt(1 - lam) * side)`` per side, ``lam ~
    Beta(beta, beta)``, placed uniformly inside the image, pasted from a paired sample; the loss
    weights each label by its share of the pixels (kornia's ``RandomCutMixV2``).

    Source: APBench ``train.py`` (``K.RandomCutMixV2(data_keys=["input", "class"])``, ``loss_mix``
    with the pasted area as the weight of the pasted label). Stage ``train`` on the float batch
    after crop/flip; kornia's own (global, per-cell seeded) randomness. Supervised victims only.
    kornia 0.9 vs 0.7: 0.9 lets the box reach the right/bottom edge (0.7 drew starts in
    ``[0, side - cut - 1)``), and asks for ``use_correct_lambda=True`` (lambda = 1 - area): the
    weights here are the same pixel shares either way.
    """

    name = "cutmix"

    class Params(Params):
        beta: float = Field(1.0, gt=0)  # CutMix box: lam ~ Beta(beta, beta), the box side sqrt(1 - lam) x the image's

    def train_hooks(self, ctx: RunContext) -> TrainHooks:
        return MixHooks("cutmix", (0.0, 1.0), self.params.beta)


PLUGINS = [MixUp, CutMix]
