"""``LEADERBOARD.md``: the markdown of the table model, with one heatmap per victim beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmark.report.anchors import anchor
from benchmark.report.figures import draw_heatmap, ensure, heatmap_data, load_stamps, save_stamps
from benchmark.report.markdown import Figures, render_markdown
from benchmark.report.records import bounded, load_results, read_store, select
from benchmark.report.tables import build_tables
from benchmark.store import atomic_write_bytes


def render(records: list[Any], source: str, figures: dict[tuple[str, str, str], str] | None = None) -> str:
    """The leaderboard markdown for ``records``; ``figures`` maps (dataset, profile, victim) to an
    image path relative to the markdown file (shown after that victim's table)."""
    results = load_results(records, source)
    tables = build_tables(results)
    figs: Figures = {}
    for sec in results.sections:
        for t in tables[sec.id]:
            if t.kind == "by-victim":
                victim = t.about
                path = (figures or {}).get((sec.dataset, sec.profile, victim))
                if path:
                    figs[t.id] = [(f"{sec.dataset} {sec.profile} {victim}", path)]
    return render_markdown(results, tables, figs)


def write_leaderboard(results: str | Path, out: str | Path | None = None, keys: set[str] | None = None,
                      matrices: dict[str, str] | None = None) -> Path:
    """Write ``LEADERBOARD.md`` (default: inside ``results``) with a ``figures/`` folder of
    heatmaps (attacks x defenses, one per victim) beside it, and return its path. Heatmaps whose
    data did not change are not redrawn. ``keys``: only the records of these cells (a matrix's);
    ``matrices``: the matrices they are of (name -> profile), to say at which other profiles
    their cells are when none is at that one."""
    root = Path(results)
    records, skipped = read_store(root)
    records, empty = select(records, keys, matrices)
    path = Path(out) if out else root / "LEADERBOARD.md"
    # a folder name that is not UTF-8 (bytes the file system kept as surrogates) is shown with U+FFFD
    res = load_results(records, str(root).encode("utf-8", "surrogateescape").decode("utf-8", "replace"), skipped)
    res.empty = empty
    tables = build_tables(res)
    folder = path.parent / "figures"
    stamps = load_stamps(folder)
    figs: Figures = {}
    for sec in res.sections:
        for t in tables[sec.id]:
            if t.kind != "by-victim":
                continue
            victim = t.about
            png = folder / f"{bounded(f'{sec.slug}-{anchor(victim)}')}.png"
            ensure(png, heatmap_data(t), draw_heatmap, stamps)
            figs[t.id] = [(f"{sec.dataset} {sec.profile} {victim}", str(png.relative_to(path.parent)))]
    if stamps:
        save_stamps(folder, stamps)
    atomic_write_bytes(path, render_markdown(res, tables, figs).encode())
    return path
