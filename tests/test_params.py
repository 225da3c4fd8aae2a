from __future__ import annotations

from typing import Any, Literal

import pytest
from pydantic import ValidationInfo, field_validator

from benchmark.errors import ConfigError
from benchmark.params import Params, only_for, parse_fraction, resolve_params
from benchmark.plugin import Plugin


class Toy(Plugin):
    """A toy plugin."""

    name = "toy"

    class Params(Params):
        eps: float = 8 / 255
        steps: int = 20
        maybe: float | None = None
        label: str = "a/b"

    profiles = {"quick": {"steps": 10}, "smoke": {"steps": 1, "eps": 0.5}}


def test_parse_fraction():
    assert parse_fraction("8/255") == pytest.approx(8 / 255)
    assert parse_fraction(" 0.5 / 2 ") == 0.25
    assert parse_fraction("abc") == "abc"
    assert parse_fraction(3) == 3


def test_fraction_only_for_float_fields():
    p = Toy.Params(eps="16/255", maybe="1/4", label="8/255")
    assert p.eps == pytest.approx(16 / 255) and p.maybe == 0.25
    assert p.label == "8/255"  # a string field keeps the string


def test_profile_then_overrides():
    assert resolve_params(Toy, "paper", {}).steps == 20
    assert resolve_params(Toy, "quick", {}).steps == 10
    q = resolve_params(Toy, "smoke", {"steps": 3})
    assert q.steps == 3 and q.eps == 0.5


def test_unknown_key_names_path_and_allowed():
    with pytest.raises(ConfigError) as e:
        resolve_params(Toy, "paper", {"step": 3}, where="attacks[0].params", file="m.yaml")
    msg = str(e.value)
    assert msg.startswith("m.yaml: attacks[0].params.step:")
    assert "did you mean 'steps'" in msg and "allowed: eps, steps, maybe, label" in msg


def test_bad_value_names_value():
    with pytest.raises(ConfigError, match=r"attacks\[1\]\.params\.steps: .*got 'many'"):
        resolve_params(Toy, "paper", {"steps": "many"}, where="attacks[1].params")


def test_unknown_profile():
    with pytest.raises(ConfigError, match="unknown profile 'fast'"):
        resolve_params(Toy, "fast", {})


def test_only_for_names_a_param_given_with_the_wrong_selector():
    owners = {"queue": ("moco",), "temp": ("moco", "simclr")}

    class Sel(Plugin):
        name = "sel"

        class Params(Params):
            method: Literal["simclr", "moco", "byol"] = "simclr"
            queue: int | None = None
            temp: float | None = None

            @field_validator(*owners)
            @classmethod
            def _only(cls, value: Any, info: ValidationInfo) -> Any:
                return only_for(owners, "method", value, info)

    assert resolve_params(Sel, "paper", {"method": "moco", "queue": 8, "temp": 0.2}).queue == 8
    assert resolve_params(Sel, "paper", {"method": "byol"}).queue is None  # defaults always pass
    with pytest.raises(ConfigError) as e:
        resolve_params(Sel, "paper", {"method": "simclr", "queue": 8}, where="attacks[2].params")
    assert str(e.value) == "attacks[2].params.queue: queue applies only to method 'moco', not 'simclr' (got 8)"
    with pytest.raises(ConfigError, match=r"temp applies only to method 'moco' or 'simclr', not 'byol'"):
        resolve_params(Sel, "paper", {"method": "byol", "temp": 0.5})
