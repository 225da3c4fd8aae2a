"""UEraser: adversarial augmentations against unlearnable examples (Qin, Zhao, Zhang, Liu & Luo,
"Learning the Unlearnable: Adversarial Augmentations Suppress Unlearnable Example Attacks", 2023;
lafeat/ueraser ``ueraser.py``; lafeat/apbench ``defense/ueraser.py``, ``train.py``)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pydantic import Field, field_validator, model_validator
from torch import nn

from benchmark.errors import did_you_mean
from benchmark.interfaces import SUPERVISED_ONLY, Defense, RunContext, TrainHooks, Victim
from benchmark.params import Params
from benchmark.trace import EpochEvent

Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: the augmentations a UEraser policy may chain, in the order given (all kornia except ``jpeg``)
AUGMENTATIONS = ("plasma_brightness", "plasma_contrast", "channel_shuffle", "trivial_augment", "jpeg")
#: the paper's policy (lafeat/ueraser ``UEraser``, APBench ``UEraser``)
POLICY = ("plasma_brightness", "plasma_contrast", "channel_shuffle", "trivial_augment")


def jpeg_batch(x: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG-compress a float batch ``[B, C, H, W]`` in [0, 1] at ``quality`` as APBench's
    ``random_JPEG_compression`` does: the batch stacked into one tall ``(B*H) x W`` image, one
    Pillow encode/decode, back to ``[B, C, H, W]`` (rounded half-up to uint8 first, decoded values
    ``(v - 0.5) / 255`` clamped to [0, 1], as the reference; no gradient: the victim needs none)."""
    b, c, h, w = x.shape
    u8 = x.detach().mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)
    tall = u8.permute(0, 2, 3, 1).reshape(b * h, w, c).cpu().numpy()
    buf = io.BytesIO()
    Image.fromarray(tall.squeeze(-1) if c == 1 else tall).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    dec = torch.from_numpy(np.array(Image.open(buf), copy=True)).float()
    dec = dec.view(b, h, w, c) if c > 1 else dec.view(b, h, w, 1)
    return dec.sub_(0.5).div_(255).clamp_(0, 1).permute(0, 3, 1, 2).to(x.device).contiguous()


