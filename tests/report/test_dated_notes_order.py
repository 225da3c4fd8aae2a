"""What the leaderboard and the report say around their tables: a date from the records (the same
records, the same file), the poisons that did not reach their stopping condition, where a matrix's
cells are when none is at the profile asked for, and where a labelled entry's column stands."""

from __future__ import annotations

import time

import pytest

from benchmark.report.leaderboard import render, write_leaderboard
from benchmark.report.records import load_results, select
from benchmark.report.site import write_report
from tests.report.synthetic import record, spec, write


def rec(attack, victim="sl", seed=0, acc=0.5, **kw):
    return record(attack, victim, "none", seed, acc, with_curves=False, **kw)


@pytest.fixture
def clock(monkeypatch):
    """A clock that moves by a day at each reading (``time.strftime`` of now): a document dated by
    it differs each time it is written."""
    strftime, now = time.strftime, [1.9e9]

    def moving(fmt, t=None):
        if t is not None:
            return strftime(fmt, t)
        now[0] += 86400
        return strftime(fmt, time.gmtime(now[0]))

    monkeypatch.setattr(time, "strftime", moving)
    return now


def test_the_same_records_make_the_same_leaderboard_and_report_dated_by_the_newest_record(tmp_path, clock):
    recs = [rec("clean"), {**rec("em"), "started": "2026-12-02T10:00:00+0200", "wall_s": 125.0}]
    root = write(tmp_path / "res", recs)
    first = write_leaderboard(root, tmp_path / "a.md").read_text()
    second = write_leaderboard(root, tmp_path / "b.md").read_text()
    assert first == second
    assert "results up to 2026-12-02 08:02 UTC: 2 cells" in first.splitlines()[2]  # 10:00+02:00 plus 125 s
    write_report(root, tmp_path / "s1", figures=False)
    write_report(root, tmp_path / "s2", figures=False)
    for name in ("index.html", "tables.md"):
        one, two = (tmp_path / "s1" / name).read_text(), (tmp_path / "s2" / name).read_text()
        assert one == two and "results up to 2026-12-02 08:02 UTC" in one


def test_records_without_a_start_time_date_nothing():
    undated = [{**rec("clean"), "started": None}]
    assert "from `x`, no record dated: 1 cells" in render(undated, "x")


def test_poisons_that_did_not_reach_their_stopping_condition_are_listed():
    meta = {"outer_iterations": 2, "train_accuracy": [0.15, 0.55], "stopped": False}
    recs = [rec("clean"), *({**rec("em", seed=s), "poison_meta": meta} for s in (0, 1)),
            {**rec("pue"), "poison_meta": {**meta, "stopped": True}}]
    text = render(recs, "x")
    assert "**Poisons that did not reach their stopping condition.**" in text
    assert "> - toy-quick: em: 2 cells; 2 outer iterations; last accuracy on the poisoned data 0.55" in text
    assert ": pue" not in text
    assert "did not reach" not in render([rec("clean"), {**rec("em"), "poison_meta": {**meta, "stopped": True}}], "x")


def test_the_report_lists_them_as_a_warning(tmp_path):
    meta = {"outer_iterations": 2, "train_accuracy": [0.15, 0.55], "stopped": False}
    root = write(tmp_path / "res", [rec("clean"), {**rec("em"), "poison_meta": meta}])
    write_report(root, tmp_path / "site", figures=False)
    html = (tmp_path / "site" / "index.html").read_text()
    assert '<div class="note warn">⚠ Poisons that did not reach their stopping condition.' in html
    assert "toy-quick: em: 1 cell; 2 outer iterations" in html


def test_a_matrix_with_no_cell_at_the_profile_asked_for_says_where_its_cells_are(tmp_path):
    recs = [{**rec("clean"), "matrix": "m4", "profile": "smoke", "key": "a"}, {**rec("em"), "matrix": "m4", "profile": "smoke", "key": "b"},
            {**rec("em"), "matrix": "other", "profile": "paper", "key": "c"}]
    root = write(tmp_path / "res", recs)
    text = write_leaderboard(root, tmp_path / "lb.md", keys={"nope"}, matrices={"m4": "quick"}).read_text()
    assert "No finished cells yet." not in text
    assert ("No cells of matrix 'm4' at profile quick here; this directory holds its cells at profile smoke "
            "(`--profile smoke` shows them).") in text
    write_report(root, tmp_path / "site", figures=False, keys={"nope"}, matrices={"m4": "quick"})
    assert "this directory holds its cells at profile smoke (<code>--profile smoke</code> shows them)" in (tmp_path / "site" / "index.html").read_text()
    assert select(recs, {"a"}, {"m4": "quick"}) == ([recs[0]], "")  # some are there: the tables show them
    assert select(recs, {"nope"}, {"m5": "quick"}) == ([], "")  # no record of this matrix anywhere


def test_leaderboard_of_a_matrix_run_at_another_profile_names_that_profile(tmp_path):
    from tests.test_cli import bench

    m = tmp_path / "m.yaml"
    m.write_text("name: m\ndataset: {name: digits, subset: 200}\nprofile: quick\nattacks: [clean]\nvictims: [sl]\ndefenses: [none]\n")
    root = write(tmp_path / "res", [{**rec("clean"), "matrix": "m", "profile": "smoke", "key": "k1"}])
    p = bench("leaderboard", str(root), "--matrix", str(m), "--out", str(tmp_path / "lb.md"))
    assert p.returncode == 0, p.stderr
    assert "this directory holds its cells at profile smoke (`--profile smoke` shows them)" in (tmp_path / "lb.md").read_text()


def test_a_labelled_entry_of_a_plugin_shown_first_keeps_its_place():
    recs = [rec("clean", "supervised", victim_spec=spec("sl")), rec("clean", "simclr"), rec("clean", "byol"),
            rec("clean", "sl(arch=resnet18)", victim_spec=spec("sl", arch="resnet18"))]
    [sec] = load_results(recs, "x").sections
    assert sec.victims == ["sl(arch=resnet18)", "supervised", "byol", "simclr"]  # both stand where sl does
    [sec] = load_results([*recs, rec("clean", "sl", victim_spec=spec("sl", epochs=3))], "x").sections
    assert sec.victims == ["sl", "sl(arch=resnet18)", "supervised", "byol", "simclr"]
