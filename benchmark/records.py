"""Cell records as evidence: the current record of every labelled cell, and seed means.

A results directory that grows over months holds, under one label, records of older specs too: a
plugin whose numbers changed bumps its ``version`` (new keys) and the cells are recomputed, but
the old files stay. Tables, claims and docs must not average the two, nor compare a cell of the
old spec with one of the new. :func:`current` takes, for each component label (the dataset, an
attack with its ``attack_seed``, a victim, a defense; within one dataset label and profile), the
spec of its latest record (``started``, as an instant) as the current one, and keeps the records
whose every component is current; it says how many it left out.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmark.errors import UserError
from benchmark.store import refuse_file

#: metrics stored as fractions and shown in % (points); every other value is shown as stored
PERCENT_METRICS = ("accuracy",)

LABEL = ("dataset", "profile", "attack", "victim", "defense")


def poison_outcomes(meta: dict[str, Any]) -> dict[str, Any]:
    """A poison's discrete outcomes from its ``poison_meta``: integers, flags and strings (outer
    iterations run, stopped or not, the images' digest ``x_sha256``), not cache flags, timings or
    trajectories, nor ``same_as`` (where a copied poison came from: benchmark.same_poison). What a
    float drift on another CPU can flip, and what names a generation."""
    return {k: v for k, v in meta.items() if isinstance(v, (bool, int, str)) and k not in ("kind", "same_as") and "cached" not in k}


SPEC = ("dataset_spec", "attack_spec", "victim_spec", "defense_spec")

#: what names each component's spec in a record: the poison also depends on the attack's seed
COMPONENTS: dict[str, tuple[str, ...]] = {
    "dataset": ("dataset_spec",), "attack": ("attack_spec", "attack_seed"), "victim": ("victim_spec",), "defense": ("defense_spec",),
}


def started_at(rec: dict[str, Any]) -> float:
    """When a record's cell started, in seconds since the epoch (``started`` carries its time zone;
    records from machines in other zones compare as instants); ``-inf`` when it has none."""
    text = str(rec.get("started", ""))
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"):
        try:
            t = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()
    return -math.inf


def holds_records(root: Path) -> bool:
    """Whether ``root`` holds a cell record (a file in its ``cells/``)."""
    try:
        return next((root / "cells").glob("*.json"), None) is not None
    except OSError:
        return False


def record_subdirs(root: Path) -> list[str]:
    """The names of ``root``'s subdirectories that hold cell records, sorted: ``root`` is then a
    folder of results directories (``results/``, which holds ``cifar10-quick/``...), not one."""
    try:
        return sorted(p.name for p in root.iterdir() if p.name != "cells" and p.is_dir() and holds_records(p))
    except OSError:
        return []


#: how many of the subdirectories holding results an error names
SUBDIRS_NAMED = 8


def pass_a_subdir(root: Path, held: str, subdirs: list[str]) -> UserError:
    """The error for a folder of results directories given as one: ``held`` says what ``root``
    holds (``no result records``); the subdirectories that hold results are named."""
    names = [n if n.isprintable() else ascii(n) for n in subdirs[:SUBDIRS_NAMED]]
    more = f" and {len(subdirs) - SUBDIRS_NAMED} more" if len(subdirs) > SUBDIRS_NAMED else ""
    return UserError(f"{str(root)!r} holds {held}; its {'subdirectory' if len(subdirs) == 1 else 'subdirectories'} "
                     f"{', '.join(names)}{more} {'does' if len(subdirs) == 1 else 'do'}: pass one of them "
                     f"(e.g. {str(root / subdirs[0])!r})")


def not_a_folder_of_results(root: Path) -> None:
    """A :class:`UserError` naming the subdirectories that hold records when ``root`` has no
    ``cells/`` folder but they do (``bench leaderboard results`` for ``results/cifar10-quick``);
    else nothing. A ``cells/`` folder, even empty, makes ``root`` a results directory: ``bench run``
    makes it before its first cell (``results/``, the default, in use beside committed results)."""
    if not (root / "cells").is_dir() and (subdirs := record_subdirs(root)):
        raise pass_a_subdir(root, "no result records", subdirs)


READ_ADVICE = "give the directory `bench run --results` wrote"


def results_root(results: str | Path) -> Path:
    """``results`` as a path, or a :class:`UserError` when it holds no results (no ``cells/``
    folder), naming its subdirectories that do hold some (:func:`not_a_folder_of_results`)."""
    root = Path(results)
    refuse_file(root, READ_ADVICE)  # `bench run --results` refuses a file too: no advice to try
    not_a_folder_of_results(root)
    if not (root / "cells").is_dir():
        raise UserError(f"{str(root)!r} holds no results (no cells/ folder); run `bench run MATRIX --results {root}` first")
    return root


def load_records(results: str | Path) -> list[dict[str, Any]]:
    """Every cell record of a results directory (in the current record schema); one that is not a
    usable record is moved aside (the next run recomputes it), with a warning on stderr."""
    import sys

    from benchmark.store import ResultStore

    return ResultStore(results_root(results), warn=lambda m: print(f"warning: {m}", file=sys.stderr)).records()


def _component(rec: dict[str, Any], name: str) -> str:
    return json.dumps([rec.get(k, 0 if k == "attack_seed" else None) for k in COMPONENTS[name]], sort_keys=True, default=str)


@dataclass
class Current:
    """The records :func:`current` kept (status ``ok`` only) and how many of other specs it set aside."""

    records: list[dict[str, Any]]
    superseded: int = 0


def current(records: list[dict[str, Any]]) -> Current:
    """Finished (``ok``) records whose every component has its current spec (see the module
    docstring). Two specs of one label (other params, another version, another attack seed) are two
    settings: claims compare the newest, where the leaderboard shows each as a variant."""
    ok = [r for r in records if r.get("status") == "ok"]
    parts = [[((r.get("dataset"), r.get("profile"), name, r.get(name) if name != "dataset" else None), _component(r, name))
              for name in COMPONENTS] for r in ok]
    times = [started_at(r) for r in ok]
    latest: dict[tuple[Any, ...], dict[str, float]] = defaultdict(dict)
    for t, comps in zip(times, parts):
        for label, spec in comps:
            latest[label][spec] = max(latest[label].get(spec, -math.inf), t)
    best = {label: max(specs, key=lambda s: specs[s]) for label, specs in latest.items()}
    newest: dict[tuple[Any, ...], int] = {}  # one record per cell and seed: a copied file is not another seed
    for i, (r, comps) in enumerate(zip(ok, parts)):
        if all(best[label] == spec for label, spec in comps):
            cell = (*comps, r.get("seed"))
            if cell not in newest or times[i] > times[newest[cell]]:
                newest[cell] = i
    keep = set(newest.values())
    kept = [r for i, r in enumerate(ok) if i in keep]  # in the directory's order
    return Current(kept, len(ok) - len(kept))


def value(rec: dict[str, Any], metric: str) -> float | None:
    """One metric of a record in display units (accuracy in %), ``None`` when it lacks it."""
    v = rec.get("metrics", {}).get(metric)
    if v is None:
        return None
    return float(v) * (100.0 if metric in PERCENT_METRICS else 1.0)


@dataclass
class CellMean:
    """The seed mean of one (attack, victim, defense, metric) cell and what it was computed from."""

    mean: float
    seeds: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.seeds)


def cell_mean(records: list[dict[str, Any]], attack: str, victim: str, defense: str, metric: str,
              seeds: list[int] | None = None) -> CellMean | None:
    """Mean over seeds of ``metric`` in the records of one labelled cell (``None`` if none has it;
    NaN values, e.g. an abstaining certificate, count as missing)."""
    pairs = []
    for r in records:
        if r.get("attack") == attack and r.get("victim") == victim and r.get("defense") == defense:
            if seeds is not None and r.get("seed") not in seeds:
                continue
            v = value(r, metric)
            if v is not None and not math.isnan(v):
                pairs.append((int(r.get("seed", 0)), v))
    if not pairs:
        return None
    pairs.sort()
    vals = [v for _, v in pairs]
    return CellMean(sum(vals) / len(vals), [s for s, _ in pairs], vals)


def groups(records: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Records by (dataset label, profile), sorted."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        out[(str(r.get("dataset")), str(r.get("profile")))].append(r)
    return dict(sorted(out.items()))
