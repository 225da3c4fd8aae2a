"""Smoke-profile fits of the contrastive victims on tiny data, through the registry."""

from __future__ import annotations

import pytest
import torch

from benchmark.interfaces import RunContext, TrainHooks
from benchmark.models.classifier import Classifier
from benchmark.registry import get_registry
from benchmark.training import accuracy
from tests.conftest import tiny_dataset

SSL_VICTIMS = ["simclr", "supcl", "moco", "byol", "simsiam"]


@pytest.mark.parametrize("name", SSL_VICTIMS)
def test_smoke_fit(name: str) -> None:
    cls = get_registry().get("victim", name)
    assert cls.paradigm == "contrastive"
    victim = cls(cls.Params(**cls.profiles["smoke"]))
    data = tiny_dataset(n=48, size=16)
    model = victim.fit(data, RunContext(), TrainHooks())
    assert isinstance(model, Classifier) and not model.training
    assert model(torch.rand(3, 3, 16, 16)).shape == (3, data.num_classes)
    assert accuracy(model, data, RunContext()) > 0.5  # class colours are linearly separable


@pytest.mark.parametrize("name", SSL_VICTIMS)
def test_pretraining_changes_encoder(name: str) -> None:
    cls = get_registry().get("victim", name)
    data = tiny_dataset(n=32, size=16)
    ctx = RunContext()
    torch.manual_seed(0)
    v0 = cls(cls.Params(**{**cls.profiles["smoke"], "epochs": 0})).fit(data, ctx, TrainHooks())
    torch.manual_seed(0)
    v1 = cls(cls.Params(**cls.profiles["smoke"])).fit(data, ctx, TrainHooks())
    diff = sum((a - b).abs().sum().item() for a, b in zip(v0.backbone.parameters(), v1.backbone.parameters()))
    assert diff > 0


def test_paper_profiles_are_faithful() -> None:
    reg = get_registry()
    for name in SSL_VICTIMS:
        p = reg.get("victim", name).Params()
        assert (p.arch, p.epochs, p.batch_size, p.probe_epochs, p.probe_lr) == ("resnet18", 1000, 512, 100, 1.0)
        assert (p.probe_augment, p.probe_views, p.probe_standardize, p.probe_weight_decay) == (True, None, False, 0.0)
        assert (p.warmup_epochs, p.warmup_from, p.weight_decay, p.min_lr_ratio) == (10, 0.01, 1e-4, 1e-3)
    # the CP/TP code multiplies InfoNCE / SupCon by T / 0.07
    for name, t, lr in (("simclr", 0.5, 0.5), ("supcl", 0.5, 0.5), ("moco", 0.2, 0.3)):
        p = reg.get("victim", name).Params()
        assert (p.temperature, p.base_temperature, p.lr) == (t, 0.07, lr)
    moco = reg.get("victim", "moco").Params()
    assert (moco.queue_size, moco.key_momentum, moco.symmetric) == (4096, 0.99, False)
    byol = reg.get("victim", "byol").Params()
    assert (byol.lr, byol.hidden_dim, byol.out_dim) == (1.0, 4096, 256)
    assert byol.target_momentum == pytest.approx(0.999**2)  # CP applies its 0.999 EMA twice per step
    simsiam = reg.get("victim", "simsiam").Params()
    assert (simsiam.lr, simsiam.dim, simsiam.pred_hidden, simsiam.fixed_predictor_lr) == (0.5, 2048, 512, False)


@pytest.mark.parametrize("name", ["simclr", "byol"])
def test_knn_probe_param(name: str) -> None:
    """``probe: knn`` installs the kNN head over the pretrained encoder; a bad probe kind is a
    validation error naming the key."""
    from pydantic import ValidationError

    from benchmark.ssl import KNNHead

    cls = get_registry().get("victim", name)
    victim = cls(cls.Params(**{**cls.profiles["smoke"], "probe": "knn", "probe_k": 5}))
    data = tiny_dataset(n=48, size=16)
    model = victim.fit(data, RunContext(), TrainHooks())
    assert isinstance(model.head, KNNHead) and model.head.k == 5 and not model.training
    assert accuracy(model, data, RunContext()) > 0.5
    with pytest.raises(ValidationError, match="probe"):
        cls.Params(probe="svm")
    with pytest.raises(ValidationError, match="probe_center: applies to probe: knn only"):
        cls.Params(probe_center=True)
