"""Plugin parameters: a pydantic model per plugin, with profiles.

Every plugin declares ``Params`` (defaults = the paper's CIFAR-10 settings) and ``profiles``, a
mapping ``{"quick": {...}, "smoke": {...}}`` of overrides. ``paper`` is the defaults. Explicit
params in the matrix override the profile. Unknown keys are rejected. Floats accept fractions
written as strings (``"8/255"``), as YAML has no fraction literal.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from benchmark.errors import ConfigError
from benchmark.profiles import PROFILES

_FRACTION = re.compile(r"^\s*([-+]?\d+(?:\.\d*)?)\s*/\s*(\d+(?:\.\d*)?)\s*$")


def parse_fraction(value: Any) -> Any:
    """``"8/255"`` -> 0.03137...; anything else is returned unchanged."""
    if isinstance(value, str):
        m = _FRACTION.match(value)
        if m:
            den = float(m.group(2))
            if den == 0:
                raise ValueError(f"division by zero in {value!r}")
            return float(m.group(1)) / den
    return value


def _odd(v: int) -> int:
    if v % 2 == 0:
        raise ValueError("must be odd")
    return v


#: a filter's kernel size: a positive odd integer, so that the kernel is centred on its pixel
OddKernel = Annotated[int, Field(ge=1), AfterValidator(_odd)]


def _accepts(annotation: Any, types_: tuple[type, ...]) -> bool:
    if annotation in types_:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(a, types_) for a in typing.get_args(annotation))
    if origin is typing.Annotated:
        return _accepts(typing.get_args(annotation)[0], types_)
    return False


def _accepts_float(annotation: Any) -> bool:
    return _accepts(annotation, (float,))


class Params(BaseModel):
    """Base class of every plugin's parameters: unknown keys are errors, fractions are numbers,
    defaults are validated too, numbers are finite (no NaN, no ``1e400``) and never booleans
    (``eps: true`` is a mistake, not 1.0). Bounds go on the fields (``Field(ge=0, le=1)``); they
    only reject values, so adding one never changes a validated dump (a cache key)."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _fractions(cls, data: Any) -> Any:
        if isinstance(data, dict):
            out = dict(data)
            for key, value in data.items():
                field = cls.model_fields.get(key)
                if field is None:
                    continue
                if isinstance(value, bool) and _accepts(field.annotation, (int, float)) and not _accepts(field.annotation, (bool,)):
                    raise ValueError(f"{key}: expected a number, got {str(value).lower()}")
                if _accepts_float(field.annotation):
                    try:
                        out[key] = parse_fraction(value)
                    except ValueError as e:
                        raise ValueError(f"{key}: {e}") from None
            return out
        return data


def format_error(e: Any, model: type[BaseModel]) -> tuple[str, str]:
    """One pydantic error (an item of ``ValidationError.errors()``) as (key path, message with the
    allowed keys or values); the rejected value is shown shortened (:func:`~benchmark.errors.shorten`)."""
    from benchmark.errors import clip, did_you_mean, shorten

    loc = ".".join(clip(str(p), 40) for p in e["loc"])  # a key may be anything a YAML file holds
    if e["type"] == "value_error" and not loc:  # raised by a model validator, as "key: why"
        msg = str(e["msg"]).removeprefix("Value error, ")
        key, sep, why = msg.partition(": ")
        return (key, why) if sep and key in model.model_fields else ("", msg)
    if e["type"] == "extra_forbidden":
        allowed = list(model.model_fields)
        key = str(e["loc"][-1])
        return loc, (
            f"unknown key {shorten(key)}{did_you_mean(key, allowed)} (allowed: {', '.join(allowed) or 'none'})"
        )
    msg = str(e["ctx"]["error"]) if e["type"] == "value_error" and "error" in e.get("ctx", {}) else e["msg"]
    return loc, msg + shown_input(e) + _eps_hint(e)


def _eps_hint(e: Any) -> str:
    """For a perturbation budget or a step size (a param named ``eps``, ``epsilon``, ``adv_eps``,
    ``eps_step``, ``alpha``, ``step_size``...) above its bound of 1: that it is in [0, 1] pixel
    units, with the fraction to write for a value on the 0-255 scale."""
    name = str(e["loc"][-1]).lower() if e.get("loc") else ""
    ctx, got = e.get("ctx") or {}, e.get("input")
    bound = ctx.get("le", ctx.get("lt"))
    found = re.search(r"(^|_)(eps(ilon)?)(_|$)", name) or re.fullmatch(r"(alpha|step_size)", name)
    if (not found or e["type"] not in ("less_than_equal", "less_than") or bound != 1
            or isinstance(got, bool) or not isinstance(got, int | float)):
        return ""
    hint = f"; {'eps' if 'eps' in found.group(0) else found.group(0)} is in [0, 1] pixel units"
    if 1 < got <= 255:
        n = int(got) if float(got).is_integer() else got
        hint += f": write {n}/255 (= {got / 255:.4f}) for {n} on the 0-255 scale"
    return hint


