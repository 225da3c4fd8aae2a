"""Numbers in README.md and docs/ come from records: ``bench docs`` rewrites marked blocks.

A block in a markdown file::

    <!-- generated: table rows=attack:clean,em cols=defense:none,iss-jpeg victim=sl metric=accuracy -->
    (anything: replaced)
    <!-- end generated -->

``rows``/``cols`` name an axis (``attack``, ``victim``, ``defense``, ``metric``) and its entries (labels,
as in the leaderboard); every other axis is fixed by ``axis=value`` (defaults: ``victim=sl``,
``defense=none``, ``metric=accuracy``). Cells are seed means (± std over seeds when there are several)
of the current records (:func:`benchmark.records.current`), accuracy in %; ``wall_min`` and
``poison_min`` are the cell's and its poison's recorded minutes, ``victim_min`` the victim's training
in the cell (none when it reused a sibling cell's victim) and ``repair_min`` a model-stage repair;
``poison.KEY`` is the poison's ``poison_meta[KEY]`` (the last entry of a per-epoch list, such as a
generator's final loss: ``poison.classwise_model_loss``). ``results=DIR`` reads another results
directory (default ``results/cifar10-quick``, relative to the repository root). Each table is
captioned with the data it was measured on and the seeds its cells' values are over: the usual count
of its cells, as the leaderboard's captions state it (a cell with another count is marked ``[n=k]``,
:func:`benchmark.report.tables.count_mark`), and which columns are means without a std (the minutes
and ``poison.KEY``). ``<!-- generated: claims -->`` is the claims table.
``<!-- generated: cost matrix=FILE [anchor=NAME] -->`` is the cost model's estimate of running the
matrix file from scratch (:func:`benchmark.cost.estimate_file`), next to a published anchor.
``<!-- generated: speed file=benchmarks/results/X.json -->`` is the speed table of one
``benchmarks/bench.py --json`` (or ``bench_defenses.py --json``) run: uebench against the official loops, cell by cell.
``<!-- generated: plugins -->`` is the table of built-in plugins, from the registry (third-party
plugins installed beside uebench are left out, so the README does not depend on the environment).
``<!-- generated: params kind=attack -->`` is the params table of every built-in plugin of that kind
(type, default, what the ``quick`` and ``smoke`` profiles set, description: what ``bench plugins
NAME`` prints, :mod:`benchmark.describe_plugin`).
``<!-- generated: wall results=DIR -->`` is the wall time of a results directory's run: its first
cell's start to its last cell's finish (a cell's ``started`` plus its ``wall_s``), with the machine
and executor the records name.
A block with no record yet says "not measured yet". ``bench docs --check`` exits 1 when a block is stale.
"""

from __future__ import annotations

import math
import re
import shlex
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.errors import UserError
from benchmark.records import current, value

DEFAULT_RESULTS = "results/cifar10-quick"
AXES = ("attack", "victim", "defense", "metric")
FIXED_DEFAULTS = {"victim": "sl", "defense": "none", "metric": "accuracy"}
BLOCK = re.compile(r"(<!-- generated: (?P<spec>[^>]*?) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.DOTALL)
PSEUDO = {"wall_min", "poison_min", "victim_min", "repair_min"}
KINDS = ("table", "claims", "cost", "speed", "plugins", "params", "wall")


def doc_files(root: Path) -> list[Path]:
    """README.md and every markdown file under docs/."""
    return [p for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))] if p.is_file()]


@dataclass
class Spec:
    """One ``<!-- generated: KIND key=value ... -->`` marker of a docs file: the block to generate there."""
    kind: str
    opts: dict[str, str]

    @classmethod
    def parse(cls, text: str, where: str) -> Spec:
        try:
            words = shlex.split(text)
        except ValueError as e:
            raise UserError(f"{where}: cannot read the generated-block marker {text!r}: {e}") from None
        if not words or words[0] not in KINDS:
            raise UserError(f"{where}: a generated block is one of {', '.join(KINDS)}, found {text!r}")
        opts = {}
        for w in words[1:]:
            if "=" not in w:
                raise UserError(f"{where}: {w!r} in {text!r} is not key=value")
            k, v = w.split("=", 1)
            opts[k] = v
        return cls(words[0], opts)


