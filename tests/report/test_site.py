"""``bench report``: the static site, its pages and its exports (without a browser: see
test_browser.py for the rendered page)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.report import write_report
from benchmark.report.leaderboard import write_leaderboard
from tests.report.synthetic import small_matrix, write


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write(tmp_path_factory.mktemp("results"), small_matrix())
    write_report(root, root / "report", poisons=False)
    return root / "report"


def test_index_has_every_table_and_links_every_cell_to_an_existing_page(site: Path) -> None:
    html = (site / "index.html").read_text()
    doc = json.loads((site / "tables.json").read_text())
    ids = [t["id"] for t in doc["tables"]]
    assert len(ids) == 9  # 3 defenses + 2 victims + best defense + 3 other metric outputs
    for tid in ids:
        assert f'id="t-{tid}"' in html
    links = set(re.findall(r'href="(cells/[^"]+\.html)"', html))
    assert len(links) == 3 * 2 * 3  # every (attack, victim, defense) group, n/a and failed ones too
    for link in links:
        assert (site / link).is_file()
    assert "<script>" in html and '<link rel="stylesheet" href="style.css">' in html
    assert (site / "style.css").read_text().startswith("\n:root{")


def test_every_page_links_the_one_stylesheet(site: Path) -> None:
    pages = sorted((site / "cells").glob("*.html"))
    assert pages
    for p in pages:
        text = p.read_text()
        assert '<link rel="stylesheet" href="../style.css">' in text and "<style>" not in text
        assert (p.parent / "../style.css").resolve().is_file()


def test_self_contained_no_network(site: Path) -> None:
    for page in [site / "index.html", *sorted((site / "cells").glob("*.html"))[:5]]:
        text = page.read_text()
        urls = set(re.findall(r'(?:src|href)="([a-z]+:[^"]*)"', text))
        assert not urls, (page, urls)  # only relative links
        assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in text


def _page_of(site: Path, attack: str, victim: str, defense: str) -> str:
    doc = json.loads((site / "tables.json").read_text())
    t = next(t for t in doc["tables"] if t["kind"] == "by-defense" and t["id"].endswith(f"defense-{defense}"))
    row = next(r for r in t["rows"] if r["label"] == attack)
    return (site / row["values"][victim]["page"]).read_text()


def test_failed_cell_page_shows_the_error_and_traceback(site: Path) -> None:
    page = _page_of(site, "tap", "sl", "none")
    assert "RuntimeError: tap crashed (seed 0)" in page and "Traceback (most recent call last)" in page
    assert "b-failed" in page and "attack: tap v1" in page


def test_ok_cell_page_shows_metrics_params_provenance_and_curves(site: Path) -> None:
    page = _page_of(site, "em", "simclr", "none")
    assert "<svg" in page and "train accuracy %" in page  # the training curves, inline
    assert "provenance" in page and "threads" in page and "victim: simclr v1" in page
    assert "accuracy (%)" in page and "50.0" in page  # 0.50 shown in %
    assert "certified@0.01 (%)" in page and "NaN" in page  # seed 1 abstains


def test_json_numbers_are_numbers_and_nan_is_null(site: Path) -> None:
    doc = json.loads((site / "tables.json").read_text())
    t = next(t for t in doc["tables"] if t["id"] == "toy-quick--defense-none")
    assert t["scale"] == "percent" and t["unit"] == "fraction" and t["columns"] == ["sl", "simclr", "Worst"]
    em = next(r for r in t["rows"] if r["label"] == "em")["values"]
    assert em["sl"]["mean"] == 15.0 and em["sl"]["status"] == "partial" and (em["sl"]["n"], em["sl"]["total"]) == (1, 2)
    assert em["sl"]["seeds"] == [{"seed": 0, "value": 15.0, "status": "ok"}, {"seed": 1, "value": None, "status": "failed"}]
    tap = next(r for r in t["rows"] if r["label"] == "tap")["values"]
    assert tap["sl"]["mean"] is None and tap["sl"]["status"] == "failed" and tap["Worst"]["status"] == "failed"
    cert = next(t for t in doc["tables"] if t["metric"] == "certified@0.01")
    clean = next(r for r in cert["rows"] if r["label"] == "clean")["values"]
    assert clean["sl / none"]["mean"] is None and clean["sl / none"]["status"] == "nan"
    assert doc["metrics"]["accuracy"] == {"metric": "accuracy", "unit": "fraction"} and doc["mixed_environments"] is False


def test_csv_matches_json(site: Path) -> None:
    doc = json.loads((site / "tables.json").read_text())
    rows = list(csv.DictReader((site / "tables.csv").open()))
    n = sum(len(t["rows"]) * len(t["columns"]) for t in doc["tables"])
    assert len(rows) == n
    r = next(r for r in rows if r["table"] == "toy-quick--defense-none" and r["row"] == "em" and r["column"] == "sl")
    assert float(r["mean"]) == 15.0 and r["status"] == "partial" and r["failed"] == "1"
    wide = list(csv.reader((site / "csv" / "toy-quick--defense-none.csv").open()))
    assert wide[0][:5] == ["attack", "sl", "sl std", "sl n", "sl status"]
    assert wide[2][0] == "em" and float(wide[2][1]) == 15.0 and wide[2][4] == "partial"
    cells = list(csv.DictReader((site / "cells.csv").open()))
    assert any(c["attack"] == "tap" and c["status"] == "failed" and "tap crashed" in c["error"] for c in cells)
    assert any(c["metric"] == "accuracy" and c["unit"] == "fraction" and float(c["value"]) == 0.9 for c in cells)


def test_markdown_export_is_the_leaderboard(site: Path, tmp_path: Path) -> None:
    """One source of truth: the report's tables.md holds the very tables LEADERBOARD.md holds."""
    root = write(tmp_path, small_matrix())
    board = write_leaderboard(root).read_text()
    tables = (site / "tables.md").read_text()

    def tables_of(md: str) -> list[str]:
        return [line for line in md.splitlines() if line.startswith(("|", "### "))]

    assert tables_of(board) == tables_of(tables)


