"""``bench report RESULTS -o DIR``: the whole report of a results directory, as static files.

    DIR/index.html            every table, sortable and filterable; figures; failures
    DIR/style.css             the one stylesheet every page links
    DIR/cells/<group>.html    one page per cell group: metrics per seed, curves, params, provenance, errors
    DIR/tables.md             the same tables as markdown (what LEADERBOARD.md shows)
    DIR/tables.json           the same tables, numbers as numbers (see benchmark.report.exports)
    DIR/tables.csv            the same, one line per table cell; DIR/csv/<table>.csv one file per table
    DIR/cells.csv             one line per record and metric output, raw values
    DIR/figures/*.png         heatmaps, training curves, certification vs eta, galleries, t-SNEs

Figures are redrawn only when what they show changed (``figures/.stamps.json``); galleries and
t-SNEs whose poisons are not in the results directory any more (committed results) are kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmark.report.anchors import anchor
from benchmark.report.exports import cells_csv, table_csv, tables_csv, tables_json
from benchmark.report.figures import (
    certification_data,
    curves_data,
    draw_certification,
    draw_curves,
    draw_heatmap,
    ensure,
    figure_path,
    heatmap_data,
    load_stamps,
    poison_figure_path,
    save_stamps,
)
from benchmark.report.html import CSS, STYLESHEET, group_html, index_html
from benchmark.report.markdown import Figures, render_markdown
from benchmark.report.records import Results, Section, bounded, load_results, read_store, select
from benchmark.report.tables import Table, build_tables, group_page
from benchmark.store import atomic_write_bytes


@dataclass
class Report:
    """What :func:`write_report` wrote."""

    index: Path
    tables: int
    pages: int
    figures: int  # figures shown
    drawn: int  # of which drawn in this run (the others were current)
    seconds: float

    def text(self) -> str:
        return (
            f"{self.index}: {self.tables} tables, {self.pages} cell-group pages, {self.figures} figures "
            f"({self.drawn} drawn, {self.figures - self.drawn} current) in {self.seconds:.1f} s"
        )


def make_figures(
    root: Path, results: Results, tables: dict[str, list[Table]], folder: Path, log: Callable[[str], None], *, poisons: bool = True
) -> tuple[Figures, int]:
    """Draw (or keep) every figure; returns what to show where and how many were drawn."""
    from benchmark.report.poisons import poison_figures

    stamps = load_stamps(folder)
    figs: Figures = {}
    claimed: set[str] = set()
    drawn = 0

    def add(where: str, alt: str, path: Path) -> None:
        claimed.add(path.name)
        figs.setdefault(where, []).append((alt, f"{folder.name}/{path.name}"))

    for sec in results.sections:
        for t in tables[sec.id]:
            if t.kind == "by-victim" or (t.kind == "by-defense" and len(t.columns) > 2):
                png = figure_path(folder, "heatmap", t.id)
                drawn += ensure(png, heatmap_data(t), draw_heatmap, stamps)
                add(t.id, f"{sec.dataset} ({sec.profile}): {t.title.replace('`', '')}, heatmap", png)
        for defense in sec.defenses:
            d = curves_data(results, sec, defense)
            if d is not None:
                png = figure_path(folder, "curves", sec.slug, anchor(defense))
                drawn += ensure(png, d, draw_curves, stamps)
                add(sec.id, f"training curves, defense {defense}", png)
        for defense in sec.defenses:
            d = certification_data(results, sec, defense)
            if d is not None:
                png = figure_path(folder, "certification", sec.slug, anchor(defense))
                drawn += ensure(png, d, draw_certification, stamps)
                add(sec.id, f"certified learnability vs η, defense {defense}", png)
        made, n = poison_figures(root, sec, folder, stamps, log) if poisons else (kept_poison_figures(sec, folder), 0)
        drawn += n
        for kind in ("gallery", "tsne"):
            for k, attack, path in made:
                if k == kind:
                    add(sec.id, f"{'perturbation gallery' if kind == 'gallery' else 't-SNE of perturbations'}: {attack}", path)
    for name in list(stamps):  # figures of entries that are gone
        if name not in claimed:
            (folder / name).unlink(missing_ok=True)
            del stamps[name]
    if stamps:
        save_stamps(folder, stamps)
    return figs, drawn


def kept_poison_figures(sec: Section, folder: Path) -> list[tuple[str, str, Path]]:
    """The galleries and t-SNEs of ``sec`` drawn before (``--no-poisons``: neither drawn nor
    deleted, shown as they are): ``(kind, attack, path)``."""
    return [(kind, attack, path) for attack in sec.attacks for kind in ("gallery", "tsne")
            if (path := poison_figure_path(folder, kind, sec, attack)).exists()]


def _prune(folder: Path, pattern: str, keep: set[str]) -> None:
    if folder.is_dir():
        for p in folder.glob(pattern):
            if p.name not in keep:
                p.unlink(missing_ok=True)


def write_report(
    results: str | Path,
    out: str | Path | None = None,
    *,
    figures: bool = True,
    poisons: bool = True,
    log: Callable[[str], None] = print,
    keys: set[str] | None = None,
    matrices: dict[str, str] | None = None,
) -> Report:
    """Write the report of the results directory ``results`` into ``out`` (default
    ``results/report``). ``figures=False`` writes tables and pages only (existing figures are
    left alone and not shown); ``poisons=False`` draws no galleries or t-SNEs (those drawn before
    stay, shown as they are); ``keys``: only the
    records of these cells (a matrix's, ``matrices``: name -> profile, see :func:`select`)."""
    t0 = time.perf_counter()
    root = Path(results)
    out = Path(out) if out is not None else root / "report"
    records, skipped = read_store(root, warn=log)
    chosen, empty = select(records, keys, matrices)
    res = load_results(chosen, str(root), skipped)
    res.empty = empty
    tables = build_tables(res)
    figs: Figures = {}
    drawn = 0
    if figures:
        figs, drawn = make_figures(root, res, tables, out / "figures", log, poisons=poisons)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "tables.md", render_markdown(res, tables, figs, tool="bench report").encode())
    atomic_write_bytes(out / "tables.json", tables_json(res, tables).encode())
    atomic_write_bytes(out / "tables.csv", tables_csv(tables).encode())
    atomic_write_bytes(out / "cells.csv", cells_csv(res).encode())
    (out / "csv").mkdir(exist_ok=True)
    csvs = set()
    for ts in tables.values():
        for t in ts:
            name = f"{bounded(t.id)}.csv"
            (out / "csv" / name).write_text(table_csv(t))
            csvs.add(name)
    _prune(out / "csv", "*.csv", csvs)
    (out / "cells").mkdir(exist_ok=True)
    pages = set()
    sections = {s.id: s for s in res.sections}
    for (sid, attack, victim, defense), cells in res.groups().items():
        rel = group_page(sid, attack, victim, defense)
        (out / rel).write_text(group_html(res, sections[sid], cells))
        pages.add(Path(rel).name)
    _prune(out / "cells", "*.html", pages)
    exports = [("tables.md", "tables.md"), ("tables.csv", "tables.csv"), ("tables.json", "tables.json"), ("cells.csv", "cells.csv")]
    atomic_write_bytes(out / STYLESHEET, CSS.encode())
    atomic_write_bytes(out / "index.html", index_html(res, tables, figs, exports).encode())
    n_tables = sum(len(ts) for ts in tables.values())
    n_figs = sum(len(v) for v in figs.values())
    return Report(out / "index.html", n_tables, len(pages), n_figs, drawn, time.perf_counter() - t0)
