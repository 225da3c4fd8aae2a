"""SimCLR victim: NT-Xent contrastive pretraining, then a linear probe."""

from __future__ import annotations

from benchmark.interfaces import RunContext
from benchmark.models.classifier import Classifier
from benchmark.ssl.contrastive import SimCLRMethod, loss_scale
from benchmark.ssl.method import SSLMethod
from benchmark.ssl.victim import QUICK_COMMON, SMOKE_COMMON, ContrastiveParams, SSLVictim


class SimCLR(SSLVictim):
    """SimCLR (Chen, Kornblith, Norouzi & Hinton, "A Simple Framework for Contrastive Learning of
    Visual Representations", ICML 2020) as the contrastive data user of CP (He, Zha & Katabi,
    "Indiscriminate Poisoning Attacks on Unsupervised Contrastive Learning", ICLR 2023) and of TP
    (Liu, Backes & Zhang, "Transferable Availability Poisoning Attacks", 2023).

    Role: a victim (no threat model of its own): it trains on whatever (poisoned, defended) uint8
    images ``[N, C, H, W]`` it gets, then fits a linear probe on the same set, and returns a
    :class:`Classifier` mapping [0, 1] images ``[B, C, H, W]`` to logits ``[B, K]``.

    Source followed: kaiwenzha/contrastive-poisoning ``main.py`` (``--baseline`` / ``--pretrained_delta``
    runs with ``--cl_alg SimCLR``), ``losses.py`` (``SimCLRLoss``), ``resnet.py``, ``util.py``,
    ``evaluation.py``; TrustMLRG/TransPoison ``main.py`` and ``evaluation.py`` are the same recipe.
    Paper profile: CIFAR ResNet-18, projector 512 -> 512 -> 128 (ReLU, no BN, L2-normalized),
    NT-Xent at T 0.5 **multiplied by T / 0.07** (``base_temperature``; x7.1, as SupContrast-style
    ``SimCLRLoss``), SGD lr 0.5, m 0.9, wd 1e-4 on every parameter, batch 512, 1000 epochs, 10-epoch
    linear warm-up from lr 0.01, cosine to lr/1000; probe: SGD lr 1.0, 100 epochs, x0.2 after
    60/75/90, fresh RandomResizedCrop(0.2-1) + flip views through the frozen eval-mode encoder
    (:class:`~benchmark.ssl.probe.ProbeRecipe`).

    Deviations: single device (CP runs DDP on 4 GPUs with SyncBN and gathered negatives: the
    same loss and BN statistics over the 1024 views); the lr follows the schedule per step, CP's
    cosine per epoch (warm-up per step in both); the probe keeps the **final** epoch (CP/TP report
    the best test accuracy over the probe's epochs) and trains on the victim's own, possibly
    poisoned, training set (TP's convention; CP probes on the clean training set, which a data
    user does not have). ``quick``/``smoke``: see :data:`QUICK` and docs/victims.md.
    Supervised ``TrainHooks`` are ignored (see :class:`SSLVictim`).
    ``quick`` probes with the centered kNN classifier (``probe: knn``, ``probe_center: true``: the
    InstDisc kNN monitor as in facebookresearch/moco's CIFAR-10 demo ``knn_predict``, k 200, T 0.1, on
    mean-centered features as SimpleShot's CL2N) instead of the linear probe; see docs/victims.md.
    """

    name = "simclr"

    Params = ContrastiveParams

    profiles = {
        "quick": {**QUICK_COMMON, "epochs": 25, "lr": 0.06, "weight_decay": 5e-4, "base_temperature": None},
        "smoke": {**SMOKE_COMMON},
    }

    def build_method(self, encoder: Classifier, ctx: RunContext) -> SSLMethod:
        p = self.params
        return SimCLRMethod(
            encoder, p.proj_hidden or encoder.feature_dim, p.proj_dim, p.temperature, loss_scale(p.temperature, p.base_temperature)
        )


PLUGINS = [SimCLR]