class UEraserAugment(nn.Module):
    """The UEraser augmentation chain on a float batch ``[B, C, H, W]`` in [0, 1], per-sample random
    (kornia ``AugmentationSequential`` of the policy's ops; torch's global RNG, as kornia draws).

    ``plasma_brightness``: kornia ``RandomPlasmaBrightness(roughness, intensity, p=plasma_p)``;
    ``plasma_contrast``: ``RandomPlasmaContrast(roughness, p=plasma_p)``; ``channel_shuffle``:
    ``RandomChannelShuffle(p=shuffle_p)``; ``trivial_augment``: ``auto.TrivialAugment()`` (kornia
    picks **one** op per call for the whole batch, with a per-sample magnitude); ``jpeg``: the whole
    batch JPEG-compressed at ``jpeg_quality`` (``None``: uniform in [10, 100) per call, from
    ``generator``).
    """

    def __init__(
        self,
        policy: tuple[str, ...] = POLICY,
        *,
        plasma_p: float = 1.0,
        shuffle_p: float = 0.5,
        roughness: tuple[float, float] = (0.3, 0.7),
        intensity: tuple[float, float] = (0.5, 1.0),
        jpeg_quality: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        import kornia.augmentation as K

        self.jpeg_quality = jpeg_quality
        self.generator = generator or torch.Generator().manual_seed(0)
        steps: list[tuple[str, nn.Module | None]] = []
        for name in policy:
            if name == "plasma_brightness":
                op: nn.Module | None = K.RandomPlasmaBrightness(
                    roughness=roughness, intensity=intensity, same_on_batch=False, p=plasma_p, keepdim=True
                )
            elif name == "plasma_contrast":
                op = K.RandomPlasmaContrast(roughness=roughness, p=plasma_p)
            elif name == "channel_shuffle":
                op = K.RandomChannelShuffle(same_on_batch=False, p=shuffle_p, keepdim=True)
            elif name == "trivial_augment":
                op = K.auto.TrivialAugment()
            elif name == "jpeg":
                op = None
            else:
                raise ValueError(f"unknown augmentation {name!r}{did_you_mean(name, AUGMENTATIONS)} (allowed: {', '.join(AUGMENTATIONS)})")
            steps.append((name, op))
        # consecutive kornia ops run as one AugmentationSequential, as the reference builds them
        self.stages: list[Callable[[torch.Tensor], torch.Tensor]] = []
        group: list[nn.Module] = []
        self._kornia = nn.ModuleList()
        for name, op in steps + [("end", None)]:
            if op is not None:
                group.append(op)
                continue
            if group:
                seq = K.AugmentationSequential(*group)
                self._kornia.append(seq)
                self.stages.append(seq)
                group = []
            if name == "jpeg":
                self.stages.append(self._jpeg)

    def _jpeg(self, x: torch.Tensor) -> torch.Tensor:
        q = self.jpeg_quality or int(torch.randint(10, 100, (1,), generator=self.generator))
        return jpeg_batch(x, q)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
            x = x.float()
            for stage in self.stages:
                x = stage(x)
        return x.contiguous(memory_format=torch.channels_last)


def worst_of_k_loss(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    augment: Callable[[torch.Tensor], torch.Tensor],
    repeats: int,
    mode: Literal["loop", "tile"] = "loop",
) -> tuple[torch.Tensor, torch.Tensor]:
    """UEraser's adversarial-augmentation loss: ``repeats`` augmented copies of each sample, the
    per-sample cross entropy of each, the per-sample **maximum** over the copies, averaged over the
    batch (the gradient flows through each sample's worst copy). Returns (loss, logits of the last
    copy, for the training-accuracy count).

    ``mode="loop"`` (APBench ``train.py``): ``repeats`` separate augmentation calls and forwards of
    ``B`` images (BatchNorm batch statistics over ``B``, running statistics updated ``repeats``
    times per step; each call draws its own TrivialAugment op). ``mode="tile"`` (lafeat/ueraser
    ``adversarial_augmentation_loss``): the batch tiled ``repeats`` times, one augmentation call and
    one forward of ``repeats * B`` images (BN statistics over all copies; one TrivialAugment op for
    all copies of the step, since kornia picks one op per call)."""
    b = x.shape[0]
    if mode == "tile":
        logits = model(augment(x.repeat(repeats, 1, 1, 1)))
        ce = F.cross_entropy(logits.float(), y.repeat(repeats), reduction="none").view(repeats, b)
        return ce.amax(0).mean(), logits[-b:]
    losses = []
    logits = x
    for _ in range(repeats):
        logits = model(augment(x))
        losses.append(F.cross_entropy(logits.float(), y, reduction="none"))
    return torch.stack(losses).amax(0).mean(), logits


class UEraserHooks(TrainHooks):
    """Each step: the worst of ``repeats`` augmented copies while the epoch is adversarial (before
    ``adversarial_epochs``; ``None``: always), one augmented copy (UEraser-Lite) after. The epoch is
    counted from the victim's ``"supervised"`` trace events."""

    def __init__(self, p: _UEraserParams, ctx: RunContext) -> None:
        self.p = p
        self.augment = UEraserAugment(
            p.policy,
            plasma_p=p.plasma_p,
            shuffle_p=p.shuffle_p,
            roughness=(p.roughness_min, p.roughness_max),
            intensity=(p.intensity_min, p.intensity_max),
            jpeg_quality=p.jpeg_quality,
            generator=ctx.generator("ueraser.augment"),
        )
        self.epoch = 0  # epochs finished
        ctx.trace.subscribe(self._on_epoch)

    def _on_epoch(self, event: EpochEvent) -> None:
        if event.phase == "supervised":
            self.epoch = event.epoch

    @property
    def adversarial(self) -> bool:
        w = self.p.adversarial_epochs
        return self.p.repeats > 1 and (w is None or self.epoch < w)

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, criterion: Criterion) -> torch.Tensor:
        if self.adversarial:
            loss, logits = worst_of_k_loss(model, x, y, self.augment, self.p.repeats, self.p.repeat_mode)
            criterion(logits.detach(), y)  # training-accuracy bookkeeping (APBench counts the last copy)
            return loss
        return criterion(model(self.augment(x)), y)


