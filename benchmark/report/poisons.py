"""Figures of the poisons themselves, from the artifacts a matrix left in its results directory:

- a **gallery** per attack (TP paper, Fig. 6): one training image per class, as clean image, its
  perturbation amplified to the full grey range, and the released poisoned image;
- a **t-SNE of perturbations** per attack (TP paper, Fig. 5): a few hundred released perturbations
  ``poison - clean`` (class-balanced, fixed seed), PCA to 50 dimensions, then t-SNE, coloured by class.

Both need the poison (``artifacts/<key>/data.pt``, checksummed) and the clean training split with
its labels, which is rebuilt from the record's dataset source and checked against the record's
``dataset_sha256``. Committed results have no artifacts: then a figure drawn earlier stays as it
is (its stamp names the poison it was drawn from), so regenerating a report without artifacts
never loses the galleries.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchmark.data.dataset import ImageDataset
from benchmark.report.figures import DPI, _code, _plt, ensure, poison_figure_path
from benchmark.report.records import Cell, Section

#: perturbations per t-SNE
TSNE_POINTS = 500
#: classes shown in a gallery (the first ones)
GALLERY_CLASSES = 10


def clean_train(rec: dict[str, Any], log: Callable[[str], None]) -> ImageDataset | None:
    """The clean training split a record's poison was made from, or ``None`` (with a log line)
    when it cannot be rebuilt here or is not the same data."""
    from benchmark.data.dataset import data_checksum
    from benchmark.data.split import make_splits
    from benchmark.registry import get_registry

    src, spec = rec.get("dataset_source"), rec.get("dataset_spec")
    if not isinstance(src, dict) or not isinstance(spec, dict):
        log(f"{rec.get('dataset')}: the records do not say where their data came from; no gallery or t-SNE")
        return None
    try:
        cls = get_registry().get("dataset", src["name"])
        train, test = cls(cls.Params(**(src.get("params") or {}))).load()
    except Exception as e:  # noqa: BLE001 - missing files, a plugin not installed here
        log(f"{rec.get('dataset')}: cannot load the clean data ({type(e).__name__}: {e}); no gallery or t-SNE")
        return None
    want = rec.get("dataset_sha256")
    if want and data_checksum(train, test) != want:
        log(f"{rec.get('dataset')}: the data at {src.get('params')} is not the data the records were computed on; no gallery or t-SNE")
        return None
    splits = make_splits(train, test, subset=spec.get("subset"), test_subset=spec.get("test_subset"),
                         holdout=spec.get("holdout") or 0, test_from_train=spec.get("test_from_train") or 0,
                         seed=spec.get("split_seed") or 0)
    return splits.train


def _poison_key(cells: list[Cell]) -> str | None:
    keys = sorted({c.record["spec"]["poison"] for c in cells if isinstance(c.record.get("spec"), dict) and c.record["spec"].get("poison")})
    return keys[0] if keys else None


def _artifact_sha(root: Path, key: str) -> str | None:
    try:
        meta = json.loads((root / "artifacts" / key / "meta.json").read_text())
        return str(meta["sha256"]) if (root / "artifacts" / key / "data.pt").exists() else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _class_indices(y: torch.Tensor, per_class: int, seed: int = 0) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    out: list[int] = []
    for k in torch.unique(y).tolist():
        idx = torch.nonzero(y == k).flatten()
        out += idx[torch.randperm(len(idx), generator=g)[:per_class]].tolist()
    return sorted(out)


def gallery_size(classes: int) -> tuple[int, int]:
    return round((1.1 + 1.05 * classes) * DPI), round(3.9 * DPI)


def gallery_data(clean: ImageDataset, poison: torch.Tensor, title: str) -> dict[str, Any] | None:
    k = min(GALLERY_CLASSES, clean.num_classes)
    idx = [int(torch.nonzero(clean.y == c).flatten()[0]) for c in range(k) if bool((clean.y == c).any())]
    noise = poison.int() - clean.x.int()
    m = int(noise.abs().max())
    if m == 0:  # no perturbation (the clean attack): nothing to show
        return None
    return {
        "title": title,
        "classes": [clean.classes[int(clean.y[i])] for i in idx],
        "clean": clean.x[idx].numpy(),
        "noise": (0.5 + noise[idx].float() / (2 * m)).clamp(0, 1).numpy(),
        "poison": poison[idx].numpy(),
        "amplify": 255 / (2 * m),
        "linf": m,
    }


def _times(a: float) -> str:
    """An amplification for a row label: whole above 1 (``16``), two digits below (``0.5``: OPS)."""
    return f"{a:.0f}" if a >= 1 else f"{a:.2g}"


def draw_gallery(d: dict[str, Any], path: Path) -> None:
    """One composed image (rows: clean, amplified noise, poisoned; one column per class), drawn
    with a single ``imshow``: 30 small axes take seconds, one takes a tenth."""
    import numpy as np

    plt = _plt()
    k = len(d["classes"])
    rows = [("clean", d["clean"] / 255.0), (f"noise ×{_times(d['amplify'])}", d["noise"]), ("poisoned", d["poison"] / 255.0)]
    c, hh, ww = d["clean"].shape[1:]
    gap = max(1, hh // 8)
    grid = np.ones((3 * hh + 2 * gap, k * ww + (k - 1) * gap, 3))
    for i, (_, imgs) in enumerate(rows):
        for j in range(k):
            tile = np.asarray(imgs[j], dtype=float).transpose(1, 2, 0)
            grid[i * (hh + gap) : i * (hh + gap) + hh, j * (ww + gap) : j * (ww + gap) + ww] = tile if c == 3 else tile[..., :1]
    w, h = gallery_size(k)
    fig, ax = plt.subplots(figsize=(w / DPI, h / DPI), dpi=DPI)
    ax.imshow(grid, interpolation="nearest", vmin=0, vmax=1)
    ax.set_xticks([j * (ww + gap) + ww / 2 for j in range(k)], [str(x)[:10] for x in d["classes"]], fontsize=8)
    ax.xaxis.tick_top()
    ax.set_yticks([i * (hh + gap) + hh / 2 for i in range(3)], [name for name, _ in rows], fontsize=8)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(f"{d['title']}  (L∞ of the released noise: {d['linf']}/255)", fontsize=9, pad=18)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


TSNE_SIZE = (600, 520)


def tsne_data(clean: ImageDataset, poison: torch.Tensor, title: str) -> dict[str, Any] | None:
    """2-D t-SNE of up to :data:`TSNE_POINTS` released perturbations; ``None`` if they are all zero."""
    import numpy as np
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    per = max(1, TSNE_POINTS // max(1, clean.num_classes))
    idx = _class_indices(clean.y, per)
    x = (poison[idx].int() - clean.x[idx].int()).flatten(1).float().numpy()
    if not np.any(x):
        return None
    n = len(idx)
    if x.shape[1] > 50 and n > 50:
        x = PCA(n_components=50, random_state=0).fit_transform(x)
    emb = TSNE(n_components=2, perplexity=min(30.0, (n - 1) / 3), init="pca", learning_rate="auto", random_state=0).fit_transform(x)
    return {"title": title, "xy": emb, "y": clean.y[idx].numpy(), "classes": list(clean.classes)}


def draw_tsne(d: dict[str, Any], path: Path) -> None:
    plt = _plt()
    w, h = TSNE_SIZE
    fig, ax = plt.subplots(figsize=(w / DPI, h / DPI), dpi=DPI)
    cmap = plt.get_cmap("tab10" if len(d["classes"]) <= 10 else "tab20")
    for k, name in enumerate(d["classes"]):
        sel = d["y"] == k
        if sel.any():
            ax.scatter(d["xy"][sel, 0], d["xy"][sel, 1], s=7, color=cmap(k % cmap.N), label=str(name)[:12])
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(d["title"], fontsize=9)
    ax.legend(fontsize=7, markerscale=2, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def poison_figures(
    root: Path, sec: Section, folder: Path, stamps: dict[str, str], log: Callable[[str], None], *, tsne: bool = True
) -> tuple[list[tuple[str, str, Path]], int]:
    """Gallery and t-SNE PNGs of every attack of ``sec`` whose poison is in ``root``'s artifacts
    (drawn again only when the poison changed); figures drawn before whose poison is gone are
    kept. Returns ``(kind, attack, path)`` of every figure that exists afterwards, and how many
    were drawn now."""
    out: list[tuple[str, str, Path]] = []
    drawn = 0
    clean: list[ImageDataset | None] = []  # loaded once per section, on first need

    def get_clean(rec: dict[str, Any]) -> ImageDataset | None:
        if not clean:
            clean.append(clean_train(rec, log))
        return clean[0]

    for attack in sec.attacks:
        cells = [c for c in sec.cells if c.attack == attack]
        key = _poison_key(cells)
        gal = poison_figure_path(folder, "gallery", sec, attack)
        tsn = poison_figure_path(folder, "tsne", sec, attack)
        sha = _artifact_sha(root, key) if key else None
        if sha is not None:
            assert key is not None  # sha is only looked up for a key
            rec = cells[0].record
            ident = {"poison": sha, "dataset": rec.get("dataset_sha256"), "attack": attack, "section": sec.id,
                     "code": [_code(gallery_data), _code(tsne_data), TSNE_POINTS, GALLERY_CLASSES]}
            loaded: dict[str, Any] = {}

            def load(rec: dict[str, Any] = rec, key: str = key, loaded: dict[str, Any] = loaded) -> tuple[ImageDataset, torch.Tensor] | None:
                if "v" not in loaded:
                    from benchmark.store import ArtifactCache

                    data = get_clean(rec)
                    art = ArtifactCache(root, warn=log).load(key) if data is not None else None
                    ok = data is not None and art is not None and tuple(art[0]["x"].shape) == tuple(data.x.shape)
                    if data is not None and art is not None and not ok:
                        log(f"poison {key} does not match the clean split ({tuple(art[0]['x'].shape)} vs {tuple(data.x.shape)})")
                    loaded["v"] = (data, art[0]["x"]) if ok else None  # type: ignore[index]  # ok: art is not None
                return loaded["v"]

            title = f"{sec.dataset} ({sec.profile}): {attack}"

            def gallery(load: Callable[[], Any] = load, title: str = title) -> Any:
                v = load()
                return gallery_data(v[0], v[1], title) if v else None

            def tsne_payload(load: Callable[[], Any] = load, title: str = title) -> Any:
                v = load()
                return tsne_data(v[0], v[1], f"t-SNE of {TSNE_POINTS} perturbations: {title}") if v else None

            drawn += ensure(gal, ident, draw_gallery, stamps, payload=gallery)
            if tsne:
                drawn += ensure(tsn, ident, draw_tsne, stamps, payload=tsne_payload)
        if gal.exists():
            out.append(("gallery", attack, gal))
        if tsne and tsn.exists():
            out.append(("tsne", attack, tsn))
    return out, drawn