def _axis(spec: str, where: str) -> tuple[str, list[str]]:
    if ":" not in spec:
        raise UserError(f"{where}: rows/cols take axis:entry,entry (got {spec!r})")
    axis, entries = spec.split(":", 1)
    if axis not in AXES:
        raise UserError(f"{where}: unknown axis {axis!r} (allowed: {', '.join(AXES)})")
    return axis, [e for e in entries.split(",") if e]


def _cell_values(records: list[dict[str, Any]], sel: dict[str, str]) -> list[tuple[int, float]]:
    """(seed, value) of each record of the cell ``sel`` names that has a value of its metric."""
    out = []
    for r in records:
        if all(r.get(k) == sel[k] for k in ("attack", "victim", "defense")):
            m = sel["metric"]
            if m == "wall_min":
                v: float | None = float(r.get("wall_s", 0)) / 60
            elif m == "poison_min":
                v = float(r.get("poison_meta", {}).get("wall_s", 0)) / 60
            elif m.startswith("poison."):
                v = _poison_meta(r, m.removeprefix("poison."))
            elif m in ("victim_min", "repair_min"):
                t = r.get("timing") or {}
                s = t.get(m.replace("_min", "_s"))
                v = None if s is None or (m == "victim_min" and t.get("victim_reused")) else float(s) / 60
            else:
                v = value(r, m)
            if v is not None and not math.isnan(v):
                out.append((int(r.get("seed", 0)), v))
    return out


def _poison_meta(record: dict[str, Any], key: str) -> float | None:
    """``poison_meta[key]`` of a record as a number: the last entry of a list; ``None`` when absent."""
    v = (record.get("poison_meta") or {}).get(key)
    if isinstance(v, list):
        v = v[-1] if v else None
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _no_std(metric: str) -> bool:
    """Whether a cell of ``metric`` shows its seed mean without a std: the minutes and ``poison.KEY``."""
    return metric in PSEUDO or metric.startswith("poison.")


def _fmt(vals: list[float], metric: str, unit: str = "percent", modal: int | None = None) -> str:
    """Seed mean (± std): one decimal for percentages and minutes, two for plain numbers (UD); a
    ``poison.KEY`` (one poison, whatever the seed) its mean to three decimals; `` [n=k]`` after it
    when its ``k`` seeds are not the table's usual ``modal`` count (as in the leaderboard)."""
    from benchmark.report.tables import count_mark

    if not vals:
        return "–"
    mark = count_mark(len(vals), len(vals) if modal is None else modal)
    mean = statistics.fmean(vals)
    if metric.startswith("poison."):
        return f"{mean:.3f}{mark}"
    d = 2 if unit == "number" and metric not in PSEUDO else 1
    if _no_std(metric) or len(vals) == 1:
        return f"{mean:.{d}f}{mark}"
    return f"{mean:.{d}f} ± {statistics.stdev(vals):.{d}f}{mark}"


def _unit(records: list[dict[str, Any]], metric: str) -> str:
    """The metric output's declared unit in the records (``percent`` when none says)."""
    for r in records:
        u = (r.get("metric_units") or {}).get(metric)
        if isinstance(u, dict) and u.get("unit"):
            return str(u["unit"])
    return "percent"


def _over(cells: list[tuple[str, list[int]]]) -> str:
    """What the values of ``cells`` (each a metric and the seeds of its values, as many in every
    cell) are: ``mean ± std over seeds 0, 1``, ``mean over seeds 0, 1, no std`` (the minutes and
    ``poison.KEY``; both kinds: these named), ``the value of seed 0``; ``2 seeds`` when the cells'
    seeds differ."""
    n = len(cells[0][1])
    sets = {tuple(sorted(s)) for _, s in cells}
    seeds = (f"seed{'s' if n > 1 else ''} {', '.join(map(str, sets.pop()))}" if len(sets) == 1
             else f"{n} seeds" if n > 1 else "one seed")
    if n == 1:
        return f"the value of {seeds}"
    plain = list(dict.fromkeys(m for m, _ in cells if _no_std(m)))
    if not plain:
        return f"mean ± std over {seeds}"
    if len(plain) == len({m for m, _ in cells}):
        return f"mean over {seeds}, no std"
    return f"mean ± std over {seeds} ({', '.join(f'`{m}`' for m in plain)}: mean, no std)"


