"""Smoke-profile fits of the contrastive victims on tiny data, through the registry."""

from __future__ import annotations

import pytest
import torch

from benchmark.interfaces import RunContext, TrainHooks
from benchmark.models.classifier import Classifier
from benchmark.params import resolve_params
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
    assert reg.get("victim", "moco").Params().queue_size == 4096
    assert reg.get("victim", "byol").Params().target_momentum == 0.999
