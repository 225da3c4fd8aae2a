"""Report figures: they exist, have the size their data implies, change when the data changes
(and only then), and go when their entries go. Poison figures are drawn from real artifacts and
survive a regeneration without them."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import pytest
import torch

from benchmark.report import write_report
from benchmark.report.figures import certification_data, certification_size, curves_size, heatmap_size
from benchmark.report.poisons import TSNE_SIZE, gallery_size
from benchmark.report.records import load_results
from tests.report.synthetic import record, small_matrix, write


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", data[16:24])


def test_figures_exist_with_their_sizes_and_follow_the_data(tmp_path: Path) -> None:
    root = write(tmp_path / "res", small_matrix())
    out = tmp_path / "site"
    rep = write_report(root, out, poisons=False)
    figs = out / "figures"
    assert png_size(figs / "heatmap-toy-quick--victim-sl.png") == heatmap_size(3, 3)  # 3 attacks x 3 defenses
    assert png_size(figs / "heatmap-toy-quick--defense-none.png") == heatmap_size(3, 2)
    assert png_size(figs / "curves-toy-quick-none.png") == curves_size(2)  # clean, em (every tap cell failed)
    assert png_size(figs / "certification-toy-quick-none.png") == certification_size(2)  # victims sl, simclr
    assert rep.drawn == rep.figures == 11  # 5 heatmaps, curves and certification for 3 defenses
    html = (out / "index.html").read_text()
    for p in figs.glob("*.png"):
        assert f'src="figures/{p.name}"' in html

    before = {p.name: p.read_bytes() for p in figs.glob("*.png")}
    again = write_report(root, out, poisons=False)
    assert again.drawn == 0  # nothing changed: nothing redrawn

    # one em x sl x none cell changes: the figures that show it change, the others stay as they were
    for p in (root / "cells").glob("*.json"):
        r = json.loads(p.read_text())
        if (r["attack"], r["victim"], r["defense"], r["seed"]) == ("em", "sl", "none", 0):
            r["metrics"]["accuracy"] = 0.42
            p.write_text(json.dumps(r))
    write_report(root, out, poisons=False)
    after = {p.name: p.read_bytes() for p in figs.glob("*.png")}
    changed = {n for n in before if before[n] != after[n]}
    assert changed == {"heatmap-toy-quick--victim-sl.png", "heatmap-toy-quick--defense-none.png", "curves-toy-quick-none.png"}

    # entries that are gone take their figures with them
    for p in (root / "cells").glob("*.json"):
        if json.loads(p.read_text())["victim"] == "simclr":
            p.unlink()
    write_report(root, out, poisons=False)
    assert not (figs / "heatmap-toy-quick--victim-simclr.png").exists()
    assert not (figs / "heatmap-toy-quick--defense-none.png").exists()  # one victim left: no attacks x victims map


def test_certification_curve_never_turns_an_abstention_into_zero() -> None:
    recs = [record("em", "sl", "none", s, 0.2, extra={"certified@0.1": 20.0, "certified@0.2": math.nan if s else 15.0,
                                                     "certified@0.4": math.nan}) for s in (0, 1)]
    res = load_results(recs, "x")
    d = certification_data(res, res.sections[0], "none")
    pts = {p["eta"]: p for p in d["panels"][0]["lines"][0]["points"]}
    assert pts[0.1] == {"eta": 0.1, "mean": 20.0, "all": True, "n": 2}
    assert pts[0.2]["mean"] == 15.0 and pts[0.2]["all"] is False  # one seed abstains: hollow marker
    assert pts[0.4]["mean"] is None  # every seed abstains: no point, not 0


# --------------------------------------------------------------------------------- poisons


@pytest.fixture(scope="module")
def digits_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Records and poison artifacts of a digits matrix (no training): `em` is the clean training
    split plus a fixed +-4 pattern per class and random signs; `clean` is the clean split."""
    from benchmark.config import parse_matrix, resolve
    from benchmark.data.split import load_splits
    from benchmark.plan import make_plan
    from benchmark.registry import get_registry
    from benchmark.store import ArtifactCache

    root = tmp_path_factory.mktemp("digits-results")
    matrix = parse_matrix({"name": "t", "dataset": {"name": "digits", "label": "digits"}, "profile": "smoke",
                           "attacks": ["clean", "em"], "victims": ["sl"]})
    r = resolve(matrix, get_registry())
    plan = make_plan(r)
    splits, sha = load_splits(r)
    x = splits.train.x
    g = torch.Generator().manual_seed(0)
    noise = (torch.randint(0, 2, x.shape, generator=g) * 8 - 4) * (torch.arange(x.shape[0]) % 3 != 0).view(-1, 1, 1, 1)
    poisons = {"clean": x, "em": (x.int() + noise).clamp(0, 255).to(torch.uint8)}
    cache = ArtifactCache(root)
    recs = []
    for job in plan.jobs:
        cache.save(job.key, {"x": poisons[job.attack.name]}, {"kind": "samplewise"}, job.spec)
        for cell in job.cells:
            rec = record(job.attack.name, "sl", "none", cell.seed, 0.5, dataset="digits", profile="smoke")
            rec.update(spec=cell.spec, dataset_spec=plan.dataset_spec, dataset_source=r.dataset.spec(), dataset_sha256=sha)
            recs.append(rec)
    return write(root, recs)


def test_gallery_and_tsne_from_artifacts_survive_without_them(digits_results: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    write_report(digits_results, out)
    figs = out / "figures"
    gal, tsne = figs / "gallery-digits-smoke-em.png", figs / "tsne-digits-smoke-em.png"
    assert png_size(gal) == gallery_size(10) and png_size(tsne) == TSNE_SIZE
    assert not (figs / "gallery-digits-smoke-clean.png").exists()  # no perturbation: nothing to show
    saved = {p: p.read_bytes() for p in (gal, tsne)}

    # committed results: the same cells, no artifacts. The figures stay, unchanged, and are shown.
    bare = tmp_path / "bare"
    (bare / "cells").mkdir(parents=True)
    for p in (digits_results / "cells").glob("*.json"):
        (bare / "cells" / p.name).write_bytes(p.read_bytes())
    rep = write_report(bare, out)
    assert {p: p.read_bytes() for p in (gal, tsne)} == saved and rep.drawn == 0
    html = (out / "index.html").read_text()
    assert 'src="figures/gallery-digits-smoke-em.png"' in html and 'src="figures/tsne-digits-smoke-em.png"' in html


def test_a_new_poison_redraws_its_gallery(digits_results: Path, tmp_path: Path) -> None:
    from benchmark.store import ArtifactCache

    out = tmp_path / "site"
    write_report(digits_results, out, )
    gal = out / "figures" / "gallery-digits-smoke-em.png"
    first = gal.read_bytes()
    rec = next(json.loads(p.read_text()) for p in (digits_results / "cells").glob("*.json") if json.loads(p.read_text())["attack"] == "em")
    key = rec["spec"]["poison"]
    cache = ArtifactCache(digits_results)
    tensors, meta = cache.load(key)
    spec = json.loads((cache.dir(key) / "meta.json").read_text())["spec"]
    cache.save(key, {"x": (tensors["x"].int() + 2).clamp(0, 255).to(torch.uint8)}, meta, spec)
    write_report(digits_results, out, )
    assert gal.read_bytes() != first