def test_stale_pages_are_removed_and_mixed_environments_announced(tmp_path: Path) -> None:
    recs = small_matrix()
    root = write(tmp_path / "r", recs)
    write_report(root, tmp_path / "out", figures=False)
    n = len(list((tmp_path / "out" / "cells").glob("*.html")))
    for p in (root / "cells").glob("*.json"):
        if json.loads(p.read_text())["attack"] == "tap":
            p.unlink()
    recs2 = next(r for r in (json.loads(p.read_text()) for p in sorted((root / "cells").glob("*.json"))) if r["status"] == "ok")
    recs2["provenance"]["threads"] = 4
    write(root, [recs2])
    write_report(root, tmp_path / "out", figures=False)
    assert len(list((tmp_path / "out" / "cells").glob("*.html"))) == n - 6
    assert "Mixed numeric environments" in (tmp_path / "out" / "index.html").read_text()


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write(tmp_path / "res", small_matrix())
    assert main(["report", str(root), "-o", str(tmp_path / "site"), "--no-figures"]) == 0
    assert "index.html: 9 tables, 18 cell-group pages" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "holds no results" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["report", str(root), "-o", str(tmp_path / "file")]) == 2


def test_no_poisons_keeps_the_galleries_and_t_snes_drawn_before(tmp_path: Path) -> None:
    """Committed results have no poisons to redraw them from: --no-poisons must not delete them."""
    from benchmark.report.figures import load_stamps, save_stamps
    from tests.report.synthetic import record

    root = write(tmp_path / "res", [record("em", "sl", "none", 0, 0.2, with_curves=False)])
    figs = tmp_path / "site" / "figures"
    figs.mkdir(parents=True)
    names = ["gallery-toy-quick-em.png", "tsne-toy-quick-em.png"]
    for name in names:
        (figs / name).write_bytes(b"\x89PNG drawn from a poison that is gone")
    save_stamps(figs, {name: "0" * 16 for name in names})
    rep = write_report(root, tmp_path / "site", poisons=False)
    assert all((figs / name).exists() for name in names) and set(names) <= set(load_stamps(figs))
    html = (tmp_path / "site" / "index.html").read_text()
    assert all(f'src="figures/{name}"' in html for name in names)
    assert rep.figures == 3 and rep.drawn == 1  # the heatmap drawn, the gallery and t-SNE kept


def test_long_labels_give_bounded_file_names(tmp_path: Path) -> None:
    from tests.report.synthetic import record

    long = "verylonglabel" * 25  # 325 characters
    recs = [record("em", long, long, s, 0.2, dataset=long, with_curves=False) for s in (0, 1)]
    root = write(tmp_path / "res", recs)
    write_leaderboard(root)
    rep = write_report(root, tmp_path / "site", poisons=False)
    files = [p for p in (tmp_path / "site").rglob("*") if p.is_file()] + list((root / "figures").glob("*.png"))
    assert rep.figures == 1 and len(files) > 10 and max(len(p.name) for p in files) <= 160  # the heatmap too
    assert len(list((tmp_path / "site" / "csv").glob("*.csv"))) == rep.tables


def test_files_that_are_not_records_are_named_in_the_report(tmp_path: Path) -> None:
    root = write(tmp_path / "res", small_matrix())
    (root / "cells" / "garbage.json").write_text("not json")
    write_report(root, tmp_path / "site", figures=False, log=lambda m: None)
    md = (tmp_path / "site" / "tables.md").read_text()
    assert "1 files are not cell records" in md and "garbage.json (unreadable: JSONDecodeError" in md
    assert "garbage.json" in (tmp_path / "site" / "index.html").read_text()
    write_report(root, tmp_path / "site", figures=False)  # moved aside by now: still named
    assert "garbage.json.corrupt (moved aside earlier)" in (tmp_path / "site" / "tables.md").read_text()
    assert "garbage.json.corrupt (moved aside earlier)" in write_leaderboard(root).read_text()
