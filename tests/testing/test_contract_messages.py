"""A broken contract's message says what the plugin returned (type, dtype, shape), never a raw
traceback of the kit's own code."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch

from benchmark import Defense, ImageDataset
from benchmark.testing import ContractError, KitNoise, check_plugin
from benchmark.testing.contracts import described


class FloatBudget(KitNoise):
    """Declares its budget as a bare float (breaks attack.budget). Test-only."""

    name = "test-float-budget"

    def budget(self):
        return 0.031


class RaisingBudget(KitNoise):
    """Its budget() raises (breaks attack.budget). Test-only."""

    name = "test-raising-budget"

    def budget(self):
        raise RuntimeError("no eps")


class HalfSize(Defense):
    """Downsamples the images 2x (breaks defense.transform: the shape changes). Test-only."""

    name = "test-half-size"
    stage: ClassVar[str] = "data"

    def transform(self, train, ctx):
        return ImageDataset(train.x[:, :, ::2, ::2].contiguous(), train.y, train.classes, train.index)


class RawTensor(Defense):
    """Returns the images tensor, not an ImageDataset (breaks defense.transform). Test-only."""

    name = "test-raw-tensor"
    stage: ClassVar[str] = "data"

    def transform(self, train, ctx):
        return train.x.float() / 255


def _broken(cls, contract: str) -> str:
    with pytest.raises(ContractError) as err:
        check_plugin(cls)
    assert err.value.contract == contract
    return str(err.value).splitlines()[0]


def test_a_budget_that_is_not_a_budget_is_a_contract_error_naming_it():
    line = _broken(FloatBudget, "attack.budget")
    assert line.endswith("breaks contract 'attack.budget': budget() returned float 0.031, not a benchmark.interfaces.Budget")
    assert "budget() raised RuntimeError: no eps (at test_contract_messages.py:" in _broken(RaisingBudget, "attack.budget")


def test_a_transform_contract_error_shows_what_was_returned():
    line = _broken(HalfSize, "defense.transform")
    assert line.endswith("transform returned ImageDataset torch.uint8 (64, 3, 8, 8), expected ImageDataset torch.uint8 (64, 3, 16, 16)")
    line = _broken(RawTensor, "defense.transform")
    assert line.endswith("transform returned Tensor torch.float32 (64, 3, 16, 16), expected ImageDataset torch.uint8 (64, 3, 16, 16)")
    assert "  " not in line


def test_described():
    assert described(None) == "NoneType None"
    assert described(0.5) == "float 0.5"
    assert described([1]) == "list"
    assert described(torch.zeros(2, 3, dtype=torch.uint8)) == "Tensor torch.uint8 (2, 3)"


class ZeroesHoldout(Defense):
    """Its repair wipes the hold-out it was given (breaks defense.repair: later cells repair with it). Test-only."""

    name = "test-zeroes-holdout"
    stage: ClassVar[str] = "model"

    def repair(self, model, holdout, ctx):
        holdout.x.zero_()
        return model


def test_a_repair_that_changes_the_hold_out_in_place_breaks_its_contract():
    line = _broken(ZeroesHoldout, "defense.repair")
    assert line.endswith("breaks contract 'defense.repair': the hold-out's images or labels changed in place"), line
