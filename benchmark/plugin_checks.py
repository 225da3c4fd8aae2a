"""What makes a class registered as a plugin unusable: a name the tables and keys cannot carry, the
wrong base class, missing declarations (version, paradigm, unit), a defense overriding another
stage's method, defaults that fail their own validation. The registry lists such a plugin as
broken with the reason; ``benchmark.testing.check_plugin`` applies the same checks."""

from __future__ import annotations

import re
from typing import Any


def _base_class(kind: str) -> type | None:
    from benchmark.data.source import DatasetSource
    from benchmark.executor import Executor
    from benchmark.interfaces import Attack, Defense, Metric, Victim

    return {"attack": Attack, "victim": Victim, "defense": Defense, "metric": Metric, "dataset": DatasetSource,
            "executor": Executor}.get(kind)


#: a plugin name: it becomes part of file names, table headers and matrix keys
NAME = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
NAME_RULE = "lowercase letters, digits and single hyphens, starting with a letter"
NAME_MAX = 64


def name_problem(name: Any) -> str | None:
    """Why ``name`` cannot name a plugin, or ``None``."""
    if not isinstance(name, str) or not name.strip():
        return f"has no usable `name` (got {name!r}): set a class attribute `name = \"...\"`"
    if len(name) > NAME_MAX:
        return f"has a `name` of {len(name)} characters ({name[:24]!r}...): at most {NAME_MAX}"
    if not NAME.fullmatch(name):
        return f"has the `name` {name!r}: use {NAME_RULE}"
    return None


def _declaration_problem(kind: str, obj: type) -> str | None:
    """Class attributes the runner and the reports rely on: a version string, a victim's paradigm,
    a metric's unit (what ``benchmark.testing.check_plugin`` also requires)."""
    from benchmark.interfaces import UNITS

    version = getattr(obj, "version", None)
    if not isinstance(version, str) or not version.strip():
        return f"has `version = {version!r}`: a non-empty string, such as \"1\""
    if kind == "victim" and getattr(obj, "paradigm", None) not in ("supervised", "contrastive"):
        return f"has `paradigm = {getattr(obj, 'paradigm', None)!r}`: 'supervised' or 'contrastive'"
    if kind == "metric" and getattr(obj, "unit", None) not in UNITS:
        return f"has `unit = {getattr(obj, 'unit', None)!r}`: one of {', '.join(UNITS)}"
    return None


def class_problem(kind: str, name: Any, obj: Any) -> str | None:
    """Why ``obj`` cannot be the ``kind`` plugin ``name``, or ``None``."""
    problem = name_problem(name)
    if problem:
        return problem
    if kind == "model":
        return None if callable(obj) else f"is not callable (got {type(obj).__name__})"
    base = _base_class(kind)
    if not (isinstance(obj, type) and base is not None and issubclass(obj, base)):
        return f"is not a subclass of benchmark.{base.__name__ if base else kind} (got {obj!r:.80})"
    if kind in ("attack", "victim", "defense", "metric"):
        problem = _declaration_problem(kind, obj)
        if problem:
            return problem
    return (stage_problem(obj) if kind == "defense" else None) or _defaults_problem(obj)


#: the method each defense stage implements (the runner calls a defense's methods by its stage)
STAGE_METHODS = {"data": "transform", "train": "train_hooks", "model": "repair"}


def stage_problem(cls: type) -> str | None:
    """A defense's ``stage`` must be one the runner knows, and it may override only that stage's
    method (as ``benchmark.testing.check_plugin`` requires): otherwise a ``transform`` on a
    train-stage defense, say, would run where its author did not mean it to."""
    from benchmark.interfaces import Defense

    stage = getattr(cls, "stage", None)
    if stage not in ("none", *STAGE_METHODS):
        return f"has stage {stage!r}: one of none, {', '.join(STAGE_METHODS)}"
    for st, method in STAGE_METHODS.items():
        if st != stage and getattr(cls, method, None) is not getattr(Defense, method):
            return f"is a {stage}-stage defense but overrides {method}, the {st} stage's method"
    return None


def _defaults_problem(cls: type) -> str | None:
    """Whether the plugin's own defaults and profiles validate (params a user must give, such as a
    dataset's path, may be missing)."""
    from pydantic import ValidationError

    from benchmark.params import PROFILES, Params, format_error

    params = getattr(cls, "Params", None)
    if not (isinstance(params, type) and issubclass(params, Params)):
        return "its `Params` is not a subclass of benchmark.Params"
    profiles = getattr(cls, "profiles", {})
    if not isinstance(profiles, dict) or not all(isinstance(v, dict) for v in profiles.values()):
        return "its `profiles` is not a mapping of profile name to params"
    unknown = [p for p in profiles if p not in PROFILES]
    if unknown:
        return f"its `profiles` names unknown profile {unknown[0]!r} (allowed: {', '.join(PROFILES)})"
    for profile in PROFILES:
        try:
            params(**profiles.get(profile, {}))
        except ValidationError as err:
            real = [e for e in err.errors() if e["type"] != "missing"]
            if real:
                loc, msg = format_error(real[0], params)
                return f"its own default params fail validation at profile {profile!r}: {loc}: {msg}"
        except Exception as err:  # noqa: BLE001 - a validator of the plugin's own that crashed
            from benchmark.registry import one_line

            return f"its own default params fail validation at profile {profile!r}: {one_line(err)}"
    return None