class _UEraserParams(Params):
    repeats: int = Field(5, ge=1)  # K: augmented copies per sample in an adversarial epoch
    adversarial_epochs: int | None = Field(None, ge=0)  # W: epochs with the worst-of-K loss (None: all)
    # K copies as K augment calls and forwards (loop, APBench) or one tiled forward (tile)
    repeat_mode: Literal["loop", "tile"] = "loop"
    # kornia augmentations chained in order (plasma, channel shuffle, TrivialAugment, jpeg)
    policy: tuple[str, ...] = POLICY
    plasma_p: float = Field(1.0, ge=0, le=1)  # probability of each plasma op (brightness, contrast)
    shuffle_p: float = Field(0.5, ge=0, le=1)  # probability of the channel shuffle
    roughness_min: float = Field(0.3, ge=0, le=1)  # lower bound of the plasma fractal's roughness
    roughness_max: float = Field(0.7, ge=0, le=1)  # upper bound of the plasma fractal's roughness
    intensity_min: float = Field(0.5, ge=0, le=1)  # lower bound of the plasma brightness intensity
    intensity_max: float = Field(1.0, ge=0, le=1)  # upper bound of the plasma brightness intensity
    jpeg_quality: int | None = Field(None, ge=1, le=100)  # JPEG quality of the "jpeg" op; None: U[10, 100) per batch

    @field_validator("policy", mode="before")
    @classmethod
    def _known(cls, v: Any) -> Any:
        names = [v] if isinstance(v, str) else list(v)
        for name in names:
            if name not in AUGMENTATIONS:
                raise ValueError(
                    f"unknown augmentation {name!r}{did_you_mean(str(name), AUGMENTATIONS)} (allowed: {', '.join(AUGMENTATIONS)})"
                )
        if not names:
            raise ValueError(f"policy needs at least one augmentation (allowed: {', '.join(AUGMENTATIONS)})")
        return tuple(names)

    @model_validator(mode="after")
    def _ranges(self) -> _UEraserParams:
        if self.roughness_min > self.roughness_max or self.intensity_min > self.intensity_max:
            raise ValueError("roughness_min/intensity_min must not exceed roughness_max/intensity_max")
        return self


class _UEraser(Defense):
    stage = "train"
    requires = ("kornia",)
    Params = _UEraserParams

    applies_note = SUPERVISED_ONLY

    def applies_to(self, victim: Victim) -> bool:
        return victim.paradigm == "supervised"

    def train_hooks(self, ctx: RunContext) -> TrainHooks:
        return UEraserHooks(self.params, ctx)