def _caption(records: list[dict[str, Any]], results: str, cells: list[tuple[str, list[int]]]) -> str:
    """The data and profile of ``records``, what the table's ``cells`` (metric, seeds of its values;
    those with a value) are over: the usual count (:func:`benchmark.report.tables.modal_count`), and
    the cells with another, marked ``[n=k]`` (with what they are over when they share their seeds)."""
    from benchmark.data.describe import describe_data
    from benchmark.report.captions import another_count
    from benchmark.report.tables import modal_count

    datas = sorted({describe_data(r.get("dataset_spec")) for r in records})
    profiles = sorted({str(r.get("profile")) for r in records})
    n = modal_count(len(s) for _, s in cells)
    text = _over([c for c in cells if len(c[1]) == n])
    other = [c for c in cells if len(c[1]) != n]
    if other:
        text += f"; {another_count(len(other))}"
        if len({tuple(sorted(s)) for _, s in other}) == 1:
            text += f" ({_over(other)})"
    return (f"_{'; '.join(datas)}; profile {', '.join(profiles)}; {text}. "
            f"Generated from `{results}` by `bench docs`._")


def render_table(spec: Spec, root: Path, where: str) -> str:
    o = dict(spec.opts)
    results = o.pop("results", DEFAULT_RESULTS)
    if "rows" not in o or "cols" not in o:
        raise UserError(f"{where}: a table needs rows=axis:... and cols=axis:...")
    raxis, rows = _axis(o.pop("rows"), where)
    caxis, cols = _axis(o.pop("cols"), where)
    fixed = {**FIXED_DEFAULTS, **{k: v for k, v in o.items() if k in AXES}}
    unknown = [k for k in o if k not in AXES]
    if unknown:
        raise UserError(f"{where}: unknown option {unknown[0]!r} (allowed: rows, cols, results, {', '.join(AXES)})")
    from benchmark.report.tables import modal_count

    recs = _load(root / results)
    used: list[dict[str, Any]] = []
    grid: list[list[tuple[str, list[tuple[int, float]], str]]] = []  # per row, per column: metric, (seed, value)s, unit
    for r in rows:
        grid.append([])
        for c in cols:
            sel = {**fixed, raxis: r, caxis: c}
            vals = _cell_values(recs, sel)
            here = [x for x in recs if all(x.get(k) == sel[k] for k in ("attack", "victim", "defense"))]
            if vals:
                used += here
            grid[-1].append((sel["metric"], vals, _unit(here, sel["metric"])))
    if not used:
        return f"_Not measured yet: no record in `{results}` for this table._\n"
    counted = [(m, [s for s, _ in vals]) for row in grid for m, vals, _ in row if vals]
    modal = modal_count(len(s) for _, s in counted)
    lines = [f"| {raxis} | " + " | ".join(cols) + " |", "| --- | " + " | ".join("---:" for _ in cols) + " |"]
    for r, row in zip(rows, grid):
        lines.append(f"| {r} | " + " | ".join(_fmt([v for _, v in vals], m, unit, modal) for m, vals, unit in row) + " |")
    return "\n".join(lines) + "\n\n" + _caption(used, results, counted) + "\n"


def render_cost(spec: Spec, root: Path, where: str) -> str:
    from benchmark.cost import estimate_file, render_markdown

    unknown = [k for k in spec.opts if k not in ("matrix", "anchor")]
    if "matrix" not in spec.opts or unknown:
        raise UserError(f"{where}: a cost block takes matrix=FILE [anchor=NAME]")
    return render_markdown(estimate_file(root / spec.opts["matrix"]), spec.opts.get("anchor"))


