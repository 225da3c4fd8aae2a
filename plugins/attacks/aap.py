"""T-AAP and UT-AAP: augmented adversarial poisoning (Wang, Zhu & Gao, "Efficient Availability
Attacks against Supervised and Contrastive Learning Simultaneously", NeurIPS 2024; code
EhanW/AUE-AAP ``aap.py``)."""

from __future__ import annotations

from pydantic import Field

from benchmark.adversarial import craft
from benchmark.augment import strength_augment
from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import Attack, Poison, RunContext, release
from benchmark.params import Params
from benchmark.reference import reference_classifier
from benchmark.training import SGDRecipe


class TAAP(Attack):
    """T-AAP: targeted adversarial poisoning through contrastive-like augmentations.

    Threat model: L-inf, ``eps`` = 8/255, sample-wise ``delta`` ``[N, C, H, W]`` indexed by
    dataset index.

    Loop (EhanW/AUE-AAP ``aap.py``): train a reference classifier on clean data with the strength-
    ``ref_strength`` augmentation (RandomResizedCrop scale (1 - 0.9 s, 1), flip, colour jitter
    (0.4 s, ..., 0.1 s) with p 0.8 s, grayscale p 0.2 s; no crop+flip), SGD lr 0.5, wd 1e-4,
    10-epoch warm-up then cosine, 40 epochs, no input normalization; cached by its own settings,
    so T-AAP and UT-AAP share it. Then from ``delta = 0``, ``steps`` = 250 signed PGD steps of
    ``alpha`` = 2.5 eps / 250 per sample, eval mode, a fresh strength-``gen_strength``
    augmentation every step: T-AAP minimizes CE(f(aug(x + delta)), (y + 1) mod K); UT-AAP maximizes
    CE(f(aug(x + delta)), y). Projection onto the eps-ball and the [0, 1] box after each step.

    Deviations from the official code: both augmentations are our tensor ops
    (:func:`benchmark.augment.contrastive_view`; the official reference model uses torchvision PIL
    ops and crafting uses kornia; hue is a YIQ rotation, jitter order is fixed; a resized crop that
    does not fit is shrunk to fit where they redraw it: crops a little larger on average); the
    reference model's warm-up and cosine schedule change the lr every step, not every epoch, and
    end at 0, not 1e-6; the release rounds to nearest (official: floor); the crafting
    batch is 512 instead of 128 (no effect on the result: the model is frozen).
    """

    name = "t-aap"
    targeted: bool = True

    class Params(Params):
        eps: float = Field(8 / 255, ge=0, le=1)  # L-inf budget on [0, 1] pixels; 8/255 in the paper
        steps: int = Field(250, ge=1)  # PGD steps per sample against the frozen reference model
        alpha: float | None = Field(None, gt=0, le=1)  # PGD step size on [0, 1] pixels; None: 2.5 * eps / steps
        batch_size: int = Field(512, ge=1)  # images per crafting batch (the model is frozen: not a method setting)
        label_shift: int = Field(1, ge=1)  # t-aap's target class is (y + label_shift) mod K; unused by ut-aap
        gen_strength: float = Field(0.4, ge=0)  # strength s of the augmentation drawn at every crafting step
        arch: str = "resnet18"  # architecture of the reference classifier
        ref_strength: float = Field(0.4, ge=0)  # strength s of the augmentation the reference classifier trains with
        ref_epochs: int = Field(40, ge=1)  # epochs of the reference classifier's training on clean data
        ref_lr: float = Field(0.5, gt=0)  # reference SGD peak lr (batch 128, momentum 0.9, warm-up then cosine)
        ref_weight_decay: float = Field(1e-4, ge=0)  # reference SGD weight decay
        ref_warmup_epochs: float = Field(10.0, ge=0)  # epochs of linear lr warm-up of the reference classifier

    profiles = {
        # reference: small CNN, 20 epochs (lr 0.5 with a short warm-up); crafting 25 steps, alpha 2.5 eps / 25
        "quick": {"arch": "small-cnn", "ref_epochs": 20, "ref_warmup_epochs": 2.0, "steps": 25},
        "smoke": {"arch": "small-cnn", "ref_epochs": 2, "ref_warmup_epochs": 0.5, "steps": 3, "batch_size": 64},
    }

    def recipe(self) -> SGDRecipe:
        return SGDRecipe.from_params(self.params, "ref_", batch_size=128, momentum=0.9, schedule="cosine", drop_last=False)

    def generate(self, train: ImageDataset, ctx: RunContext) -> Poison:
        p = self.params
        alpha = p.alpha if p.alpha is not None else 2.5 * p.eps / p.steps
        model, meta = reference_classifier(
            train,
            ctx,
            arch=p.arch,
            recipe=self.recipe(),
            augment=strength_augment(p.ref_strength),
            augment_name=f"aue-aap-strength-{p.ref_strength}",
            normalize=False,
        )
        delta, stats = craft(
            model,
            train,
            ctx,
            eps=p.eps,
            alpha=alpha,
            steps=p.steps,
            batch_size=p.batch_size,
            targeted=self.targeted,
            augment=strength_augment(p.gen_strength),
            init="zero",
            shift=p.label_shift,
        )
        return Poison(x=release(train.x, delta), delta=delta, kind="samplewise", meta={**meta, **stats, "alpha": alpha}, surrogate=model)


class UTAAP(TAAP):
    """UT-AAP: untargeted augmented adversarial poisoning (Wang, Zhu & Gao, NeurIPS 2024):
    maximize CE(f(aug(x + delta)), y). Same threat model (L-inf 8/255, sample-wise), reference model
    (shared with T-AAP through the cache) and loop as :class:`TAAP`, the official ``aap.py`` without a
    target class, with :class:`TAAP`'s deviations. ``delta`` ``[N, C, H, W]`` in the L-inf ball; output
    uint8 ``[N, C, H, W]``."""

    name = "ut-aap"
    targeted = False


PLUGINS = [TAAP, UTAAP]
