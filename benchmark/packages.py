"""Which release of a third-party plugin's package made a result.

A plugin class's ``version`` is part of every cache key; its package's version is not, so a new
release of a package that changes numbers without bumping the class's ``version`` would be served
the old results silently. Records and poisons name the package (``plugin_packages``, ``package``)
and ``bench run`` warns when it reuses results made with another release.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from benchmark.errors import UserError


def package_of(plugin: Any) -> str:
    """``"package version"`` of a third-party plugin instance, ``""`` for a built-in (or a class
    the registry does not hold, as in tests)."""
    from benchmark.registry import get_registry

    try:
        entry = get_registry().entry(plugin.kind, plugin.name)
    except UserError:
        return ""
    return "" if entry.package == "uebench" else entry.origin


def plugin_packages(cell: Any, metrics: Iterable[Any]) -> dict[str, str]:
    """``"kind name" -> "package version"`` for the cell's third-party plugins (empty when all
    are built-ins)."""
    out = {}
    for p in (cell.job.attack, cell.victim, cell.defense, *metrics):
        package = package_of(p)
        if package:
            out[f"{p.kind} {p.name}"] = package
    return out


def package_warning(attack: Any, made_by: str | None) -> str | None:
    """The warning ``bench run`` (and its dry-run) prints for a cached poison of ``attack`` that
    another release of its package (``made_by``, from the poison's meta) generated; ``None`` when
    it is this one's, or none was recorded."""
    package = package_of(attack)
    if made_by is None or made_by == package:
        return None
    return (f"warning: the cached poison of attack {attack.name!r} was generated with another release of "
            f"its package ({made_by} -> {package}); it is reused: if the new release changes numbers, bump the "
            "plugin class's `version`")
