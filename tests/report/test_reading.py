"""What a reader needs beside the numbers: why a cell is n/a (in the HTML too), how many seeds a
mean is over, failed seeds told apart from finished ones without a value, anchors that do not move
when a label is added, and abstentions drawn apart from the data."""

from __future__ import annotations

import html
import math
import re
from pathlib import Path
from typing import Any

import pytest

from benchmark.report import write_report
from benchmark.report.anchors import anchor, anchors
from benchmark.report.figures import certification_data, draw_certification, heatmap_data
from benchmark.report.html import index_html, table_html
from benchmark.report.leaderboard import render
from benchmark.report.records import load_results
from benchmark.report.tables import LEGEND, build_tables, value_text
from tests.report.synthetic import record, small_matrix, write


def rec(attack: str, victim: str, defense: str, seed: int, acc: float | None = 0.5, **kw: Any) -> dict[str, Any]:
    return record(attack, victim, defense, seed, acc, with_curves=False, **kw)


# ------------------------------------------------------------------------------ n/a reasons


def test_the_html_says_why_a_cell_is_n_a() -> None:
    recs = small_matrix()
    for r in recs:
        if r["status"] == "n/a" and r["attack"] == "em":
            r["not_applicable"] = "adversarial training needs labels"
            r["error"] += " (adversarial training needs labels)"
    res = load_results(recs, "r")
    tables = build_tables(res)["toy-quick"]
    page = index_html(res, {"toy-quick": tables}, {}, [])
    why = html.escape("defense 'at' does not apply to victim 'simclr'", quote=True)
    t = next(t for t in tables if t.id == "toy-quick--victim-simclr")
    text = table_html(t)
    # each n/a cell carries its reason's footnote number, and the reason in its title
    assert text.count('<sup class="fn">1</sup>') == 2 and text.count('<sup class="fn">2</sup>') == 1  # clean, tap; em
    assert f'title="seed 0: n/a; seed 1: n/a; n/a: {why}"' in text
    # ... and the footnotes are visible under the table: reason and how many cells
    assert f'<p class="fn" id="na-toy-quick--victim-simclr-1"><sup>1</sup> n/a (2 cells): {why}</p>' in text
    assert f"<sup>2</sup> n/a (1 cell): {why} (adversarial training needs labels)</p>" in text
    assert text in page
    # the page's notes keep the reasons the markdown gives (they were dropped: not a quoted block)
    assert '<p class="note">n/a: the defense does not apply to the victim. <code>at</code>: ' in page
    assert "adversarial training needs labels" in render(recs, "r")


def test_a_worst_over_n_a_cells_only_says_so() -> None:
    res = load_results([rec("clean", "sl", "at", 0, 0.9), rec("em", "sl", "at", 0, status="n/a")], "r")
    t = build_tables(res)["toy-quick"][0]
    assert "n/a (1 cell): no cell of the row applies</p>" in table_html(t)


# ------------------------------------------------------------------------------ seed counts


def test_every_table_states_how_many_seeds_each_mean_is_over(tmp_path: Path) -> None:
    recs = [rec(a, "sl", d, s, 0.1 * s + 0.2) for a in ("clean", "em") for d in ("none", "iss-jpeg") for s in (0, 1)]
    md = render(recs, "r")
    assert md.count("_Each cell: mean ± sample std over n = 2 seeds (seeds 0, 1)._") == 3  # 2 defenses, 1 victim
    assert md.count("_Each value: the best defense's mean, over the seeds of its cell") == 1
    recs.append(rec("em", "sl", "none", 2, 0.4))  # one cell with a third seed: marked, and counted in the caption
    md = render(recs, "r")
    assert "_Each cell: mean ± sample std over n = 2 seeds; 1 cell has another count, marked [n=k]._" in md
    assert "| em | 30.0 ± 10.0 [n=3] |" in md
    site = write_report(write(tmp_path / "res", recs), tmp_path / "site", figures=False)
    page = site.index.read_text()
    assert '<p class="seeds">accuracy in %. Each cell: mean ± sample std over n = 2 seeds; 1 cell has another count' in page
    one = render([rec("em", "sl", "none", 0)], "r")
    assert "_Each cell: the value of n = 1 seed (seed 0); no std._" in one


# ------------------------------------------------------------------------- failed vs NaN seeds


def test_failed_seeds_and_seeds_without_a_value_are_told_apart() -> None:
    recs = [rec("em", "sl", "none", 0, 0.2, extra={"certified@0.01": 12.0}),
            rec("em", "sl", "none", 1, 0.2, extra={"certified@0.01": math.nan}),  # finished: the certificate abstains
            rec("em", "sl", "none", 2, status="failed", plugins=["accuracy", "certified-learnability"])]
    tables = build_tables(load_results(recs, "r"))["toy-quick"]
    cert = next(t for t in tables if t.metric == "certified@0.01")
    v = cert.rows[0].values[0]
    assert (v.n, v.total, v.failed, v.nan) == (1, 3, 1, 1)
    assert value_text(v, cert.unit, 3, nan="abstain") == "12.0 ⚠1/3 (1 failed, 1 abstain)"
    assert value_text(v, cert.unit, 3) == "12.0 ⚠1/3 (1 failed, 1 NaN)"
    assert "(1 failed, 1 abstain)" in render(recs, "r") and "⚠k/n (f failed, m NaN)" in LEGEND
    assert heatmap_data(cert)["marks"] == [["⚠1/3"]]
    acc = next(t for t in tables if t.metric == "accuracy")
    assert value_text(acc.rows[0].values[0], acc.unit, 3) == "20.0 ± 0.0 ⚠2/3"  # only failures: as before
    nan_only = build_tables(load_results(recs[:2], "r"))["toy-quick"]
    assert heatmap_data(next(t for t in nan_only if t.metric == "certified@0.01"))["marks"] == [["[1/2]"]]


