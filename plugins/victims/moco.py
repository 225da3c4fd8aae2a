"""MoCo v2 victim: momentum-contrast pretraining with a queue of negatives, then a linear probe."""

from __future__ import annotations

from pydantic import Field

from benchmark.interfaces import RunContext
from benchmark.models.classifier import Classifier
from benchmark.ssl.contrastive import loss_scale
from benchmark.ssl.method import SSLMethod
from benchmark.ssl.moco import MoCoMethod
from benchmark.ssl.victim import QUICK_COMMON, SMOKE_COMMON, ContrastiveParams, SSLVictim


class MoCoV2(SSLVictim):
    """MoCo v2 (He et al., "Momentum Contrast for Unsupervised Visual Representation Learning",
    CVPR 2020; Chen et al., "Improved Baselines with Momentum Contrastive Learning", 2020), the
    MoCo victim of CP (He, Zha & Katabi, ICLR 2023) and of TP (Liu, Backes & Zhang, 2023).

    Role: a victim (no threat model). Input uint8 ``[N, C, H, W]``; queries and keys ``[B, 128]``;
    queue ``[4096, 128]``; returns a linear-probed :class:`Classifier` ``[B, C, H, W] -> [B, K]``.

    Source followed: kaiwenzha/contrastive-poisoning ``main.py`` (``--cl_alg MoCov2``, which sets
    T 0.2 and lr 0.3), ``cl_algs.py`` (``MoCo``), ``losses.py`` (``MoCoLoss``), ``evaluation.py``.
    Paper profile: CIFAR ResNet-18, MLP 512 -> 512 -> 128, queue 4096, key momentum 0.99, InfoNCE
    at T 0.2 **multiplied by T / 0.07** (``base_temperature``; x2.9), one direction (``q(x1)``
    against ``k(x2)``: ``symmetric: false``), SGD lr 0.3, wd 1e-4, batch 512, 1000 epochs, warm-up
    + cosine; probe as :class:`~benchmark.ssl.probe.ProbeRecipe`.
    Deviations: single device, so no shuffle-BN across GPUs: the key batch is shuffled and
    encoded in ``key_splits`` (4: CP's 4 GPUs x 128) chunks with their own BN statistics instead;
    per-step cosine; final-epoch probe on the victim's own training set (CP: best epoch, clean
    training set). ``symmetric: true`` averages both directions and enqueues both key batches.
    Supervised ``TrainHooks`` are ignored (see :class:`SSLVictim`).
    ``quick`` probes with the centered kNN classifier (``probe: knn``, ``probe_center: true``: the
    InstDisc kNN monitor as in facebookresearch/moco's CIFAR-10 demo ``knn_predict``, k 200, T 0.1, on
    mean-centered features as SimpleShot's CL2N) instead of the linear probe; see docs/victims.md.
    """

    name = "moco"

    class Params(ContrastiveParams):
        lr: float = Field(0.3, gt=0)
        temperature: float = Field(0.2, gt=0)
        symmetric: bool = False  # also the loss with the views swapped (the mean of both); MoCo v2: one direction
        queue_size: int = Field(4096, ge=1)  # length of the queue of negative keys
        key_momentum: float = Field(0.99, ge=0, le=1)  # EMA momentum of the key encoder, per step
        # chunks of the shuffled key batch with their own BN statistics (shuffle-BN stand-in)
        key_splits: int = Field(4, ge=1)

    profiles = {
        "quick": {**QUICK_COMMON, "epochs": 25, "lr": 0.06, "weight_decay": 5e-4, "base_temperature": None, "symmetric": True},
        "smoke": {**SMOKE_COMMON, "queue_size": 64, "key_splits": 2},
    }

    def build_method(self, encoder: Classifier, ctx: RunContext) -> SSLMethod:
        p = self.params
        return MoCoMethod(
            encoder, p.proj_hidden or encoder.feature_dim, p.proj_dim, p.temperature, p.queue_size, p.key_momentum,
            p.key_splits, ctx.generator("moco.keys"), symmetric=p.symmetric, scale=loss_scale(p.temperature, p.base_temperature),
        )


PLUGINS = [MoCoV2]
