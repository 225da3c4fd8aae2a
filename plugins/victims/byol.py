"""BYOL victim: bootstrap-your-own-latent pretraining (no negatives), then a linear probe."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from benchmark.interfaces import RunContext
from benchmark.models.classifier import Classifier
from benchmark.ssl.byol import BYOLMethod
from benchmark.ssl.method import SSLMethod
from benchmark.ssl.victim import QUICK_COMMON, SMOKE_COMMON, SSLParams, SSLVictim


class BYOL(SSLVictim):
    """BYOL (Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020), the BYOL victim of CP
    (He, Zha & Katabi, ICLR 2023) and of TP (Liu, Backes & Zhang, 2023).

    Role: a victim (no threat model). Input uint8 ``[N, C, H, W]``; projections and predictions
    ``[B, 256]``; returns a linear-probed :class:`Classifier` ``[B, C, H, W] -> [B, K]``.

    Source followed: kaiwenzha/contrastive-poisoning ``main.py`` (``--cl_alg BYOL``: lr 1.0),
    ``cl_algs.py`` (``BYOL``, ``_get_byol_mlp``), ``losses.py`` (``SymNegCosineSimilarityLoss``: no
    temperature, so no T/0.07 factor), ``evaluation.py``. Paper profile: CIFAR ResNet-18,
    projector 512 -> 4096 (BN, ReLU) -> 256, predictor 256 -> 4096 (BN, ReLU) -> 256, symmetric
    negative cosine (each direction x1/2), SGD lr 1.0, wd 1e-4, batch 512, 1000 epochs, warm-up +
    cosine; probe as :class:`~benchmark.ssl.probe.ProbeRecipe`. Target momentum: CP's ``BYOL.forward``
    runs ``_forward`` once per direction and each call applies the 0.999 EMA, so the target moves
    twice per step: one update of ``0.999 ** 2`` per step here (``target_momentum`` is per step).
    ``momentum_schedule: cosine`` with ``target_momentum: 0.99`` gives the BYOL paper's 0.99 -> 1.
    Deviations: ``-cos`` rather than BYOL's ``2 - 2 cos`` (CP's choice too); per-step cosine lr;
    final-epoch probe on the victim's own training set (CP: best epoch, clean training set).
    Supervised ``TrainHooks`` are ignored (see :class:`SSLVictim`).
    ``quick`` probes with the centered kNN classifier (``probe: knn``, ``probe_center: true``: the
    InstDisc kNN monitor as in facebookresearch/moco's CIFAR-10 demo ``knn_predict``, k 200, T 0.1, on
    mean-centered features as SimpleShot's CL2N) instead of the linear probe; see docs/victims.md.
    """

    name = "byol"

    class Params(SSLParams):
        lr: float = Field(1.0, gt=0)
        # EMA momentum of the target network per step; CP's 0.999, applied twice a step
        target_momentum: float = Field(0.999**2, ge=0, le=1)
        # constant, or cosine from target_momentum up to 1 (the BYOL paper)
        momentum_schedule: Literal["constant", "cosine"] = "constant"
        hidden_dim: int = Field(4096, ge=1)  # hidden width of the projector and the predictor
        out_dim: int = Field(256, ge=1)  # output dim of the projector and the predictor

    profiles = {
        "quick": {**QUICK_COMMON, "epochs": 40, "lr": 0.06, "weight_decay": 5e-4, "target_momentum": 0.99, "hidden_dim": 1024},
        "smoke": {**SMOKE_COMMON, "hidden_dim": 32, "out_dim": 16, "target_momentum": 0.9},
    }

    def build_method(self, encoder: Classifier, ctx: RunContext) -> SSLMethod:
        p = self.params
        return BYOLMethod(encoder, p.hidden_dim, p.out_dim, p.target_momentum, p.momentum_schedule)


PLUGINS = [BYOL]
