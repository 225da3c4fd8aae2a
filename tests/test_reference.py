"""benchmark.reference: reference classifiers trained once per settings and data, through the
attacks that use them (TAP, T-AAP, UT-AAP)."""

from __future__ import annotations

import pytest
import torch

from benchmark import reference as _reference
from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import RunContext
from benchmark.store import ArtifactCache
from benchmark.training import train_supervised
from tests.plugins.attacks.helpers import by_name


@pytest.fixture(autouse=True)
def _threads() -> None:
    torch.manual_seed(0)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []

    def fake_train(model: torch.nn.Module, *args: object, **kwargs: object) -> torch.nn.Module:
        calls.append(1)
        return train_supervised(model, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_reference, "train_supervised", fake_train)
    return calls


def test_reference_model_is_trained_once_per_settings(counted: list[int], tiny: ImageDataset, tmp_path) -> None:
    ctx = RunContext(cache=ArtifactCache(tmp_path), data_key="tiny")
    first = by_name("tap").generate(tiny, ctx)
    assert counted == [1] and first.meta["reference_cached"] is False
    second = by_name("tap").generate(tiny, ctx)  # second generate call
    assert counted == [1] and second.meta["reference_cached"] is True
    by_name("tap-untargeted").generate(tiny, ctx)  # another attack, same reference settings
    assert counted == [1]
    by_name("t-aap").generate(tiny, ctx)  # AAP's reference model has other settings: trained...
    assert counted == [1, 1]
    by_name("ut-aap").generate(tiny, ctx)  # ...once, for both AAP variants
    assert counted == [1, 1]
    by_name("tap", ref_epochs=1).generate(tiny, ctx)  # other settings: a new model
    assert len(counted) == 3
    by_name("tap").generate(tiny, RunContext(cache=ArtifactCache(tmp_path), data_key="other-data"))  # other data
    assert len(counted) == 4


def test_reference_model_without_data_key_uses_a_fingerprint(counted: list[int], tiny: ImageDataset, tmp_path) -> None:
    cache = ArtifactCache(tmp_path)
    by_name("tap").generate(tiny, RunContext(cache=cache))
    by_name("tap").generate(tiny, RunContext(cache=cache))
    assert counted == [1]
    other = tiny.with_images(255 - tiny.x)
    by_name("tap").generate(other, RunContext(cache=cache))
    assert counted == [1, 1]