def render_speed(spec: Spec, root: Path, where: str) -> str:
    import json

    if set(spec.opts) != {"file"}:
        raise UserError(f"{where}: a speed block takes file=benchmarks/results/NAME.json")
    path = root / spec.opts["file"]
    try:
        run = json.loads(path.read_text())
        meta, results = run["meta"], run["results"]
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"{where}: cannot read the benchmark results {spec.opts['file']!r}: {e}") from None
    precision = (meta.get("args") or {}).get("precision", "auto")
    # uebench's side in each precision the run timed (bench.py --precision float32,bfloat16), else one column
    sides = [p.strip() for p in str(precision).split(",") if p.strip()] or ["auto"]
    rows: dict[str, dict[str, dict[str, Any]]] = {}  # cell -> side (reference, or uebench's precision) -> result
    for r in results:
        side = r["impl"] if r["impl"] != "uebench" else ((r.get("extra") or {}).get("precision") or sides[0])
        rows.setdefault(r["cell"], {})[side] = r
    if len(sides) == 1:
        head = "| hot path | uebench | official loop | speed-up |\n| --- | ---: | ---: | ---: |"
    else:
        head = ("| hot path | " + " | ".join(f"uebench, {p}" for p in sides) + " | official loop | "
                + " | ".join(f"speed-up, {p}" for p in sides) + " |\n| --- |" + " ---: |" * (2 * len(sides) + 1))
    lines = [head]
    for cell, by in rows.items():
        ours = [by.get(p) for p in sides]
        if all(o is None for o in ours):
            continue
        ref = by.get("reference")
        unit = next(o for o in ours if o is not None)["unit"]
        rates = [f"{o['rate']:,.0f} {unit}" if o else "–" for o in ours]
        ups = [f"{o['rate'] / ref['rate']:.1f}x" if o and ref else "–" for o in ours]
        ref_rate = f"{ref['rate']:,.0f}" if ref else "–"
        lines.append(f"| {cell} | " + " | ".join(rates) + f" | {ref_rate} | " + " | ".join(ups) + " |")
    threads = meta.get("torch_threads", "?")
    bf16 = f" with {meta['cpu_bf16']}" if meta.get("cpu_bf16") else ""
    device = meta.get("cuda") or f"{meta.get('cpu', '?')}{bf16}, {threads} thread{'' if threads == 1 else 's'}"
    if sides != ["auto"]:  # bench.py --precision: uebench's side only; the official loops run float32
        device += f", uebench in precision {' and '.join(sides)}, the official loops in float32"
    return ("\n".join(lines) + f"\n\n_{device}, torch {meta.get('torch', '?')}, commit {meta.get('commit', '?')}; "
            f"`{spec.opts['file']}`, written by a `benchmarks/` script's `--json` (settings: benchmarks/README.md). Generated by `bench docs`._\n")


PLUGIN_ROWS = (("attack", "attacks", "docs/attacks.md"), ("victim", "victims", "docs/victims.md"),
               ("defense", "defenses", "docs/defenses.md"), ("metric", "metrics", "docs/metrics.md"),
               ("dataset", "datasets", "docs/datasets.md"), ("executor", "executors", "#on-a-slurm-cluster"),
               ("model", "architectures", ""))
STAGE_WORDS = {"none": "", "data": "data stage", "train": "train stage", "model": "model stage (repair with the clean `dataset.holdout`)"}


def render_plugins(spec: Spec, root: Path, where: str) -> str:
    from benchmark.registry import get_registry

    if spec.opts:
        raise UserError(f"{where}: a plugins block takes no options")
    reg = get_registry()

    def names(kind: str) -> list[str]:
        return [n for n in reg.names(kind) if reg.entry(kind, n).package == "uebench"]

    lines = ["| kind | built-in | docs |", "| --- | --- | --- |"]
    for kind, title, doc in PLUGIN_ROWS:
        got = names(kind)
        if kind == "defense":
            groups = []
            for stage, word in STAGE_WORDS.items():
                members = [n for n in got if reg.get(kind, n).stage == stage]
                notes = {reg.get(kind, n).applies_note.split(":")[0] for n in members}
                note = f" ({notes.pop()})" if len(notes) == 1 and "" not in notes else ""
                if members:
                    groups.append((f"{word}{note}: " if word else "") + ", ".join(f"`{n}`" for n in members))
            text = "; ".join(groups)
        else:
            text = ", ".join(f"`{n}`" for n in got) + (", `timm/<name>`" if kind == "model" else "")
        link = f"[{doc}]({doc})" if doc.endswith(".md") else ("[On a SLURM cluster](#on-a-slurm-cluster)" if doc else "")
        lines.append(f"| {title} | {text} | {link} |")
    return "\n".join(lines) + ("\n\n_Generated from the plugin registry by `bench docs`; `bench plugins` lists what is installed, "
                               "third-party packages included; `bench plugins NAME` prints one plugin's paper, version and "
                               "params (type, default, what `quick` and `smoke` set), as each kind's page does under \"Params\"._\n")


