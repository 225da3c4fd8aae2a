"""A record's one-cell matrix, rebuilt: what recomputes it (``bench audit``, ``benchmarks/fit_rates.py``).

The dataset, attack, victim, defense and metric specs, the seeds, profile, torch threads and float
precision all come from the record; a dataset file that is not at the recorded path is looked up
by name in the data directories (the cell's key still checks that it holds the same content).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from benchmark.data.torchvision_sets import DATA_ENV  # a directory holding the datasets' files
from benchmark.errors import UserError


def _entry(spec: dict[str, Any], display: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": spec["name"], "params": spec.get("params", {})}
    if display != spec["name"]:
        out["label"] = display
    return out


def _relocate(source: dict[str, Any], data_dirs: list[Path]) -> dict[str, Any]:
    """The record's dataset source params, with a file path that does not exist here looked up by
    its name in ``data_dirs`` (the key still checks that it holds the same content)."""
    params = dict(source.get("params", {}))
    for k in ("path", "root"):
        v = params.get(k)
        if isinstance(v, str) and not Path(v).expanduser().exists():
            for d in data_dirs:
                if (d / Path(v).name).exists():
                    params[k] = str(d / Path(v).name)
                    break
    return params


def data_dirs(extra: str | None = None) -> list[Path]:
    dirs = [Path(extra)] if extra else []
    if os.environ.get(DATA_ENV):
        dirs.append(Path(os.environ[DATA_ENV]))
    dirs.append(Path(__file__).resolve().parents[1].parent / "shared" / "data")  # ../shared/data beside the checkout
    return dirs


def _precision(rec: dict[str, Any]) -> str:
    """The record's own float precision (bf16 autocast or not), whatever the device recomputing it."""
    dtype = (rec.get("numerics") or {}).get("dtype")
    return {"bfloat16-autocast": "bfloat16", "float32": "float32"}.get(str(dtype), "auto")


def rebuild_matrix(rec: dict[str, Any], *, threads: int | None = None, device: str = "cpu",
                   data: list[Path] | None = None) -> dict[str, Any]:
    """The one-cell matrix (a dict for :func:`~benchmark.config.parse_matrix`) that recomputes ``rec``."""
    ds_spec, source = rec["dataset_spec"], rec["dataset_source"]
    dataset = {
        "name": source["name"],
        "label": rec.get("dataset"),
        "subset": ds_spec.get("subset"),
        "test_subset": ds_spec.get("test_subset"),
        "holdout": ds_spec.get("holdout", 0),
        "test_from_train": ds_spec.get("test_from_train", 0),
        "split_seed": ds_spec.get("split_seed", 0),
        **_relocate(source, data or data_dirs()),
    }
    return {
        "name": rec.get("matrix", "audit"),
        "dataset": dataset,
        "profile": rec["profile"],
        "seeds": [rec["seed"]],
        "attack_seed": rec.get("attack_seed", 0),
        "device": device,
        "threads": threads or int(rec.get("provenance", {}).get("threads") or 1),
        "precision": _precision(rec),
        "attacks": [_entry(rec["attack_spec"], rec["attack"])],
        "victims": [_entry(rec["victim_spec"], rec["victim"])],
        "defenses": [_entry(rec["defense_spec"], rec["defense"])],
        "metrics": [{"name": m["name"], "params": m.get("params", {})} for m in rec["metric_specs"]],
    }


def rebuild(rec: dict[str, Any], **kw: Any) -> Any:
    """The resolved one-cell matrix of ``rec``; :class:`UserError` when the installed plugins cannot
    recompute it (another plugin version, another key)."""
    from benchmark.config import parse_matrix, resolve
    from benchmark.plan import make_plan
    from benchmark.registry import get_registry

    m = rebuild_matrix(rec, **kw)
    resolved = resolve(parse_matrix(m, file=f"record {rec['key']}"), get_registry(), file=f"record {rec['key']}")
    for axis, plugin in (("attack", resolved.attacks[0]), ("victim", resolved.victims[0]), ("defense", resolved.defenses[0])):
        want = rec[f"{axis}_spec"].get("version")
        if want != plugin.version:
            raise UserError(f"record {rec['key']}: {axis} {plugin.name!r} is version {want} there, {plugin.version} here")
    plan = make_plan(resolved)
    if plan.cells[0].key != rec["key"]:
        raise UserError(f"record {rec['key']}: the rebuilt cell has key {plan.cells[0].key} (the data or a spec differs here)")
    return resolved
