"""The base of the self-supervised victims: pretrain an encoder with an :class:`SSLMethod`, then
linear-probe its frozen features on the same training set (the linear-evaluation
protocol of the CP and TP papers' contrastive victims)."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar, Literal

from pydantic import Field, model_validator
from torch import nn

from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import RunContext, TrainHooks, Victim
from benchmark.models import build_classifier
from benchmark.models.classifier import Classifier
from benchmark.params import Params
from benchmark.ssl.method import PretrainRecipe, SSLMethod, pretrain
from benchmark.ssl.probe import ProbeRecipe, knn_probe, linear_probe


class SSLParams(Params):
    """Shared parameters: the CP/TP faithful protocol (1000 epochs, batch 512, SGD m 0.9, wd 1e-4,
    10-epoch warm-up from lr 0.01, cosine to lr/1000; probe SGD lr 1.0, 100 epochs, x0.2 at 60/75/90).
    ``epochs: 0`` probes the randomly initialized encoder (the floor every SSL number needs).

    ``probe``: ``linear`` (the papers' protocol, the ``probe_*`` recipe keys) or ``knn``: the
    temperature-weighted kNN classifier of InstDisc (Wu et al., CVPR 2018) as in the kNN monitor of
    facebookresearch/moco's CIFAR-10 demo (``knn_predict``: cosine similarity, ``probe_k`` 200
    neighbours, weights ``exp(s / probe_temperature)``, T 0.1) over the encoder's features of the
    training set (:func:`~benchmark.ssl.probe.knn_probe`); ``probe_center`` first subtracts the
    bank's mean feature (SimpleShot's CL2N, Wang et al. 2019); the linear ``probe_*`` keys are
    unused then."""

    arch: str = "resnet18"  # encoder architecture: a registered name or timm/<name>
    epochs: int = Field(1000, ge=0)  # pretraining epochs; 0 probes the randomly initialised encoder
    batch_size: int = Field(512, ge=1)  # pretraining batch, in images (two views each)
    lr: float = Field(0.5, gt=0)  # pretraining SGD peak lr, after the warm-up, cosine down to lr x min_lr_ratio
    momentum: float = Field(0.9, ge=0, lt=1)  # pretraining SGD momentum
    weight_decay: float = Field(1e-4, ge=0)  # pretraining SGD weight decay
    warmup_epochs: int = Field(10, ge=0)  # epochs of linear lr warm-up from warmup_from
    warmup_from: float = Field(0.01, ge=0)  # absolute lr at the first step of the warm-up
    min_lr_ratio: float = Field(1e-3, ge=0, le=1)  # final pretraining lr as a fraction of lr (cosine floor)
    crop_scale_min: float = Field(0.2, gt=0, le=1)  # smallest area fraction of the views' random resized crop
    probe_epochs: int = Field(100, ge=1)  # epochs of the linear probe
    probe_batch_size: int = Field(512, ge=1)  # batch of the linear probe
    probe_lr: float = Field(1.0, gt=0)  # linear-probe SGD lr, x0.2 at 60/75/90% of its epochs
    probe_weight_decay: float = Field(0.0, ge=0)  # linear-probe SGD weight decay
    probe_standardize: bool = False  # linear probe on z-scored features (a deviation, for small nets)
    probe_augment: bool = True  # linear probe on resized-crop + flip views (else on un-augmented features)
    # linear probe: views extracted once and cycled; None: a fresh view per epoch
    probe_views: int | None = Field(None, ge=1)
    # how the frozen encoder is scored: linear probe (the papers) or weighted kNN
    probe: Literal["linear", "knn"] = "linear"
    probe_k: int = Field(200, ge=1)  # knn: neighbours that vote
    # knn: a neighbour's vote weighs exp(cosine similarity / probe_temperature)
    probe_temperature: float = Field(0.1, gt=0)
    probe_center: bool = False  # knn: subtract the bank's mean feature first (SimpleShot's CL2N)

    @model_validator(mode="after")
    def _knn_only(self) -> SSLParams:
        if self.probe_center and self.probe != "knn":
            raise ValueError("probe_center: applies to probe: knn only")
        return self


class ContrastiveParams(SSLParams):
    """What the InfoNCE-family victims (``simclr``, ``supcl``, ``moco``) add: the loss temperature,
    the CP/TP code's loss scale ``temperature / base_temperature`` (``base_temperature: null``
    leaves the loss unscaled) and the projection head (``proj_hidden``: None is the encoder's
    feature dimension, 512 for ResNet-18; ``proj_dim`` its output)."""

    temperature: float = Field(0.5, gt=0)  # softmax temperature of the InfoNCE / SupCon loss
    # loss x temperature / base_temperature (the CP/TP code); None: unscaled
    base_temperature: float | None = Field(0.07, gt=0)
    # projector hidden width; None: the encoder's feature dim (512 for ResNet-18)
    proj_hidden: int | None = Field(None, ge=1)
    proj_dim: int = Field(128, ge=1)  # projector output dim


#: The quick CPU profile shared by the SSL victims: small CNN, batch 64 (4x the optimizer steps of
#: batch 256 per epoch), the centered kNN probe (k 200, T 0.1), which separates trained from
#: random-init encoders better than the linear probe at this scale (benchmarks/ssl_quick.py,
#: benchmarks/README.md); the linear-probe keys (z-scored features, lr 0.1, wd 5e-4, as in
#: shared/reference/quick-scale-calibration.md) apply with ``probe: linear``.
QUICK_COMMON = {
    "arch": "small-cnn",
    "batch_size": 64,
    "warmup_epochs": 0,
    "probe": "knn",
    "probe_center": True,
    "probe_lr": 0.1,
    "probe_weight_decay": 5e-4,
    "probe_standardize": True,
    "probe_augment": False,
}
SMOKE_COMMON = {
    "arch": "small-cnn",
    "epochs": 1,
    "batch_size": 16,
    "warmup_epochs": 0,
    "probe_epochs": 2,
    "probe_batch_size": 16,
    "probe_lr": 0.1,
    "probe_standardize": True,
    "probe_views": 2,
}


class SSLVictim(Victim):
    """A self-supervised data user: two augmented views per image, an SSL objective, then a linear
    probe. Returns a :class:`Classifier` (pretrained backbone, probe as ``head``).

    The supervised :class:`TrainHooks` of training-stage defenses (AT, UEraser) are ignored:
    they define a per-batch cross-entropy step that has no meaning for an SSL objective.
    """

    paradigm: ClassVar[str] = "contrastive"
    params: SSLParams  # each method's ``Params`` extends SSLParams

    @abstractmethod
    def build_method(self, encoder: Classifier, ctx: RunContext) -> SSLMethod:
        """The method's loss module around ``encoder``."""

    def pretrain_recipe(self) -> PretrainRecipe:
        p = self.params
        return PretrainRecipe.from_params(p, warmup_from=p.warmup_from / p.lr, crop_scale=(p.crop_scale_min, 1.0))

    def probe_recipe(self) -> ProbeRecipe:
        return ProbeRecipe.from_params(self.params, "probe_")

    def fit(self, train: ImageDataset, ctx: RunContext, hooks: TrainHooks) -> nn.Module:
        p = self.params
        mean, std = train.mean_std()
        encoder = build_classifier(p.arch, train.shape[0], train.num_classes, mean, std, ctx.device)
        if p.epochs > 0:
            method = self.build_method(encoder, ctx).to(ctx.device)
            pretrain(method, train, self.pretrain_recipe(), ctx, desc=f"{self.name}/{p.arch}")
        return self.probe(encoder, train, ctx)

    def probe(self, encoder: Classifier, train: ImageDataset, ctx: RunContext) -> Classifier:
        """The victim's probe (``probe: knn`` or ``linear``) over the pretrained ``encoder``."""
        p = self.params
        if p.probe == "knn":
            return knn_probe(encoder, train, ctx, p.probe_k, p.probe_temperature, p.probe_center)
        return linear_probe(encoder, train, ctx, self.probe_recipe())