def render_params(spec: Spec, root: Path, where: str) -> str:
    from benchmark.describe_plugin import render_kind_markdown
    from benchmark.registry import KINDS as PLUGIN_KINDS
    from benchmark.registry import get_registry

    kind = spec.opts.get("kind")
    if set(spec.opts) != {"kind"} or kind not in PLUGIN_KINDS:
        raise UserError(f"{where}: a params block takes kind=KIND ({', '.join(PLUGIN_KINDS)})")
    return render_kind_markdown(get_registry(), kind)


def _span(records: list[dict[str, Any]]) -> tuple[float, float]:
    """First start and last finish (a record's ``started`` plus its ``wall_s``), seconds since the epoch."""
    from benchmark.records import started_at

    timed = [r for r in records if math.isfinite(started_at(r))]
    return (min(started_at(r) for r in timed), max(started_at(r) + float(r.get("wall_s") or 0) for r in timed)) if timed else (math.nan, math.nan)


def _overlapping(root: Path, results: str, first: float, last: float, like: dict[str, Any]) -> tuple[dict[str, int], float]:
    """Cells of the other results directories under ``results/`` recorded on the same host name and
    CPU model as ``like`` while ``[first, last]`` ran: cells per directory (each key once), and the
    share of ``[first, last]`` they cover."""
    from benchmark.records import load_records, started_at

    prov = like.get("provenance") or {}
    here = (root / results).resolve()
    seen: dict[str, tuple[str, float, float]] = {}
    for cells in sorted((root / "results").glob("*/cells")):
        if cells.parent.resolve() == here:
            continue
        for r in load_records(cells.parent):
            p = r.get("provenance") or {}
            if (p.get("host"), p.get("device_name")) != (prov.get("host"), prov.get("device_name")):
                continue
            a = started_at(r)
            b = a + float(r.get("wall_s") or 0)
            if a < last and b > first:
                seen.setdefault(str(r.get("key")), (cells.parent.name, max(a, first), min(b, last)))
    per: dict[str, int] = {}
    for d, _, _ in seen.values():
        per[d] = per.get(d, 0) + 1
    covered, end = 0.0, first
    for _, a, b in sorted(seen.values(), key=lambda t: t[1]):
        if b > end:
            covered += b - max(a, end)
            end = b
    return per, covered / (last - first) if last > first else 0.0


def render_wall(spec: Spec, root: Path, where: str) -> str:
    from datetime import UTC, datetime

    unknown = [k for k in spec.opts if k not in ("results", "matrix")]
    if "results" not in spec.opts or unknown:
        raise UserError(f"{where}: a wall block takes results=DIR [matrix=FILE]")
    results = spec.opts["results"]
    recs = _load(root / results)
    first, last = _span(recs)
    if not recs or not math.isfinite(first):
        return f"_Not measured yet: no timed record in `{results}`._\n"

    def clock(t: float, date: bool = False) -> str:
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S")

    def span(xs: list[float]) -> str:
        lo, hi = min(xs), max(xs)
        return f"{lo:.0f} s" if round(lo) == round(hi) else f"{lo:.0f}–{hi:.0f} s"

    r0 = recs[0]
    prov = r0.get("provenance") or {}
    execs = {str((r.get("executor") or {}).get("name", "inline")) for r in recs}
    workers = len({(r.get("executor") or {}).get("worker") for r in recs}) if execs == {"local"} else 1
    threads = sorted({t if isinstance(t := (r.get("provenance") or {}).get("threads"), int) and t > 0 else 1 for r in recs})
    how = (f"{', '.join(sorted(execs))} executor, {workers} worker{'s' if workers > 1 else ''} × "
           f"{'/'.join(map(str, threads))} torch thread{'s' if threads != [1] else ''}")
    minutes = (last - first) / 60
    text = (f"`{results}`: {len(recs)} cells in **{minutes:.1f} min** from the first cell's start to the last one's "
            f"finish ({clock(first, True)} → {clock(last)} UTC) on {prov.get('device_name', '?')}, {how}. "
            f"A cell took {span([float(r.get('wall_s') or 0) for r in recs])}")
    victims = [float((r.get("timing") or {})["victim_s"]) for r in recs if (r.get("timing") or {}).get("victim_s") is not None]
    if victims:
        text += f" (its victim's training {span(victims)})"
    poisons: dict[str, float] = {}
    for r in recs:
        s = (r.get("poison_meta") or {}).get("wall_s")
        if isinstance(s, (int, float)) and s >= 1:
            poisons[str(r.get("attack"))] = float(s)
    text += "".join(f", the {a} poison {s:.0f} s" for a, s in sorted(poisons.items())) + "."
    if "matrix" in spec.opts:
        from benchmark.cost import estimate_file

        fe = estimate_file(root / spec.opts["matrix"])
        est = fe.estimate
        wall = est.wall_hours("cpu", workers) * 60 if "cpu" in est.devices else 0.0
        if wall > 0:  # a model that prices nothing (rates unknown) has no ratio to give
            cells = [s for _, s in est.cell_s["cpu"]]
            priced = "".join(f", the {a} poison {secs['cpu']:.0f} s" for a, secs in sorted(fe.poison_by_attack.items())
                             if secs.get("cpu", 0) >= 1)
            text += (f" The cost model (`bench run {spec.opts['matrix']} --dry-run`, row `cpu`) prices it at "
                     f"{wall:.1f} min on {workers} worker{'s' if workers > 1 else ''} (a cell {span(cells)}{priced}): "
                     f"this run took {minutes / wall:.1f}x that.")
    per, share = _overlapping(root, results, first, last, r0)
    if per:
        n = sum(per.values())
        text += (f" It shared the machine: {n} cell{'s' if n > 1 else ''} of other results directories, recorded on the "
                 f"same host name and CPU model ({', '.join(f'`results/{d}`: {k}' for d, k in sorted(per.items()))}), "
                 f"{'were' if n > 1 else 'was'} running during {share:.0%} of it.")
    return "_" + text + " Generated from the records by `bench docs`._\n"


