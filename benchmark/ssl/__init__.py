"""Self-supervised learning building blocks: losses, heads, momentum encoders and the MoCo queue,
schedules, the SSL objectives (SimCLR, SupCon, MoCo v2, BYOL, SimSiam) that victims and attacks
share, the two-view pretraining loop, linear probing, and the base of the SSL victims."""

from __future__ import annotations

from benchmark.ssl.byol import BYOLMethod
from benchmark.ssl.contrastive import SimCLRMethod, SupConMethod, loss_scale
from benchmark.ssl.heads import mlp_head, prediction_head, projection_head
from benchmark.ssl.losses import alignment, info_nce_queue, negative_cosine, nt_xent, supcon, uniformity
from benchmark.ssl.method import PretrainRecipe, SSLMethod, pretrain
from benchmark.ssl.moco import MoCoMethod
from benchmark.ssl.momentum import KeyQueue, cosine_momentum, ema_update, momentum_copy
from benchmark.ssl.probe import KNNHead, ProbeRecipe, extract_features, fit_linear, knn_probe, knn_scores, linear_probe, probe_view
from benchmark.ssl.schedule import warmup_cosine
from benchmark.ssl.simsiam import SimSiamMethod

__all__ = [
    "BYOLMethod",
    "KNNHead",
    "KeyQueue",
    "MoCoMethod",
    "PretrainRecipe",
    "ProbeRecipe",
    "SSLMethod",
    "SimCLRMethod",
    "SimSiamMethod",
    "SupConMethod",
    "alignment",
    "cosine_momentum",
    "ema_update",
    "extract_features",
    "fit_linear",
    "info_nce_queue",
    "knn_probe",
    "knn_scores",
    "linear_probe",
    "loss_scale",
    "mlp_head",
    "momentum_copy",
    "negative_cosine",
    "nt_xent",
    "prediction_head",
    "pretrain",
    "probe_view",
    "projection_head",
    "supcon",
    "uniformity",
    "warmup_cosine",
]
