"""Which third-party package, and which release of it, made a table's entries.

A record made with a third-party plugin names the plugin's package and release
(``plugin_packages``: ``{"victim foo": "uebench-foo 0.3.1"}``), and a poison the release that
generated it (``poison_meta.package``); uebench's own plugins are named in neither. Every table
says, under it, which package and release made each of its attacks, victims, defenses and its
metric that came from a package, and when the cells of one entry were made by different releases
of its package (a release that changes numbers without bumping the plugin class's ``version`` keeps
the older release's cells: their keys are the same), how many cells each release made. The
leaderboard's top names every such entry too. Another package's plugin of the same name has other
keys (and tables name it as another entry); only records made before keys named the package can
put two packages' cells in one entry, and the line then says "different packages".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from benchmark.packages import package_name

if TYPE_CHECKING:
    from benchmark.report.records import Cell, Results

AXES = ("attack", "victim", "defense")
#: what a cell whose record does not name its plugin's package counts as, beside cells that do
NOT_RECORDED = "release not recorded"


def cell_packages(rec: dict[str, Any]) -> dict[str, str] | None:
    """A record's third-party releases by role: ``attack``, ``victim``, ``defense`` and ``metric
    <name>`` -> ``"package release"`` (built-ins absent); ``None`` for a record older than
    ``plugin_packages``. An attack's is the release that generated its poison, where the poison
    says (a cached poison is reused by a later release)."""
    stored = rec.get("plugin_packages")
    meta = rec.get("poison_meta")
    poison = meta.get("package") if isinstance(meta, dict) else None
    if not isinstance(stored, dict):
        return {"attack": poison} if isinstance(poison, str) and poison else None
    out: dict[str, str] = {}
    for axis in AXES:
        spec = rec.get(f"{axis}_spec")
        name = spec.get("name") if isinstance(spec, dict) else rec.get(axis)
        release = stored.get(f"{axis} {name}")
        if release is None:  # a spec without its name: the record's one plugin of this kind
            mine = [v for k, v in stored.items() if str(k).split(" ", 1)[0] == axis]
            release = mine[0] if len(mine) == 1 else None
        if axis == "attack" and isinstance(poison, str) and poison:
            release = poison
        if isinstance(release, str) and release:
            out[axis] = release
    out.update({str(k): v for k, v in stored.items() if str(k).startswith("metric ") and isinstance(v, str) and v})
    return out


def releases(cells: Iterable[Cell], metric_plugin: str | None = None) -> dict[tuple[str, str], Counter[str]]:
    """(kind, label) -> cells per release, for the entries of ``cells`` (attacks, victims, defenses
    and the metric plugin ``metric_plugin``) that a third-party package made; cells of such an
    entry whose record names no release count as :data:`NOT_RECORDED`. Cells that did not run
    (``n/a``) are left out, and from the metric's count the cells not asked for it."""
    seen: dict[tuple[str, str], Counter[str]] = {}
    for c in cells:
        if c.status == "n/a":
            continue
        roles = [(axis, getattr(c, axis), axis) for axis in AXES]
        if metric_plugin is not None and (c.plugins is None or metric_plugin in c.plugins):
            roles.append(("metric", metric_plugin, f"metric {metric_plugin}"))
        for kind, label, role in roles:
            seen.setdefault((kind, label), Counter())[(c.packages or {}).get(role, NOT_RECORDED)] += 1
    return {k: n for k, n in seen.items() if set(n) != {NOT_RECORDED}}


def entry_line(kind: str, label: str, counts: Counter[str]) -> str:
    """``attack `x`: package uebench-foo 0.3.1``, or, for cells made by several releases,
    ``victim `y`: cells made by different releases: uebench-foo 0.3.1 (4 cells), uebench-foo 0.3.0 (2 cells)``
    (``different packages`` where they are not all releases of one package)."""
    if len(counts) == 1:
        return f"{kind} `{label}`: package {next(iter(counts))}"
    each = ", ".join(f"{r} ({n} {'cell' if n == 1 else 'cells'})" for r, n in sorted(counts.items(), key=lambda rn: (-rn[1], rn[0])))
    if len({package_name(r) for r in counts if r != NOT_RECORDED}) > 1:
        return f"{kind} `{label}`: cells made by different packages: {each}"
    return f"{kind} `{label}`: cells made by different releases: {each}"


def table_packages(cells: Iterable[Cell], metric_plugin: str | None = None) -> list[str]:
    """One line per entry of a table (its cells) that a third-party package made (:func:`entry_line`),
    attacks first, then victims, defenses and the metric, each kind by label."""
    found = releases(cells, metric_plugin)
    return [entry_line(kind, label, n) for (kind, label), n in sorted(found.items(), key=_order)]


def mixed_releases(results: Results) -> list[str]:
    """One line per entry of a section whose cells were made by more than one release of its
    package (``toy-quick: victim `y`: cells made by different releases: ...``, the section named by its id as the other boxes name it)."""
    out = []
    for sec in results.sections:
        found = releases(sec.cells)
        for plugin in sorted({k.removeprefix("metric ") for c in sec.cells for k in (c.packages or {}) if k.startswith("metric ")}):
            found.update({k: n for k, n in releases(sec.cells, plugin).items() if k[0] == "metric"})
        for (kind, label), n in sorted(found.items(), key=_order):
            if len(n) > 1:
                out.append(f"{sec.id}: {entry_line(kind, label, n)}")
    return out


def _order(item: tuple[tuple[str, str], Counter[str]]) -> tuple[int, str]:
    (kind, label), _ = item
    return (*AXES, "metric").index(kind), label
