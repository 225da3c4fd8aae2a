"""PNG figures for the leaderboard: one attack x defense heatmap per dataset, profile and victim."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd


def _slug(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(parts)).strip("-")


def heatmaps(df: pd.DataFrame, out_dir: Path, metric: str = "accuracy") -> list[tuple[str, str, str, Path]]:
    """Write one heatmap (mean over seeds, in %) per (dataset, profile, victim); return
    ``(dataset, profile, victim, path)`` for each figure written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    d = df[df.metric == metric]
    for (dataset, profile, victim), g in d.groupby(["dataset", "profile", "victim"], sort=True):
        table = g.groupby(["attack", "defense"])["value"].mean().unstack("defense") * 100
        rows = [a for a in ("clean", "random-noise") if a in table.index] + sorted(a for a in table.index if a not in ("clean", "random-noise"))
        cols = [c for c in ("none",) if c in table.columns] + sorted(c for c in table.columns if c != "none")
        table = table.loc[rows, cols]
        fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(cols), 0.9 + 0.45 * len(rows)))
        im = ax.imshow(table.values, vmin=0, vmax=100, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
        ax.set_yticks(range(len(rows)), rows)
        for i in range(len(rows)):
            for j in range(len(cols)):
                v = table.values[i, j]
                if pd.notna(v):
                    ax.text(j, i, f"{v:.1f}", ha="center", va="center", color="white" if v < 60 else "black", fontsize=8)
        ax.set_title(f"{dataset} ({profile}), victim {victim}: test accuracy %", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.04)
        fig.tight_layout()
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{_slug(dataset, profile, victim)}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append((dataset, profile, victim, path))
    return written
