"""SupCL victim: supervised contrastive pretraining (SupCon loss), then a linear probe."""

from __future__ import annotations

from benchmark.interfaces import RunContext
from benchmark.models.classifier import Classifier
from benchmark.ssl.contrastive import SupConMethod, loss_scale
from benchmark.ssl.method import SSLMethod
from benchmark.ssl.victim import QUICK_COMMON, SMOKE_COMMON, ContrastiveParams, SSLVictim


class SupCL(SSLVictim):
    """Supervised contrastive learning (Khosla et al., "Supervised Contrastive Learning",
    NeurIPS 2020), the SupCL victim of TP (Liu, Backes & Zhang, "Transferable Availability
    Poisoning Attacks", 2023).

    Role: a victim (no threat model). Input uint8 ``[N, C, H, W]`` plus labels ``[N]``; two views
    per image; SupCon over the ``2B`` projections ``[2B, 128]`` (positives: all other views with the
    same label); then a linear probe; returns a :class:`Classifier` ``[B, C, H, W] -> [B, K]``.

    Source followed: TrustMLRG/TransPoison ``main.py`` (``--cl_alg SupCL --baseline``), ``losses.py``
    (``SupConLoss``, SupContrast's), ``evaluation.py``. Paper profile (TP Appendix A.3): CIFAR
    ResNet-18, projector 512 -> 512 -> 128, SupCon at T 0.5 **multiplied by T / 0.07**
    (``base_temperature``; x7.1), SGD lr 0.5, m 0.9, wd 1e-4, batch 512, 1000 epochs, 10-epoch warm-up
    from 0.01, cosine to lr/1000; probe as :class:`~benchmark.ssl.probe.ProbeRecipe`. SupContrast's
    own default is T 0.1 (set ``temperature: 0.1``).
    Deviations: TransPoison's training loader does not shuffle (``DataLoader`` without
    ``shuffle``); we shuffle every epoch. Per-step cosine (TP: per epoch). The probe keeps the final
    epoch (TP reports the best) and trains on the victim's own training set, as TP.
    ``quick``/``smoke``: see docs/victims.md. Supervised ``TrainHooks`` are ignored (see :class:`SSLVictim`).
    ``quick`` probes with the centered kNN classifier (``probe: knn``, ``probe_center: true``: the
    InstDisc kNN monitor as in facebookresearch/moco's CIFAR-10 demo ``knn_predict``, k 200, T 0.1, on
    mean-centered features as SimpleShot's CL2N) instead of the linear probe; see docs/victims.md.
    """

    name = "supcl"

    Params = ContrastiveParams

    profiles = {
        "quick": {**QUICK_COMMON, "epochs": 25, "lr": 0.06, "weight_decay": 5e-4, "base_temperature": None},
        "smoke": {**SMOKE_COMMON},
    }

    def build_method(self, encoder: Classifier, ctx: RunContext) -> SSLMethod:
        p = self.params
        return SupConMethod(
            encoder, p.proj_hidden or encoder.feature_dim, p.proj_dim, p.temperature, loss_scale(p.temperature, p.base_temperature)
        )


PLUGINS = [SupCL]