_DOC = """
    Threat model: a data user who trains a supervised victim on the released (possibly poisoned)
    images and may augment them. Stage ``train``: a hook on every float batch ``[B, C, H, W]`` in
    [0, 1] after the victim's crop/flip (APBench's order). The augmentations are kornia's, as in
    the official code: plasma brightness (roughness 0.3-0.7, intensity 0.5-1.0) and plasma contrast
    (roughness 0.3-0.7), both with p = 1.0 (APBench and the EM notebook; the standalone
    ``ueraser.py`` uses 0.5: ``{plasma_p: 0.5}``), channel shuffle (p 0.5), TrivialAugment.
    Adversarial epochs take the per-sample worst of ``repeats`` = K = 5 augmented copies.
    Applies to supervised victims only (contrastive victims take no supervised hooks: N/A).

    K-repeat mode: ``repeat_mode: loop`` (default) is APBench's ``train.py``: K augmentation calls
    and K forwards of the batch per step (BN statistics per copy, K running-statistics updates).
    ``tile`` is ``ueraser.py``'s ``adversarial_augmentation_loss`` (one forward of the K-tiled
    batch). They differ in more than speed: kornia's TrivialAugment picks one op per call for the
    whole batch, so in ``tile`` mode the K copies of a step share one op type and only differ in
    magnitude, plasma and shuffle, while ``loop`` draws K op types. ``loop`` is the paper's
    "worst of K augmentations" more literally; ``tile`` is faster on a GPU for small networks.

    JPEG: for TAP and AR poisons APBench runs ``UEraser_jpeg``: random-quality JPEG of the whole
    batch first, then the chain with plasma p = 0.8:
    ``{policy: [jpeg, plasma_brightness, plasma_contrast, channel_shuffle, trivial_augment], plasma_p: 0.8}``
    (``ueraser.py``'s ``UEraserJPEG`` appends JPEG-10 last: ``{policy: [..., jpeg], jpeg_quality: 10}``).
    A matrix cannot pick the defense by attack, so the default policy is the plain one.

    kornia versions (the reference used 0.6-0.7; uebench pins 0.9): the plasma fractal
    (``contrib.diamond_square``) was rewritten (0.9 starts its coarse grid at zero and fixed the
    averaging of the square step), so the plasma maps of a given seed and their texture statistics
    differ; plasma ops clamp their input to [0, 1] first (inputs are in range here: no effect);
    channel shuffle and TrivialAugment's policy (one op per call, magnitude ranges) are unchanged.
    Randomness comes from torch's global RNG (kornia has no generator argument), seeded per cell by
    the runner. Deviations: the victim's recipe stays the victim's (the paper: 200 epochs, SGD lr
    0.1 (APBench) or 0.01 (ueraser repo)); report the final epoch (the paper's best-epoch numbers
    are higher, spec §1.3).
"""


class UEraserLite(_UEraser):
    name = "ueraser-lite"
    __doc__ = (
        """UEraser-Lite: one UEraser augmentation per sample every step (K = 1, W = 0; APBench
    ``--ueraser --repeat_epoch 0``). Costs one forward/backward plus the augmentation."""
        + _DOC
    )

    class Params(_UEraserParams):
        adversarial_epochs: int | None = Field(0, ge=0)


class UEraserStandard(_UEraser):
    name = "ueraser"
    __doc__ = (
        """UEraser (standard): the worst of K = 5 augmentations per sample for the first W = 50
    epochs, then UEraser-Lite (APBench ``--repeat_epoch 50``; the paper's 200-epoch schedule).
    Quick profile: W = 5 of the quick victim's 20 epochs (the same 25 %)."""
        + _DOC
    )

    class Params(_UEraserParams):
        adversarial_epochs: int | None = Field(50, ge=0)

    profiles = {"quick": {"adversarial_epochs": 5}, "smoke": {"adversarial_epochs": 1, "repeats": 2}}


class UEraserMax(_UEraser):
    name = "ueraser-max"
    __doc__ = (
        """UEraser-Max: the worst of K = 5 augmentations per sample in every epoch (APBench's
    default ``--repeat_epoch 300`` with 200 epochs). About 1.4 K times the cost of a plain training
    step on a CPU (K forwards and backwards, K kornia calls of about 0.4 of a step each). Quick
    profile: K = 3 (about 4x a quick ``sl`` cell, 6-7 min single-threaded; K = 5 would be 7x)."""
        + _DOC
    )

    profiles = {"quick": {"repeats": 3}, "smoke": {"repeats": 2}}


PLUGINS = [UEraserLite, UEraserStandard, UEraserMax]
