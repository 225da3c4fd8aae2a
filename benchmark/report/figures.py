"""PNG figures from the table model and the records: accuracy heatmaps, training curves (TP
Fig. 4), certification-vs-eta curves (PUE).

Each figure is made in two steps: ``*_data`` gathers exactly what the figure shows (plain JSON
data: its digest decides whether a stored PNG is still current, see :func:`ensure`), ``draw_*``
draws it. Sizes are fixed by the data's shape (:func:`heatmap_size`...), so tests can check them.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import os
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmark.report.anchors import anchor
from benchmark.report.records import Results, Section, bounded, short_hash
from benchmark.report.tables import Table, fmt_number, scale

#: bump to redraw every stored figure once (a change to a ``draw_*`` function's source already does)
FIGURE_VERSION = "1"
STAMPS = ".stamps.json"
DPI = 100


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def ensure(
    path: Path, data: Any, draw: Callable[[Any, Path], None], stamps: dict[str, str], *, payload: Callable[[], Any] | None = None
) -> bool:
    """Draw ``data`` to ``path`` unless ``path`` exists and was drawn from the same data by the
    same figure code (``stamps``: file name -> digest, kept beside the figures in ``.stamps.json``).
    With ``payload``, ``data`` only identifies the figure (e.g. a poison's checksum) and
    ``payload()`` makes what ``draw`` gets, only when it must draw (``None``: cannot; the stored
    figure, if any, stays). Returns whether it drew."""
    digest = short_hash({"v": FIGURE_VERSION, "code": _code(draw), "data": data}, 16)
    if path.exists() and stamps.get(path.name) == digest:
        return False
    arg = payload() if payload is not None else data
    if arg is None:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    # one temporary name per process: two runners finishing together draw the same figure
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    try:
        draw(arg, tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    stamps[path.name] = digest
    return True


def figure_path(folder: Path, kind: str, *names: str) -> Path:
    """``folder/<kind>-<names>.png`` (names already anchors: :mod:`benchmark.report.anchors`),
    bounded in length: a long label never makes a name the file system refuses."""
    return folder / f"{bounded('-'.join([kind, *names]))}.png"


def poison_figure_path(folder: Path, kind: str, sec: Section, attack: str) -> Path:
    """Where the gallery (``kind`` ``gallery``) or t-SNE (``tsne``) of ``attack`` in ``sec`` is."""
    return figure_path(folder, kind, sec.slug, anchor(attack))


@functools.cache
def _code(draw: Callable[[Any, Path], None]) -> str:
    """A digest of the drawing function's source: changing how a figure is drawn redraws it."""
    try:
        return short_hash(inspect.getsource(draw), 12)
    except (OSError, TypeError):
        return draw.__qualname__


def load_stamps(folder: Path) -> dict[str, str]:
    try:
        out = json.loads((folder / STAMPS).read_text())
        return {str(k): str(v) for k, v in out.items()} if isinstance(out, dict) else {}
    except (OSError, ValueError):
        return {}


def save_stamps(folder: Path, stamps: dict[str, str]) -> None:
    from benchmark.store import atomic_write_json

    atomic_write_json(folder / STAMPS, dict(sorted(stamps.items())))


# ------------------------------------------------------------------------------------ heatmaps


def heatmap_size(rows: int, cols: int) -> tuple[int, int]:
    """(width, height) in pixels of a heatmap with ``rows`` x ``cols`` cells."""
    return round((2.2 + 1.0 * cols) * DPI), round((1.3 + 0.42 * rows) * DPI)


def heatmap_data(t: Table) -> dict[str, Any]:
    """The value cells of a table (summary columns left out), means and marks."""
    cols = [c for c in t.columns if c not in t.summary]
    idx = [t.columns.index(c) for c in cols]
    means, marks = [], []
    modal = t.modal_n

    def mark(v: Any) -> str:
        if v.status == "ok" and v.total != modal:
            return f"n={v.total}"  # another seed count than the map's other cells
        if v.status == "partial":  # failed seeds, or finished ones without a value (NaN): told apart
            return f"⚠{v.n}/{v.total}" if v.failed else f"[{v.n}/{v.total}]"
        return {"failed": "✗", "nan": "NaN", "n/a": "n/a"}.get(v.status, "")

    for r in t.rows:
        means.append([None if r.values[i].mean is None else round(r.values[i].mean, 6) for i in idx])  # type: ignore[arg-type]  # not None: tested first
        marks.append([mark(r.values[i]) for i in idx])
    unit = scale(t.unit)[1]
    return {
        "title": f"{t.section.dataset} ({t.section.profile}): {t.title.replace('`', '')}",
        "label": f"{t.metric} {unit}".strip(),
        "percent": unit == "%",
        "unit": t.unit,
        "rows": [r.label for r in t.rows],
        "cols": cols,
        "means": means,
        "marks": marks,
    }


def draw_heatmap(d: dict[str, Any], path: Path) -> None:
    import numpy as np

    plt = _plt()
    rows, cols = d["rows"], d["cols"]
    w, h = heatmap_size(len(rows), len(cols))
    fig, ax = plt.subplots(figsize=(w / DPI, h / DPI), dpi=DPI)
    m = np.array([[np.nan if v is None else v for v in row] for row in d["means"]], dtype=float).reshape(len(rows), len(cols))
    kw = {"vmin": 0, "vmax": 100} if d["percent"] else {}
    cmap = plt.get_cmap("viridis").with_extremes(bad="#dddddd")
    im = ax.imshow(np.ma.masked_invalid(m), cmap=cmap, aspect="auto", **kw)
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    lo, hi = im.get_clim()
    for i in range(len(rows)):
        for j in range(len(cols)):
            v, mark = m[i, j], d["marks"][i][j]
            text = (fmt_number(v, d["unit"]) if not math.isnan(v) else "") + (f" {mark}" if mark else "")
            dark = not math.isnan(v) and (v - lo) < 0.6 * (hi - lo if hi > lo else 1)
            ax.text(j, i, text.strip(), ha="center", va="center", fontsize=7, color="white" if dark else "black")
    ax.set_title(d["title"], fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.04, label=d["label"])
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


# ------------------------------------------------------------------------------ training curves


def _curve(events: list[dict[str, Any]]) -> tuple[str, str, list[tuple[int, float]]]:
    """The curve a cell's training shows: the last phase that has a training accuracy (the
    supervised loop, or the linear probe after pretraining), else the last phase's loss."""
    phases: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        if isinstance(e, dict) and isinstance(e.get("epoch"), int):
            phases.setdefault(str(e.get("phase", "train")), []).append(e)
    with_acc = [p for p, es in phases.items() if any(isinstance(e.get("accuracy"), (int, float)) for e in es)]
    if with_acc:
        p = with_acc[-1]
        return p, "accuracy", [(e["epoch"], 100 * float(e["accuracy"])) for e in phases[p] if isinstance(e.get("accuracy"), (int, float))]
    if phases:
        p = list(phases)[-1]
        return p, "loss", [(e["epoch"], float(e["loss"])) for e in phases[p] if isinstance(e.get("loss"), (int, float))]
    return "", "", []


def curves_data(results: Results, sec: Section, defense: str) -> dict[str, Any] | None:
    """Per attack (one panel), per victim (one line): the mean over seeds of the training curve,
    and the mean final test accuracy. ``None`` when no cell of ``defense`` has curves."""
    from benchmark.report.records import MAIN_METRIC

    factor = scale(results.unit(MAIN_METRIC))[0] if MAIN_METRIC in results.metrics else 100.0
    panels = []
    for attack in sec.attacks:
        lines = []
        for victim in sec.victims:
            cells = [c for c in sec.cells if c.attack == attack and c.victim == victim and c.defense == defense and c.status == "ok"]
            per_epoch: dict[int, list[float]] = {}
            phase = kind = ""
            for c in cells:
                phase, kind, pts = _curve(c.record.get("curves") or [])
                for ep, y in pts:
                    if math.isfinite(y):
                        per_epoch.setdefault(ep, []).append(y)
            if not per_epoch:
                continue
            test = [c.metrics[MAIN_METRIC] * factor for c in cells if math.isfinite(c.metrics.get(MAIN_METRIC, math.nan))]
            eps = sorted(per_epoch)
            lines.append(
                {
                    "victim": victim,
                    "phase": phase,
                    "kind": kind,
                    "x": eps,
                    "y": [round(statistics.fmean(per_epoch[e]), 4) for e in eps],
                    "test": round(statistics.fmean(test), 4) if test else None,
                    "seeds": len(cells),
                }
            )
        if lines:
            panels.append({"attack": attack, "lines": lines})
    if not panels:
        return None
    return {"title": f"{sec.dataset} ({sec.profile}), defense {defense}: training curves (mean over seeds)", "panels": panels}


def grid_shape(n: int, max_cols: int = 4) -> tuple[int, int]:
    cols = min(max_cols, max(1, n))
    return math.ceil(n / cols), cols


def curves_size(panels: int) -> tuple[int, int]:
    r, c = grid_shape(panels)
    return round((1.9 + 2.8 * c) * DPI), round((0.9 + 2.2 * r) * DPI)


def _frame(fig: Any, w: int, h: int, right: float) -> None:
    """Fixed margins in inches (``tight_layout`` costs seconds on a grid of 25 panels)."""
    W, H = w / DPI, h / DPI
    fig.subplots_adjust(left=0.55 / W, right=1 - right / W, top=1 - 0.7 / H, bottom=0.45 / H, wspace=0.35, hspace=0.45)


def draw_curves(d: dict[str, Any], path: Path) -> None:
    from matplotlib.lines import Line2D

    plt = _plt()
    panels = d["panels"]
    nr, nc = grid_shape(len(panels))
    w, h = curves_size(len(panels))
    fig, axes = plt.subplots(nr, nc, figsize=(w / DPI, h / DPI), dpi=DPI, squeeze=False)
    _frame(fig, w, h, 1.7)
    order = list(dict.fromkeys(ln["victim"] for p in panels for ln in p["lines"]))
    colors = {v: plt.get_cmap("tab10")(i % 10) for i, v in enumerate(order)}
    kinds: dict[str, str] = {}
    for ax, p in zip(axes.flat, panels):
        twin = None
        for ln in p["lines"]:
            kinds.setdefault(ln["victim"], f"{ln['phase']}{', loss' if ln['kind'] == 'loss' else ''}")
            mark = "o" if len(ln["x"]) < 12 else None
            if ln["kind"] == "loss":  # a pretraining loss: its own axis, dashed
                twin = twin or ax.twinx()
                twin.plot(ln["x"], ln["y"], color=colors[ln["victim"]], lw=1.1, ls="--", marker=mark, ms=3)
            else:
                ax.plot(ln["x"], ln["y"], color=colors[ln["victim"]], lw=1.3, marker=mark, ms=3)
                if ln["test"] is not None:
                    ax.plot([ln["x"][-1]], [ln["test"]], marker="*", ms=9, color=colors[ln["victim"]], ls="none")
        ax.set_title(p["attack"], fontsize=9)
        ax.set_xlabel("epoch", fontsize=7, labelpad=1)
        ax.set_ylabel("train accuracy %", fontsize=7, labelpad=1)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if twin is not None:
            twin.set_ylabel("loss (dashed)", fontsize=7)
            twin.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    handles = [Line2D([], [], color=colors[v], lw=1.5, ls="--" if kinds[v].endswith("loss") else "-") for v in order]
    handles.append(Line2D([], [], color="black", marker="*", ms=9, ls="none"))
    fig.legend(handles, [f"{v} ({kinds[v]})" for v in order] + ["final clean-test accuracy"], loc="center right", fontsize=7, frameon=False)
    fig.suptitle(d["title"], fontsize=9)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


# ----------------------------------------------------------------------- certification vs eta


def _eta(key: str) -> float | None:
    if not key.startswith("certified@"):
        return None
    try:
        return float(key.split("@", 1)[1])
    except ValueError:
        return None


def certification_data(results: Results, sec: Section, defense: str) -> dict[str, Any] | None:
    """Per victim (one panel), per attack (one line): certified learnability against eta, the mean
    over the seeds that certify; ``all`` says whether every seed certified. An eta where no seed
    certifies (NaN: the certificate abstains) has no point: never a 0."""
    keys = sorted((k for k in results.metrics if _eta(k) is not None), key=lambda k: _eta(k) or 0.0)
    if not keys:
        return None
    factor = scale(results.unit(keys[0]))[0]
    panels = []
    for victim in sec.victims:
        lines = []
        for attack in sec.attacks:
            cells = [c for c in sec.cells if c.attack == attack and c.victim == victim and c.defense == defense and c.status == "ok"]
            pts = []
            for k in keys:
                vals = [c.metrics[k] * factor for c in cells if k in c.metrics]
                if not vals:
                    continue
                finite = [v for v in vals if math.isfinite(v)]
                pts.append({"eta": _eta(k), "mean": round(statistics.fmean(finite), 4) if finite else None, "all": len(finite) == len(vals), "n": len(vals)})
            if pts:
                lines.append({"attack": attack, "points": pts})
        if lines:
            panels.append({"victim": victim, "lines": lines})
    if not panels:
        return None
    return {"title": f"{sec.dataset} ({sec.profile}), defense {defense}: certified learnability vs η", "panels": panels}


def certification_size(panels: int) -> tuple[int, int]:
    r, c = grid_shape(panels, 3)
    return round((2.4 + 3.6 * c) * DPI), round((1.2 + 2.6 * r) * DPI)


def _abstain_strip(ax: Any, rows: int) -> Any:
    """A strip of its own under ``ax`` (sharing its η axis, no value axis) where a cross marks an η
    at which every seed of an attack abstains: apart from the data, so it never reads as a value
    (a cross inside the axes would sit at some height, i.e. some certified learnability)."""
    from mpl_toolkits.axes_grid1 import make_axes_locatable  # type: ignore[import-untyped]  # (ships with matplotlib, untyped)

    strip = make_axes_locatable(ax).append_axes("bottom", size=f"{min(30, 8 + 5 * rows)}%", pad=0.06, sharex=ax)
    strip.set_ylim(-0.7, rows - 0.3)
    strip.set_yticks([])
    strip.set_ylabel("abstain", fontsize=7, rotation=0, ha="right", va="center", labelpad=3)
    strip.set_facecolor("#f3f3f3")
    strip.tick_params(labelsize=7)
    ax.tick_params(labelbottom=False)
    return strip


def draw_certification(d: dict[str, Any], path: Path) -> None:
    from matplotlib.lines import Line2D

    plt = _plt()
    panels = d["panels"]
    nr, nc = grid_shape(len(panels), 3)
    w, h = certification_size(len(panels))
    fig, axes = plt.subplots(nr, nc, figsize=(w / DPI, h / DPI), dpi=DPI, squeeze=False)
    _frame(fig, w, h, 1.9)
    fig.subplots_adjust(top=1 - 0.95 / (h / DPI))
    attacks = list(dict.fromkeys(ln["attack"] for p in panels for ln in p["lines"]))
    cmap = plt.get_cmap("tab10" if len(attacks) <= 10 else "tab20")
    colors = {a: cmap(i % cmap.N) for i, a in enumerate(attacks)}
    for ax, p in zip(axes.flat, panels):
        etas = sorted({pt["eta"] for ln in p["lines"] for pt in ln["points"]})
        if etas and etas[0] > 0 and etas[-1] / etas[0] >= 8:
            ax.set_xscale("log")
            ax.minorticks_off()
        abstaining = [ln["attack"] for ln in p["lines"] if any(pt["mean"] is None for pt in ln["points"])]
        strip = _abstain_strip(ax, len(abstaining)) if abstaining else None
        for ln in p["lines"]:
            c = colors[ln["attack"]]
            # an η where every seed abstains breaks the line (NaN): no value is drawn across it
            ax.plot([pt["eta"] for pt in ln["points"]], [math.nan if pt["mean"] is None else pt["mean"] for pt in ln["points"]], color=c, lw=1.2)
            full = [(pt["eta"], pt["mean"]) for pt in ln["points"] if pt["mean"] is not None and pt["all"]]
            part = [(pt["eta"], pt["mean"]) for pt in ln["points"] if pt["mean"] is not None and not pt["all"]]
            none = [pt["eta"] for pt in ln["points"] if pt["mean"] is None]
            if full:
                ax.plot(*zip(*full), marker="o", ms=4, color=c, ls="none")
            if part:
                ax.plot(*zip(*part), marker="o", ms=5, mfc="white", color=c, ls="none")
            if none and strip is not None:  # abstains: a cross in the strip under the axes, one row per attack
                strip.plot(none, [abstaining.index(ln["attack"])] * len(none), marker="x", ms=5, color=c, ls="none")
        bottom = strip if strip is not None else ax
        bottom.set_xticks(etas, [f"{e:g}" for e in etas], fontsize=7)
        ax.set_title(f"victim {p['victim']}", fontsize=9)
        bottom.set_xlabel("η (L2 radius in parameter space)", fontsize=7, labelpad=1)
        ax.set_ylabel("certified learnability %", fontsize=7, labelpad=1)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    handles = [Line2D([], [], color=colors[a], lw=1.5) for a in attacks]
    fig.legend(handles, attacks, loc="center right", fontsize=7, frameon=False)
    fig.suptitle(d["title"], fontsize=9)
    fig.text(0.5, 1 - 0.5 / (h / DPI), "● every seed certifies   ○ some seeds abstain   × (grey strip) every seed abstains: no value, not 0",
             ha="center", va="top", fontsize=7, color="#444444")
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
