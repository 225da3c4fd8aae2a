"""``bench claims`` on records that are all outside the claims' scope (another profile): every claim
is not measured, and says where the records are instead of "no record here has attack 'em'"."""

from __future__ import annotations

from benchmark.claims import NOT_MEASURED, check_all, render_markdown, render_text
from tests.test_claims import claim, claims, rec


def smoke(attack, acc, seed=0):
    return {**rec(attack, "sl", acc, seed), "profile": "smoke"}


def test_claims_scoped_to_another_profile_say_which_profile_the_records_are_at():
    records = [smoke("em", 0.1), smoke("random-noise", 0.6), smoke("clean", 0.7)]
    cf = claims(claim("e", {"em": {"attack": "em"}, "clean": {"attack": "clean"}}, "em <= clean - 30"), scope={"profile": "quick"})
    report = check_all(cf, records)
    [(heading, _, results)] = report.sections
    assert heading == ("any dataset", "quick")  # not "?"
    assert [r.status for r in results] == [NOT_MEASURED]
    text = results[0].measured_text()
    assert "no finished record here at profile quick (this directory holds profile smoke)" in text
    assert "no record here has attack" not in text  # the records exist, at another profile
    out = render_text(report)
    assert out.splitlines()[0].startswith("any dataset — profile quick")
    assert "note: no finished record here at profile quick (this directory holds profile smoke)" in out
    md = render_markdown(report, "r1", "claims.yaml")
    assert "## any dataset — profile `quick`" in md and "## ?" not in md
    assert "> Note: no finished record here at profile quick (this directory holds profile smoke)" in md


def test_several_other_profiles_are_all_named_and_an_empty_directory_says_it_holds_none():
    records = [smoke("em", 0.1), {**rec("em", "sl", 0.1), "profile": "paper"}]
    cf = claims(claim("e", {"em": {"attack": "em"}}, "em < 50"), scope={"profile": "quick"})
    [(_, _, [r])] = check_all(cf, records).sections
    assert "(this directory holds profiles paper, smoke)" in r.measured_text()
    report = check_all(cf, [])
    [(_, _, [r])] = report.sections
    assert r.status == NOT_MEASURED and "no finished record here)" in r.measured_text() and not report.note


def test_records_in_scope_keep_their_own_reasons():
    records = [rec("em", "sl", 0.1), smoke("clean", 0.7)]
    cf = claims(claim("e", {"em": {"attack": "em"}, "clean": {"attack": "clean"}}, "em <= clean - 30"), scope={"profile": "quick"})
    report = check_all(cf, records)
    [(_, _, [r])] = report.sections
    assert "no record here has attack 'clean'" in r.measured_text() and not report.note
