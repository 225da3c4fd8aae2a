"""Cell records as reports see them: checked, named, grouped into sections and cell groups.

A *section* is one dataset (its label and content) at one profile; a *cell group* is the seeds
of one (attack, victim, defense) in a section: what one table cell shows. Records are never
dropped silently: a record that is not a cell record is counted in :attr:`Results.malformed`; one
whose attack, victim or defense is an older version of a plugin than other records of the same
entry in its section is *superseded* (listed, not averaged with the newer numbers); entries that
share a label but differ in params are told apart by the params that differ. The numeric
environments and poison generations cells saw are named in :mod:`benchmark.report.environments`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from benchmark.records import started_at
from benchmark.report.packages import cell_packages

#: the metric every leaderboard is built around
MAIN_METRIC = "accuracy"
#: rows and columns shown first, in this order; the rest alphabetically
FIRST = {"attack": ("clean", "random-noise"), "victim": ("sl",), "defense": ("none",)}
AXES = ("attack", "victim", "defense")


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def short_hash(obj: Any, n: int = 10) -> str:
    return hashlib.sha256(canonical(obj).encode()).hexdigest()[:n]


def slug(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(parts)).strip("-") or "x"


#: the longest file name stem a report writes (file systems allow 255 bytes per name)
MAX_STEM = 150


def bounded(stem: str, limit: int = MAX_STEM) -> str:
    """``stem`` as a file name stem of at most ``limit`` characters: as it is when it fits, else cut
    and ended by a digest of the whole (two long stems with one beginning stay two files)."""
    if len(stem) <= limit:
        return stem
    return stem[: limit - 11].rstrip("-") + "-" + short_hash(stem, 10)


def order(values: list[str] | set[str], first: tuple[str, ...], plugin: dict[str, str] | None = None) -> list[str]:
    """``values`` in the known order: those of ``first`` in its order, then the rest alphabetically.
    ``plugin``: the plugin each value names (an entry's label may be another word): a labelled
    entry of a plugin of ``first`` (``sl`` labelled ``supervised``) stands where the plugin does,
    after an entry shown by the plugin's own name."""
    rank = {v: i for i, v in enumerate(first)}

    def key(v: str) -> tuple[int, str]:
        if v in rank:
            return rank[v], ""
        return rank.get((plugin or {}).get(v, v), len(first)), v

    return sorted(set(values), key=key)


def _version_key(v: Any) -> tuple[Any, ...]:
    """``"10"`` after ``"9"``; ``"1.2"`` after ``"1.10"`` is not a concern (versions are counters)."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"[.\-]", str(v)))


@dataclass
class Cell:
    """One record, with the names tables give it."""

    key: str
    section: str
    attack: str
    victim: str
    defense: str
    seed: int | None
    status: str  # ok | failed | n/a
    metrics: dict[str, float]
    #: the metric plugins the record was asked for (None: an older record that does not say)
    plugins: tuple[str, ...] | None
    error: str | None
    #: the cell's numeric environment, named by what differs from others ("" if all agree; None: not ok)
    env: str | None
    record: dict[str, Any]
    #: the third-party releases that made it, by role (:func:`benchmark.report.packages.cell_packages`)
    packages: dict[str, str] | None = None

    @property
    def group(self) -> tuple[str, str, str, str]:
        return (self.section, self.attack, self.victim, self.defense)


@dataclass
class Section:
    """One dataset (label and content) at one profile."""

    id: str
    dataset: str  # label as tables show it
    profile: str
    description: str
    cells: list[Cell] = field(default_factory=list)
    attacks: list[str] = field(default_factory=list)
    victims: list[str] = field(default_factory=list)
    defenses: list[str] = field(default_factory=list)
    #: cells per numeric environment (see :attr:`Results.environments`)
    environments: Counter[str] = field(default_factory=Counter)

    @property
    def title(self) -> str:
        return f"{self.dataset} — profile `{self.profile}`"

    @property
    def slug(self) -> str:
        """What anchors, table ids and file names use: :attr:`id` (unique across sections)."""
        return self.id


@dataclass
class Results:
    """Everything a report shows, from the records of one results directory."""

    source: str
    sections: list[Section]
    n_records: int
    status_counts: Counter[str]
    #: output key -> (producing metric plugin or None, declared unit)
    metrics: dict[str, tuple[str | None, str]]
    superseded: list[Cell]
    malformed: list[str]
    #: cells per numeric environment, named by the fields that differ ({"": n} when all agree)
    environments: Counter[str]
    #: the numerics fields compared, and how many records only had their provenance to go by
    numerics_compared: list[str] = field(default_factory=list)
    numerics_partial: int = 0
    #: "section: attack" -> cells per generation of its poison, where one poison spec was generated
    #: more than once with different results (see :func:`poison_generations`)
    poison_generations: dict[str, Counter[str]] = field(default_factory=dict)
    #: "section: attack" -> what its poison did, where it did not reach its stopping condition
    #: (``poison_meta.stopped`` false; see :func:`benchmark.report.environments.unconverged_poisons`)
    unconverged: dict[str, str] = field(default_factory=dict)
    #: when the newest record finished (its start plus its wall time; seconds since the epoch):
    #: what a generated document is dated by, so that the same records make the same file
    newest: float | None = None
    #: what to say instead of tables when no record is shown (:func:`select`)
    empty: str = ""

    @property
    def cells(self) -> list[Cell]:
        return [c for s in self.sections for c in s.cells]

    def unit(self, key: str) -> str:
        return self.metrics.get(key, (None, "number"))[1]

    def plugin(self, key: str) -> str | None:
        return self.metrics.get(key, (None, "number"))[0]

    def groups(self) -> dict[tuple[str, str, str, str], list[Cell]]:
        out: dict[tuple[str, str, str, str], list[Cell]] = {}
        for c in self.cells:
            out.setdefault(c.group, []).append(c)
        return out


# ------------------------------------------------------------------------------------- dataset


def describe_dataset(rec: dict[str, Any]) -> str:
    """One line on what a record's data is: its own description when it carries one, else built
    from the dataset spec (source, content digest, subset, hold-out, split seed)."""
    for holder in (rec, rec.get("dataset_spec") or {}, rec.get("dataset_source") or {}):
        if isinstance(holder, dict):
            for k in ("dataset_description", "description"):
                if isinstance(holder.get(k), str) and holder[k].strip():
                    return holder[k].strip()
    spec = cast("dict[str, Any]", rec.get("dataset_spec") if isinstance(rec.get("dataset_spec"), dict) else {})
    label = str(rec.get("dataset", "?"))
    try:  # the project's one-line data description, where this uebench has it
        from benchmark.data.describe import describe_data
    except ImportError:
        describe_data = None  # type: ignore[assignment]  # the try/except-None idiom
    if describe_data is not None and spec:
        extra = [f"clean hold-out {spec['holdout']}"] if spec.get("holdout") else []
        extra += [f"split seed {spec['split_seed']}"] if spec.get("split_seed") not in (None, 0) else []
        return f"{label}: " + ", ".join([describe_data(spec), *extra])
    parts = []
    source = spec.get("name") or (rec.get("dataset_source") or {}).get("name")
    if source:
        params = {k: v for k, v in (spec.get("params") or {}).items() if k not in ("path", "root", "download")}
        shown = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))  # not `extra` (a list above): one type per name
        parts.append(f"source {source}" + (f" ({shown})" if shown else ""))
    content = spec.get("content") or rec.get("dataset_sha256")
    if content:
        parts.append(f"content sha256 {str(content).removeprefix('sha256:')[:12]}…")
    parts.append(f"training subset {spec['subset']} (class-balanced)" if spec.get("subset") else "full training split")
    parts.append(f"test subset {spec['test_subset']}" if spec.get("test_subset") else "full test split")
    if spec.get("holdout"):
        parts.append(f"clean hold-out {spec['holdout']}")
    if spec.get("split_seed") not in (None, 0):
        parts.append(f"split seed {spec['split_seed']}")
    return f"{label}: " + "; ".join(parts)


# ----------------------------------------------------------------------------------- loading


def _axis_spec(rec: dict[str, Any], axis: str) -> dict[str, Any]:
    spec = rec.get(f"{axis}_spec")
    if not isinstance(spec, dict):
        cell = cast("dict[str, Any]", rec.get("spec") if isinstance(rec.get("spec"), dict) else {})
        spec = cast("dict[str, Any]", cell.get(axis) if isinstance(cell.get(axis), dict) else {})
    params = dict(spec.get("params") or {})
    if axis == "attack":  # another attack seed is another poison, not another seed of the same one
        params["attack_seed"] = rec.get("attack_seed", 0)
    out = {"name": spec.get("name", rec.get(axis)), "version": spec.get("version"), "params": params}
    if spec.get("package"):  # a third-party plugin: another package's plugin of that name is another entry
        out["package"] = spec["package"]
    return out


def _metric_units(rec: dict[str, Any], fallback: Any) -> dict[str, tuple[str | None, str]]:
    """Output key -> (metric plugin, unit) for one ok record: from the record's ``metric_units``,
    else attributed through its metric plugin names and the installed plugins' declared units."""
    out: dict[str, tuple[str | None, str]] = {}
    stored = rec.get("metric_units")
    stored = stored if isinstance(stored, dict) else {}
    plugins = [p for p in rec.get("metric_plugins") or [] if isinstance(p, str)]
    for key in rec.get("metrics") or {}:
        info = stored.get(key)
        if isinstance(info, dict) and isinstance(info.get("unit"), str):
            out[key] = (info.get("metric"), info["unit"])
            continue
        if key in plugins:
            plugin: str | None = key
        else:
            rest = [p for p in plugins if p not in (rec.get("metrics") or {})]
            plugin = rest[0] if len(rest) == 1 else None
        out[key] = (plugin, fallback(plugin, key))
    return out


def _installed_unit(plugin: str | None, key: str) -> str:
    """The unit an installed metric plugin declares for ``key`` (``number`` when unknown)."""
    if key == MAIN_METRIC and plugin in (None, MAIN_METRIC):
        plugin = MAIN_METRIC
    if plugin is None:
        return "number"
    try:
        from benchmark.registry import get_registry

        return str(get_registry().get("metric", plugin).unit_of(key))
    except Exception:  # noqa: BLE001 - not installed here, or a broken plugin: format as a plain number
        return "number"


def _as_float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _finished_at(rec: dict[str, Any], started: float) -> float:
    """When a record's cell finished: its start (``started``) plus its wall time where it has one."""
    wall = _as_float(rec.get("wall_s"))
    return started + (wall if math.isfinite(wall) and wall > 0 else 0.0)


def read_store(root: Path, warn: Callable[[str], None] | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """The records of the results directory ``root`` and, named, the files of its ``cells/`` that
    are not records: moved aside now (with why) or by an earlier run (``*.corrupt``)."""
    from benchmark.store import ResultStore

    store = ResultStore(root, warn=warn)
    records = store.records()
    now = {name for name, _ in store.skipped}
    skipped = [f"{name} ({why}; moved aside as {name}.corrupt)" for name, why in store.skipped]
    skipped += [f"{name} (moved aside earlier)" for name in store.moved_aside() if name.removesuffix(".corrupt") not in now]
    return records, skipped


def other_profiles(records: list[dict[str, Any]], matrices: dict[str, str]) -> list[str]:
    """The profiles, other than the one asked for, at which ``records`` hold cells of the matrices
    ``matrices`` (matrix name -> the profile asked for): where a matrix's cells are when none is
    at its profile (``bench status``, ``bench leaderboard --matrix``)."""
    return sorted({str(r.get("profile")) for r in records
                   if isinstance(r, dict) and r.get("matrix") in matrices and r.get("profile") != matrices[str(r.get("matrix"))]})


def select(records: list[dict[str, Any]], keys: set[str] | None, matrices: dict[str, str] | None = None) -> tuple[list[dict[str, Any]], str]:
    """The records of the cells ``keys`` (every record: ``None``) and, when none is left while
    records of the matrices ``matrices`` (name -> profile asked for) are there at another profile,
    what to say instead of tables (else ``""``)."""
    if keys is None:
        return records, ""
    chosen = [r for r in records if r.get("key") in keys]
    other = other_profiles(records, matrices or {}) if not chosen else []
    if not other:
        return chosen, ""
    asked = ", ".join(sorted(set((matrices or {}).values())))
    names = ", ".join(repr(m) for m in sorted(matrices or {}))
    word = "matrix" if len(matrices or {}) == 1 else "matrices"
    return chosen, (f"No cells of {word} {names} at profile {asked} here; this directory holds its cells at profile "
                    f"{', '.join(other)} (`--profile {other[0]}` shows them).")


def section_ids(keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(dataset label as shown, profile) -> the section's id: its anchor (:mod:`benchmark.report.anchors`),
    never moved by a label added later; ``cifar10 5k`` and ``cifar10-5k`` are never one section."""
    from benchmark.report.anchors import anchors  # (built on this module's slug)

    ids = anchors([tuple(k) for k in keys])
    return {k: ids[tuple(k)] for k in keys}


def load_results(records: list[Any], source: str, skipped: list[str] | None = None) -> Results:
    """Check, name and group ``records`` (the parsed JSON of a results directory's cells);
    ``skipped``: the files of its ``cells/`` that were not records (named in the report)."""
    from benchmark.report.environments import (  # (built on this module's Cell)
        environments,
        numerics,
        poison_generations,
        unconverged_poisons,
    )

    malformed: list[str] = list(skipped or [])
    good: list[dict[str, Any]] = []
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            malformed.append(f"record {i}: not a JSON object ({type(r).__name__})")
        elif not all(isinstance(r.get(a), str) for a in AXES) or not isinstance(r.get("dataset", ""), str):
            malformed.append(f"record {r.get('key', i)}: no attack/victim/defense names")
        else:
            good.append(r)
    status_counts: Counter[str] = Counter()
    metrics: dict[str, tuple[str | None, str]] = {}
    units_cache: dict[tuple[str | None, str], str] = {}

    def fallback(plugin: str | None, key: str) -> str:
        if (plugin, key) not in units_cache:
            units_cache[(plugin, key)] = _installed_unit(plugin, key)
        return units_cache[(plugin, key)]

    # sections: dataset label + profile; the same label on different data gets the content's digest
    by_label: dict[tuple[str, str], set[str]] = {}
    for r in good:
        by_label.setdefault((str(r.get("dataset", "?")), str(r.get("profile", "?"))), set()).add(short_hash(r.get("dataset_spec"), 6))
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}  # (label as shown, profile) -> records
    for r in good:
        label, profile = str(r.get("dataset", "?")), str(r.get("profile", "?"))
        digest = short_hash(r.get("dataset_spec"), 6)
        shown = label if len(by_label[(label, profile)]) == 1 else f"{label} [{digest}]"
        by_key.setdefault((shown, profile), []).append(r)
    sec_ids = section_ids(list(by_key))
    sections: dict[str, Section] = {}
    raw: dict[str, list[dict[str, Any]]] = {}
    for (shown, profile), recs in by_key.items():
        sid = sec_ids[(shown, profile)]
        sections[sid] = Section(id=sid, dataset=shown, profile=profile, description=describe_dataset(recs[0]))
        raw[sid] = recs

    superseded: list[Cell] = []
    envs: Counter[str] = Counter()
    for sid, recs in raw.items():
        sec = sections[sid]
        specs = {id(r): [canonical(_axis_spec(r, axis)) for axis in AXES] for r in recs}
        names = {axis: _names(recs, axis, [specs[id(r)][i] for r in recs]) for i, axis in enumerate(AXES)}
        for r in recs:
            status = cast(str, r.get("status") if r.get("status") in ("ok", "failed", "n/a") else "failed")
            status_counts[status] += 1
            vals = {str(k): _as_float(v) for k, v in (r.get("metrics") or {}).items()} if status == "ok" else {}
            if status == "ok":
                for k, pu in _metric_units(r, fallback).items():
                    metrics.setdefault(k, pu)
            plugins = r.get("metric_plugins")
            ids = {axis: names[axis][specs[id(r)][i]] for i, axis in enumerate(AXES)}
            cell = Cell(
                key=str(r.get("key", "")),
                section=sid,
                attack=ids["attack"] or str(r["attack"]),
                victim=ids["victim"] or str(r["victim"]),
                defense=ids["defense"] or str(r["defense"]),
                seed=r.get("seed") if isinstance(r.get("seed"), int) else None,
                status=status,
                metrics=vals,
                plugins=tuple(plugins) if isinstance(plugins, list) else None,
                error=r.get("error") if status != "ok" else None,
                env=None,
                record=r,
                packages=cell_packages(r),
            )
            if any(v is None for v in ids.values()):
                cell.attack, cell.victim, cell.defense = (str(r[a]) for a in AXES)
                superseded.append(cell)
                continue
            sec.cells.append(cell)
        for axis in AXES:
            plugin = {getattr(c, axis): str(_axis_spec(c.record, axis)["name"]) for c in sec.cells}
            setattr(sec, axis + "s", order(set(plugin), FIRST[axis], plugin))
    measured = [(c, *n) for s in sections.values() for c in s.cells if c.status == "ok" and (n := numerics(c.record)) is not None]
    env_names, compared = environments(measured)
    for c, _, _ in measured:
        c.env = env_names[c.key + "|" + c.section]
        sections[c.section].environments[c.env] += 1
        envs[c.env] += 1
    kept = [s for s in sections.values() if s.cells]
    kept.sort(key=lambda s: (s.dataset, s.profile))
    return Results(
        source=source,
        sections=kept,
        n_records=len(records),
        status_counts=status_counts,
        metrics=metrics,
        superseded=superseded,
        malformed=malformed,
        environments=envs,
        numerics_compared=compared,
        numerics_partial=sum(1 for _, _, full in measured if not full),
        poison_generations=poison_generations([c for s in kept for c in s.cells]),
        unconverged=unconverged_poisons([c for s in kept for c in s.cells]),
        newest=max((t for r in good if math.isfinite(t := _finished_at(r, started_at(r)))), default=None),
    )


def _names(recs: list[dict[str, Any]], axis: str, canon: list[str]) -> dict[str, str | None]:
    """Canonical spec -> the name tables give it (``None``: superseded by a newer version of the
    same plugin under the same label). Specs that share a label get the params that differ.
    ``canon``: the canonical spec of each record, in order."""
    by_label: dict[str, dict[str, dict[str, Any]]] = {}
    for r, c in zip(recs, canon):
        specs = by_label.setdefault(str(r[axis]), {})
        if c not in specs:
            specs[c] = _axis_spec(r, axis)
    out: dict[str, str | None] = {}
    for label, specs in by_label.items():
        newest: dict[Any, Any] = {}  # by plugin: its name and package (another package's is another plugin)
        for s in specs.values():
            plugin = (s["name"], s.get("package"))
            if s["version"] is not None and (plugin not in newest or _version_key(s["version"]) > _version_key(newest[plugin])):
                newest[plugin] = s["version"]
        live = {k: s for k, s in specs.items() if s["version"] is None or s["version"] == newest.get((s["name"], s.get("package")))}
        for k in specs:
            out[k] = None
        if len(live) == 1:
            out[next(iter(live))] = label
            continue
        keys = set().union(*(s["params"] for s in live.values()))
        differing = sorted(k for k in keys if len({canonical(s["params"].get(k)) for s in live.values()}) > 1)
        plugin_names = {s["name"] for s in live.values()}
        packages = {s.get("package") for s in live.values()}
        for k, s in live.items():
            extra = ", ".join(f"{p}={short_value(s['params'].get(p))}" for p in differing)
            name = f"{label}({extra})" if extra else label
            if len(plugin_names) > 1:
                name += f" [{s['name']}]"
            if len(packages) > 1 and s.get("package"):
                name += f" [{s['package']}]"
            out[k] = name
        if len({out[k] for k in live}) < len(live):  # still ambiguous (unhashable params): spec digests
            for k in live:
                out[k] = f"{out[k]} #{short_hash(k, 6)}"
    return out


def short_value(v: Any) -> str:
    """A param's or field's value as a name shows it (``eps=0.03137``)."""
    if isinstance(v, float):
        return f"{v:.4g}"
    return v if isinstance(v, str) else canonical(v)