def render_claims(spec: Spec, root: Path, where: str) -> str:
    from benchmark.claims import FAILS, HOLDS, NOT_MEASURED, check_all, load_claims

    results = spec.opts.get("results", DEFAULT_RESULTS)
    report = check_all(load_claims(spec.opts.get("claims")), _load(root / results, missing_ok=True))
    lines = ["| claim | measured | result |", "| --- | --- | --- |"]
    for _, _, res in report.sections:
        for r in res:
            status = {HOLDS: "holds", NOT_MEASURED: "not measured yet"}.get(r.status, "**fails**")
            measured = "–" if r.status == NOT_MEASURED else r.measured_text().replace("|", "\\|")
            lines.append(f"| **{r.claim.id}**: {r.claim.statement} | {measured} | {status} |")
    c = report.counts()
    return "\n".join(lines) + f"\n\n_{c[HOLDS]} hold, {c[FAILS]} fail, {c[NOT_MEASURED]} not measured yet. Generated from `{results}` by `bench docs`; sources and conditions in `{results}/CLAIMS.md`._\n"


_cache: dict[Path, list[dict[str, Any]]] = {}


def _load(path: Path, missing_ok: bool = True) -> list[dict[str, Any]]:
    from benchmark.records import load_records

    if path not in _cache:
        if not (path / "cells").is_dir():
            if not missing_ok:
                raise UserError(f"{str(path)!r} holds no results")
            _cache[path] = []
        else:
            _cache[path] = current(load_records(path)).records
    return _cache[path]


def regenerate(text: str, root: Path, where: str) -> str:
    """``text`` with every generated block rewritten."""

    def sub(m: re.Match[str]) -> str:
        spec = Spec.parse(m.group("spec"), where)
        render = {"table": render_table, "claims": render_claims, "cost": render_cost, "speed": render_speed,
                  "plugins": render_plugins, "params": render_params, "wall": render_wall}[spec.kind]
        body = render(spec, root, where)
        return m.group(1) + body + m.group(4)

    return BLOCK.sub(sub, text)


def update_docs(root: str | Path = ".", check: bool = False) -> list[Path]:
    """Rewrite (or, with ``check``, only compare) every generated block; return the files that changed
    (or would change)."""
    root = Path(root)
    _cache.clear()
    changed = []
    for path in doc_files(root):
        text = path.read_text()
        new = regenerate(text, root, str(path.relative_to(root)))
        if new != text:
            changed.append(path)
            if not check:
                path.write_text(new)
    return changed
