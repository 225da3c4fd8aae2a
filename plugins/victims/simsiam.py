"""SimSiam victim: siamese pretraining with a predictor and stop-gradient, then a linear probe."""

from __future__ import annotations

from pydantic import Field

from benchmark.interfaces import RunContext
from benchmark.models.classifier import Classifier
from benchmark.ssl.method import SSLMethod
from benchmark.ssl.simsiam import SimSiamMethod
from benchmark.ssl.victim import QUICK_COMMON, SMOKE_COMMON, SSLParams, SSLVictim


class SimSiam(SSLVictim):
    """SimSiam (Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021), the
    SimSiam victim of TP (Liu, Backes & Zhang, "Transferable Availability Poisoning Attacks", 2023).

    Role: a victim (no threat model). Input uint8 ``[N, C, H, W]``; projections ``[B, 2048]``;
    returns a linear-probed :class:`Classifier` ``[B, C, H, W] -> [B, K]``.

    Source followed: TrustMLRG/TransPoison ``main.py`` (``--cl_alg SimSiam --baseline``),
    ``cl_algs.py`` (``SimSiam``, ``projection_MLP_SS`` with 2 layers, ``prediction_MLP_SS``),
    ``losses.py`` (``SimSiamLoss``, no temperature, so no T/0.07 factor), ``evaluation.py``.
    Paper profile (TP Appendix A.3): CIFAR ResNet-18, projector 512 -> 2048 (BN, ReLU) -> 2048 (BN
    without affine), predictor 2048 -> 512 (BN, ReLU) -> 2048, symmetric negative cosine, SGD lr
    0.5, wd 1e-4, batch 512, 1000 epochs, warm-up + cosine on **every** parameter (TP's single
    optimizer group: ``fixed_predictor_lr: false``; the SimSiam paper keeps the predictor's lr
    constant: ``true``); probe as :class:`~benchmark.ssl.probe.ProbeRecipe`.
    Deviations: TransPoison's loader does not shuffle; we do. Per-step cosine; the SimSiam CIFAR
    recipe's lr 0.06 / wd 5e-4 is not the default (TP's is); final-epoch probe (TP: best epoch).
    Supervised ``TrainHooks`` are ignored (see :class:`SSLVictim`).
    ``quick`` probes with the centered kNN classifier (``probe: knn``, ``probe_center: true``: the
    InstDisc kNN monitor as in facebookresearch/moco's CIFAR-10 demo ``knn_predict``, k 200, T 0.1, on
    mean-centered features as SimpleShot's CL2N) instead of the linear probe; see docs/victims.md.
    """

    name = "simsiam"

    class Params(SSLParams):
        dim: int = Field(2048, ge=1)  # projector hidden and output width, the predictor's input and output
        pred_hidden: int = Field(512, ge=1)  # predictor hidden width (bottleneck)
        fixed_predictor_lr: bool = False  # predictor lr kept constant (the SimSiam paper); False: scheduled (TP)

    profiles = {
        "quick": {**QUICK_COMMON, "epochs": 40, "lr": 0.06, "weight_decay": 5e-4, "dim": 512, "pred_hidden": 128,
                  "fixed_predictor_lr": True},
        "smoke": {**SMOKE_COMMON, "dim": 32, "pred_hidden": 8},
    }

    def build_method(self, encoder: Classifier, ctx: RunContext) -> SSLMethod:
        p = self.params
        return SimSiamMethod(encoder, p.dim, p.pred_hidden, p.fixed_predictor_lr)


PLUGINS = [SimSiam]
