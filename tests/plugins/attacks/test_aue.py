"""The AUE attack (plugins/attacks/aue.py). Tiny synthetic data, smoke profile."""

from __future__ import annotations

import pytest
import torch

from benchmark.interfaces import RunContext
from tests.conftest import tiny_dataset
from tests.plugins.attacks.helpers import by_name


@pytest.fixture(autouse=True)
def _threads() -> None:
    torch.manual_seed(0)


def test_aue_lowers_training_loss_on_its_noise() -> None:
    data = tiny_dataset(n=64, classes=4, seed=1)
    p = by_name("aue", epochs=3, steps=5).generate(data, RunContext())
    acc = p.meta["train_accuracy"]
    assert len(acc) == 3 and acc[-1] >= acc[0]
