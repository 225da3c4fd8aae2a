"""Which release of a third-party plugin's package made a result.

A plugin class's ``version`` and its package's name are part of every cache key (another package's
plugin of the same name and version has other keys); the package's version is not, so a new
release of a package that changes numbers without bumping the class's ``version`` would be served
the old results silently. Records and poisons name the package and release (``plugin_packages``,
``package``) and ``bench run`` warns when it reuses results made with another release of the
same package.
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
    if entry.obj is not type(plugin):  # another class of that name (one a test gave the plugin kit)
        return ""
    return "" if entry.package == "uebench" else entry.origin


def _release(origin: str) -> tuple[str, str]:
    """``"Uebench_Foo 0.3"`` -> ``("uebench-foo", "0.3")``: the package as keys name it, and its release."""
    from benchmark.registry import normalized_package

    name, _, version = origin.strip().partition(" ")
    return normalized_package(name), version.strip()


def package_name(origin: str) -> str:
    """The package of ``origin`` (``"package version"``, as records name it), as keys name it:
    ``"Uebench_Foo 0.3"`` -> ``"uebench-foo"``."""
    return _release(origin)[0]


def another_release(then: Any, now: Any) -> bool:
    """Whether ``then`` and ``now`` (``"package version"``, as records name them) are two releases
    of one package. Another package is never that: its plugins have other keys, so nothing it
    made is reused (a record made before keys named the package is the exception)."""
    if not (isinstance(then, str) and isinstance(now, str)):
        return False
    (a, va), (b, vb) = _release(then), _release(now)
    return bool(a) and a == b and va != vb


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
    it is this one's, none was recorded, or another package made it (:func:`another_release`)."""
    package = package_of(attack)
    if made_by is None or not another_release(made_by, package):
        return None
    return (f"warning: the cached poison of attack {attack.name!r} was generated with another release of "
            f"its package ({made_by} -> {package}); it is reused: if the new release changes numbers, bump the "
            "plugin class's `version`")
