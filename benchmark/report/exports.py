"""The tables and the records for people who post-process: JSON and CSV, numbers as numbers.

- ``tables.json``: every table of the model, each value with its mean, std, seed counts and status,
  in the table's display scale (``scale`` says which: ``percent`` for accuracy);
- ``tables.csv``: the same, one line per table cell (long form: pivot it as you like);
- ``csv/<table id>.csv``: one file per table in its shown shape (per column: mean, std, n, status; a
  Worst/best column also ``not_run`` and ``of``, set where its value is a lower bound);
- ``cells.csv``: one line per record and metric output, raw values in the metric's declared unit.

Numbers are written at full float precision, never rounded (a tiny value is not ``0.0``).
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from benchmark.report.records import Results
from benchmark.report.tables import Table, Value

SCALES = {"%": "percent", "": "as stored"}


def _num(x: float | None) -> float | None:
    """A value as it is (full precision: ``4e-08`` stays ``4e-08``); ``None`` for NaN and inf."""
    return None if x is None or not math.isfinite(x) else float(x)


def _bound(v: Value) -> list[int | None]:
    """``not_run`` and ``of`` of a Worst/best value over a row with cells never run (a lower bound),
    else blanks."""
    return [v.not_run, v.of] if v.not_run else [None, None]


def value_json(v: Value) -> dict[str, Any]:
    out: dict[str, Any] = {
        "mean": _num(v.mean),
        "std": _num(v.std),
        "n": v.n,
        "total": v.total,
        "failed": v.failed,
        "nan": v.nan,
        "na": v.na,
        "status": v.status,
        "seeds": [{"seed": s, "value": _num(x), "status": st} for s, x, st in v.seeds],
    }
    if v.note:
        out["note"] = v.note
    if v.not_run:  # a Worst/best over a row with cells never run: a lower bound
        out["not_run"], out["of"] = v.not_run, v.of
    if v.href:
        out["page"] = v.href
    return out


def table_json(t: Table) -> dict[str, Any]:
    return {
        "id": t.id,
        "kind": t.kind,
        "title": t.title.replace("`", ""),
        "dataset": t.section.dataset,
        "profile": t.section.profile,
        "dataset_description": t.section.description,
        "metric": t.metric,
        "unit": t.unit,
        "scale": SCALES.get(t.display_unit, t.display_unit),
        "row_name": t.row_name,
        "columns": t.columns,
        "summary_columns": list(t.summary),
        "modal_seeds": t.modal_n,
        "rows": [{"label": r.label, "values": {c: value_json(v) for c, v in zip(t.columns, r.values)}} for r in t.rows],
        **({"packages": [p.replace("`", "") for p in t.packages]} if t.packages else {}),  # built-ins only: no key
    }


def tables_json(results: Results, tables: dict[str, list[Table]]) -> str:
    doc = {
        "source": results.source,
        "records": results.n_records,
        "status": dict(results.status_counts),
        "environments": dict(results.environments),
        "mixed_environments": len(results.environments) > 1,
        "numerics_compared": results.numerics_compared,
        "poison_generations": {k: dict(v) for k, v in results.poison_generations.items()},
        "superseded": len(results.superseded),
        "malformed": results.malformed,
        "metrics": {k: {"metric": p, "unit": u} for k, (p, u) in sorted(results.metrics.items())},
        "tables": [table_json(t) for sec in results.sections for t in tables[sec.id]],
    }
    # no indent: json's C encoder only runs without one (10x faster on 5,000 cells)
    return json.dumps(doc, allow_nan=False, ensure_ascii=False) + "\n"


def _csv(rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for r in rows:
        w.writerow(["" if x is None else x for x in r])
    return buf.getvalue()


def tables_csv(tables: dict[str, list[Table]]) -> str:
    head = ["table", "kind", "dataset", "profile", "metric", "scale", "row", "column", "mean", "std", "n", "total",
            "failed", "nan", "na", "status", "not_run", "of", "note", "page"]
    rows: list[list[Any]] = [head]
    for ts in tables.values():
        for t in ts:
            for r in t.rows:
                for c, v in zip(t.columns, r.values):
                    rows.append([t.id, t.kind, t.section.dataset, t.section.profile, t.metric, SCALES.get(t.display_unit, t.display_unit),
                                 r.label, c, _num(v.mean), _num(v.std), v.n, v.total, v.failed, v.nan, v.na, v.status, *_bound(v),
                                 v.note, v.href])
    return _csv(rows)


def table_csv(t: Table) -> str:
    head = [t.row_name]
    for c in t.columns:
        head += [c, f"{c} std", f"{c} n", f"{c} status"] + ([f"{c} not_run", f"{c} of"] if c in t.summary else [])
    rows: list[list[Any]] = [head]
    for r in t.rows:
        line: list[Any] = [r.label]
        for c, v in zip(t.columns, r.values):
            line += [_num(v.mean), _num(v.std), v.n, v.status + (f" ({v.note})" if v.note else "")]
            line += _bound(v) if c in t.summary else []
        rows.append(line)
    return _csv(rows)


def cells_csv(results: Results) -> str:
    head = ["dataset", "profile", "attack", "victim", "defense", "seed", "status", "metric", "value", "unit", "shown",
            "environment", "key", "error"]
    rows: list[list[Any]] = [head]
    listed = [(c, True) for c in results.cells] + [(c, False) for c in results.superseded]
    for c, shown in listed:
        base = [c.record.get("dataset"), c.record.get("profile"), c.attack, c.victim, c.defense, c.seed, c.status]
        err = (c.error or "").strip().splitlines()[0][:500] if c.error else ""
        if not c.metrics:
            rows.append(base + ["", None, "", shown, c.env or "", c.key, err])
        for k, v in sorted(c.metrics.items()):
            unit = results.unit(k)
            rows.append(base + [k, _num(v), unit, shown, c.env or "", c.key, err])
    return _csv(rows)