# -------------------------------------------------------------------------------- anchors


def test_an_anchor_is_a_function_of_its_label_alone() -> None:
    assert anchor("cifar10-5k", "quick") == "cifar10-5k-quick" and anchor("iss-jpeg") == "iss-jpeg"
    lossy = ["cifar10 5k", "certified@0.004", "sl(epochs=1)", "ISS-JPEG", "a-", "x/y"]
    for label in lossy:
        assert re.fullmatch(r".+-[0-9a-f]{6}", anchor(label)), label
    assert anchor("ISS-JPEG").lower() != anchor("iss-jpeg")  # one file on a case-insensitive file system otherwise
    assert anchor("a-b", "c") == "a-b-c" and anchor("a", "b-c") != "a-b-c"  # the join is undone from the right only
    keys = [("cifar10-5k", "quick"), ("cifar10 5k", "quick"), ("cifar10_5k", "quick")]
    assert anchors(keys) == anchors(keys[::-1]) == {k: anchor(*k) for k in keys}
    assert len(set(anchors(keys).values())) == 3
    crafted = [("x y",), ("x-y-" + anchor("x y").rsplit("-", 1)[1],)]  # a label made to look like another's digest
    assert anchor(*crafted[1]) == anchor(*crafted[0]) and len(set(anchors(crafted).values())) == 2
    assert anchors(crafted)[crafted[1]] == anchor(*crafted[1])  # the exact label keeps its own


def _ids(recs: list[dict[str, Any]]) -> dict[tuple[str, str], list[str]]:
    res = load_results(recs, "r")
    tables = build_tables(res)
    return {(s.dataset, s.profile): [s.id] + [t.id for t in tables[s.id]] for s in res.sections}


def test_a_label_added_later_moves_no_existing_anchor(tmp_path: Path) -> None:
    old = [rec(a, "sl", d, s, extra={"certified@0.004": 10.0}) for a in ("clean", "em") for d in ("none", "iss-jpeg") for s in (0, 1)]
    before = _ids([{**r, "dataset": "cifar10-5k"} for r in old])[("cifar10-5k", "quick")]
    assert before[0] == "cifar10-5k-quick" and "cifar10-5k-quick--defense-iss-jpeg" in before
    # a dataset whose label slugs alike, a defense and a metric output whose labels slug alike
    new = [{**r, "dataset": "cifar10-5k"} for r in old] + [{**r, "dataset": "cifar10 5k", "key": r["key"] + "-b"} for r in old]
    new += [rec("em", "sl", "iss jpeg", s, dataset="cifar10-5k", extra={"certified-0.004": 5.0}) for s in (0, 1)]
    after = _ids(new)
    assert after[("cifar10-5k", "quick")][0] == before[0] and set(before) < set(after[("cifar10-5k", "quick")])  # as they were
    assert len({i for ids in after.values() for i in ids}) == sum(len(ids) for ids in after.values())  # no two alike
    # the files follow the ids: one CSV per table, none overwritten by a namesake
    site = write_report(write(tmp_path / "res", new), tmp_path / "site", figures=False)
    assert len(list((tmp_path / "site" / "csv").glob("*.csv"))) == site.tables == sum(len(ids) - 1 for ids in after.values())


# ------------------------------------------------------------------------------- abstentions


def test_abstentions_are_drawn_apart_from_the_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A cross where every seed abstains sits in a strip of its own under the panel, never at a
    height of the certified-learnability axis (where it would read as a value)."""
    import matplotlib.pyplot as plt

    attacks = [f"a{i:02d}" for i in range(12)]
    recs = [rec(a, "sl", "none", s, extra={"certified@0.002": 20.0 + i, "certified@0.01": math.nan})
            for i, a in enumerate(attacks) for s in (0, 1)]
    res = load_results(recs, "r")
    figs: list[Any] = []
    monkeypatch.setattr(plt, "close", lambda fig=None: figs.append(fig))
    draw_certification(certification_data(res, res.sections[0], "none"), tmp_path / "c.png")
    (fig,) = figs
    data = [ax for ax in fig.axes if ax.get_ylabel() == "certified learnability %"]
    strip = [ax for ax in fig.axes if ax.get_ylabel() == "abstain"]
    assert len(data) == 1 and len(strip) == 1

    def crosses(ax: Any) -> list[Any]:
        return [ln for ln in ax.get_lines() if ln.get_marker() == "x"]

    assert not crosses(data[0])
    assert len(crosses(strip[0])) == 12 and all(list(ln.get_xdata()) == [0.01] for ln in crosses(strip[0]))
    assert strip[0].get_position().y1 <= data[0].get_position().y0  # under the data, not inside it
    plt.close(fig)