def shown_input(e: Any) -> str:
    """`` (got VALUE)`` for a pydantic error, shortened; a number YAML read as text (``'100'``,
    ``1e3``: PyYAML wants a dot in an exponent) is named as such, with the number to write."""
    from benchmark.errors import shorten

    got = e.get("input")
    if e["type"] in ("int_type", "float_type") and isinstance(got, str) and _number(got) is not None:
        return f" (got the string {shorten(got)}: YAML reads a quoted number, or an exponent without a dot, as text; write {_number(got)})"
    return f" (got {shorten(got)})"


def _number(text: str) -> int | float | None:
    """What a user meant by ``text`` when it reads as a number (``'1e3'`` -> 1000), else None."""
    try:
        x = float(text)
    except ValueError:
        return None
    return int(x) if x.is_integer() and abs(x) < 2**53 else x


def _member_tag(part: Any) -> bool:
    """Whether a path element is pydantic's name for a union member (``str``, ``int``,
    ``function-after[f(), str]``, ``list[int]``), not a field name or a list index."""
    return isinstance(part, str) and (part in ("str", "int", "float", "bool", "none", "bytes")
                                      or re.match(r"^[a-z-]+\[.*\]$", part) is not None)


def union_error(errors: list[Any]) -> Any:
    """The first of ``errors`` with a union's members folded into one: pydantic reports a value that
    fits none of ``str | int`` once per member, with the member's name as the last key of its path
    (``sbatch.account.str``). Returns the first error itself when it is not such a group, else a copy
    whose path ends at the value and whose message names the types it may have."""
    e0 = errors[0]
    loc = tuple(e0["loc"])
    same = [e for e in errors if len(e["loc"]) == len(loc) and tuple(e["loc"][:-1]) == loc[:-1] and e.get("input") is e0.get("input")]
    if not loc or len(same) < 2 or e0["type"] in ("extra_forbidden", "missing") or not all(_member_tag(e["loc"][-1]) for e in same):
        return e0
    kinds = [re.sub(r"^function-\w+\[(?:.*, )?(.+)\]$", r"\1", str(e["loc"][-1])) for e in same]
    names = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true/false", "none": "null"}
    expected = " or ".join(dict.fromkeys(names.get(k, k) for k in kinds))
    return {**e0, "loc": loc[:-1], "type": "union", "msg": f"must be {expected}"}


def format_validation_error(err: ValidationError, model: type[BaseModel]) -> tuple[str, str]:
    """First error of ``err`` as (key path, message with the allowed keys or values)."""
    return format_error(union_error(err.errors()), model)


def only_for(owners: dict[str, tuple[str, ...]], selector: str, value: Any, info: ValidationInfo) -> Any:
    """Body of a field validator for params that apply to some values of another field only (a
    MoCo queue size given with a BYOL objective): ``owners`` maps each such field to the values of
    ``selector`` it applies to; ``None`` (the default, "not given") always passes. The selector
    field must be declared before the fields it governs."""
    chosen = info.data.get(selector)
    allowed = owners[str(info.field_name)]
    if value is not None and chosen is not None and chosen not in allowed:
        raise ValueError(f"{info.field_name} applies only to {selector} {' or '.join(map(repr, allowed))}, not {chosen!r}")
    return value


def resolve_params(
    plugin: type[Any], profile: str, overrides: dict[str, Any] | None, *, where: str = "params", file: str | None = None
) -> Params:
    """Defaults <- profile <- explicit overrides, validated by ``plugin.Params``."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r} (allowed: {', '.join(PROFILES)})", file=file, path="profile")
    values: dict[str, Any] = dict(getattr(plugin, "profiles", {}).get(profile, {}))
    values.update(overrides or {})
    try:
        return plugin.Params(**values)
    except ValidationError as err:
        e = union_error(err.errors())
        loc, msg = format_error(e, plugin.Params)
        key = str(e["loc"][0]) if e["loc"] else loc.split(".")[0]
        if key and key not in (overrides or {}) and e["type"] != "missing":  # the plugin's own default
            kind, name = getattr(plugin, "kind", "plugin"), getattr(plugin, "name", plugin.__name__)
            source = f"{profile!r} profile" if key in getattr(plugin, "profiles", {}).get(profile, {}) else "default"
            raise ConfigError(
                f"{kind} {name!r} ({plugin.__module__}) is broken: its own {source} for {loc!r} fails validation: {msg}",
                file=file, path=where.rsplit(".params", 1)[0],
            ) from None
        raise ConfigError(msg, file=file, path=f"{where}.{loc}" if loc else where) from None
