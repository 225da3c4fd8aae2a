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


def test_numbers_yaml_reads_as_text_are_numbers_in_plugin_params():
    """PyYAML reads `1e-3` as a string (it wants a dot in an exponent): a plugin's params take it as
    the number, with the same validated dump (so the same cache key) as the number itself."""
    from benchmark.yaml_file import load_yaml_documents

    [doc] = load_yaml_documents("eps: 1e-3\nsteps: '7'\nmaybe: 25E-2")
    assert doc == {"eps": "1e-3", "steps": "7", "maybe": "25E-2"}
    p = resolve_params(Toy, "paper", doc)
    assert p.model_dump() == Toy.Params(eps=0.001, steps=7, maybe=0.25).model_dump()


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


def test_a_plugins_own_bad_default_names_the_plugin_not_the_users_key():
    from pydantic import Field

    class Broken(Plugin):
        """Its quick profile breaks its own bound; its default breaks another."""

        kind = "attack"
        name = "broken"

        class Params(Params):
            eps: float = Field(8 / 255, ge=0, le=1)
            steps: int = Field(0, ge=1)

        profiles = {"quick": {"eps": 2.0, "steps": 1}}

    with pytest.raises(ConfigError) as e:
        resolve_params(Broken, "quick", {}, where="attacks[0].params", file="m.yaml")
    assert str(e.value) == (f"m.yaml: attacks[0]: attack 'broken' ({__name__}) is broken: its own 'quick' profile for 'eps' "
                            "fails validation: Input should be less than or equal to 1 (got 2.0); eps is in [0, 1] pixel units: write 2/255 (= 0.0078) for 2 on the 0-255 scale")
    with pytest.raises(ConfigError, match=r"^attacks\[0\]: attack 'broken' .* its own default for 'steps' fails validation: "
                                          r"Input should be greater than or equal to 1 \(got 0\)$"):
        resolve_params(Broken, "paper", {"eps": 0.1}, where="attacks[0].params")
    with pytest.raises(ConfigError, match=r"^attacks\[0\]\.params\.eps: Input should be less than or equal to 1 \(got 3\.0\); eps is in \[0, 1\] pixel units: "
                                          r"write 3/255 \(= 0\.0118\) for 3 on the 0-255 scale$"):
        resolve_params(Broken, "quick", {"eps": 3.0}, where="attacks[0].params")  # the user's own value: the user's key
    assert resolve_params(Broken, "quick", {"eps": 0.5}).eps == 0.5


def test_numbers_are_finite_and_never_booleans():
    for bad, why in ((float("nan"), "finite number"), (float("inf"), "finite number"), ("1e400", "finite number"),
                     (True, "expected a number, got true")):
        with pytest.raises(ConfigError, match=why):
            resolve_params(Toy, "paper", {"eps": bad})
    with pytest.raises(ConfigError, match="steps: expected a number, got false"):
        resolve_params(Toy, "paper", {"steps": False})

    class Flag(Plugin):
        """A bool field keeps its booleans."""

        name = "flag"

        class Params(Params):
            on: bool | float = False

    assert resolve_params(Flag, "paper", {"on": True}).on is True


def test_validated_params_of_every_plugin_match_the_snapshot():
    """What cache keys are made of (every registered plugin's validated params at every profile)
    is what ``tests/data/plugin_specs.json`` recorded: bounds on ``Params`` fields and refactors leave
    the keys of computed results alone. A plugin not in the snapshot, or at another version, is
    skipped; after an intended change, regenerate it: ``python3 -m tests.spec_snapshot``."""
    import json

    from tests.spec_snapshot import SNAPSHOT, current_specs

    recorded = json.loads(SNAPSHOT.read_text())
    now = current_specs()
    compared = 0
    for plugin, spec in now.items():
        old = recorded.get(plugin)
        if old is None or old["version"] != spec["version"]:
            continue
        assert spec == old, f"{plugin}: validated params changed at version {spec['version']} (cache keys change); " \
                            "bump its version, or regenerate tests/data/plugin_specs.json if intended"
        compared += 1
    assert compared >= 20


@pytest.mark.parametrize(
    ("kind", "name", "params", "key"),
    [
        ("attack", "random-noise", {"eps": 2.0}, "eps"),
        ("attack", "em", {"eps": -0.1}, "eps"),
        ("attack", "em", {"steps": 0}, "steps"),
        ("attack", "em", {"lr": 0}, "lr"),
        ("attack", "tap", {"ref_milestones": [10, -1]}, "ref_milestones.1"),
        ("victim", "sl", {"batch_size": 0}, "batch_size"),
        ("victim", "sl", {"momentum": 1.0}, "momentum"),
        ("victim", "simclr", {"temperature": 0}, "temperature"),
        ("victim", "simclr", {"crop_scale_min": 1.5}, "crop_scale_min"),
        ("defense", "iss-jpeg", {"quality": 0}, "quality"),
        ("defense", "iss-bdr", {"bits": 9}, "bits"),
        ("metric", "certified-learnability", {"etas": [0.1, 0]}, "etas.1"),
        ("dataset", "digits", {"test_fraction": 1.0}, "test_fraction"),
    ],
)
def test_params_have_bounds(kind, name, params, key):
    from benchmark.registry import get_registry

    with pytest.raises(ConfigError, match=rf"^x\.params\.{key}: Input should be"):
        resolve_params(get_registry().get(kind, name), "paper", params, where="x.params")
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
