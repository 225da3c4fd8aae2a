"""The claims evaluator on synthetic records (hand-computed expectations), the claims file's
validation, and ``bench claims`` on the committed evidence."""

from __future__ import annotations

import re

import pytest
import yaml

from benchmark.claims import (
    DEFAULT_CLAIMS,
    FAILS,
    HOLDS,
    NOT_MEASURED,
    ClaimsError,
    check_all,
    evaluate_condition,
    load_claims,
    parse_claims,
    render_markdown,
    render_text,
)
from benchmark.errors import UserError
from benchmark.records import cell_mean, current
from tests.test_cli import REPO, bench

VICTIMS = ["sl", "simclr", "supcl", "moco", "byol", "simsiam"]


def rec(attack, victim, acc, seed=0, defense="none", started="2026-01-01T00:00:00", version="1", **metrics):
    return {
        "status": "ok", "dataset": "c10", "profile": "quick", "attack": attack, "victim": victim, "defense": defense,
        "seed": seed, "metrics": {"accuracy": acc, **metrics}, "started": started,
        "attack_spec": {"name": attack, "version": version}, "dataset_spec": {"name": "npz", "subset": 5000},
    }


def claims(*items, **top):
    return parse_claims({"defaults": {"victim": "sl", "defense": "none", "metric": "accuracy"}, "claims": list(items), **top}, "c.yaml")


def claim(cid, values, holds, **kw):
    return {"id": cid, "source": {"paper": "P", "where": "Table 1"}, "statement": "s", "values": values, "holds": holds, **kw}


def results(report):
    return {r.claim.id: r for _, _, rs in report.sections for r in rs}


def test_conditions_evaluate_without_eval():
    env = {"a": 10.0, "b": 42.0}
    assert evaluate_condition("a <= b - 30", env)
    assert not evaluate_condition("a <= b - 33", env)
    assert evaluate_condition("b - 35 <= a <= b - 30 and not a > 11", env)
    assert evaluate_condition("abs(a - b) >= 2 * 16 or max(a, b) < 0", env)
    assert evaluate_condition("min(a, b) / 2 >= 5", env)
    with pytest.raises(ClaimsError, match="Eq is not allowed"):
        claims(claim("x", {"a": {"attack": "em"}}, "a == 5"))


@pytest.mark.parametrize(
    ("values", "holds", "error"),
    [
        ({"a": {"attack": "em"}}, "a > abs", r"abs is a function here: call it, abs\(...\)"),
        ({"a": {"attack": "em"}}, "max(a, min) > 0", r"min is a function here"),
        ({"a": {"attack": "em"}}, "-" * 1500 + "a > 0", "a condition nested too deeply to read"),
        ({"a": {"attack": "em"}, "c": {"attack": "clean"}}, "a - c", r"'a - c' is not a comparison \(it would hold whenever it is not 0\)"),
        ({"a": {"attack": "em"}}, "5", "is not a comparison"),
        ({"a": {"attack": "em"}}, "True", "is not a comparison"),
        ({"a": {"attack": "em"}}, "a > 1 and a", "is not a comparison"),
        ({"True": {"attack": "em"}}, "True > 1", "not a Python keyword"),
    ],
    ids=["bare-abs", "bare-min", "deep", "difference", "constant", "true", "and-value", "keyword-name"],
)
def test_a_condition_that_would_crash_or_hold_by_accident_is_refused_naming_the_claim(values, holds, error):
    with pytest.raises(ClaimsError, match=error) as e:
        claims(claim("x", values, holds))
    assert "claims[0] (x)" in str(e.value)
    assert evaluate_condition("not a > 1 or (a < 0 and a > -1)", {"a": 0.5})  # comparisons joined: still allowed


def test_a_copied_record_is_not_another_seed():
    """A record copied under another file name (its key removed) counted as a third seed."""
    records = [rec("em", "sl", 0.2, 0), rec("em", "sl", 0.4, 1), {**rec("em", "sl", 0.9, 0, started="2025-01-01T00:00:00")}]
    m = cell_mean(current(records).records, "em", "sl", "none", "accuracy")
    assert m.seeds == [0, 1] and m.mean == pytest.approx(30.0)


def test_seed_means_offsets_and_statuses():
    records = [
        rec("clean", "sl", 0.70, 0), rec("clean", "sl", 0.66, 1),  # mean 68
        rec("em", "sl", 0.10, 0), rec("em", "sl", 0.14, 1),  # mean 12
        rec("random-noise", "sl", 0.60, 0),  # 60: more than 5 below clean
    ]
    cf = claims(
        claim("em-collapses", {"em": {"attack": "em"}, "clean": {"attack": "clean"}}, "em <= clean - 30"),
        claim("noise-harmless", {"n": {"attack": "random-noise"}, "clean": {"attack": "clean"}}, "n >= clean - 5"),
        claim("tap", {"t": {"attack": "tap"}}, "t < 20"),
    )
    r = results(check_all(cf, records))
    assert r["em-collapses"].status == HOLDS
    assert [(m.name, round(m.value, 6)) for m in r["em-collapses"].measured] == [("em", 12.0), ("clean", 68.0)]
    assert "12.0 (2 seeds)" in r["em-collapses"].measured_text()
    assert r["noise-harmless"].status == FAILS  # 60 < 68 - 5: reported, not an error
    assert r["tap"].status == NOT_MEASURED and "not measured (tap × sl × none" in r["tap"].measured_text()


def test_worst_over_victims_and_the_random_init_floor():
    records = [rec("clean", v, 0.70) for v in VICTIMS] + [rec("clean", "random-init", 0.44)]
    records += [rec("tp", v, a) for v, a in zip(VICTIMS, [0.10, 0.30, 0.25, 0.35, 0.20, 0.15])]  # worst 35 (moco)
    records += [rec("em", v, a) for v, a in zip(VICTIMS, [0.12, 0.50, 0.55, 0.52, 0.48, 0.47])]  # worst 55 (supcl)
    records += [rec("cp", v, a) for v, a in zip(VICTIMS, [0.60, 0.47, 0.50, 0.45, 0.40, 0.41])]  # worst 60 (sl)
    cf = claims(
        claim("tp-worst-below-em-and-cp", {
            "tp": {"attack": "tp", "victim": VICTIMS, "over": "worst"},
            "em": {"attack": "em", "victim": VICTIMS, "over": "worst"},
            "cp": {"attack": "cp", "victim": VICTIMS, "over": "worst"},
        }, "tp < em and tp < cp"),
        claim("cp-near-floor-sl-keeps", {
            "cp": {"attack": "cp", "victim": "simclr"}, "floor": {"attack": "clean", "victim": "random-init"},
            "cp_sl": {"attack": "cp"}, "clean": {"attack": "clean"},
        }, "cp <= floor + 5 and cp_sl >= clean - 15"),
        claim("em-best", {"x": {"attack": "em", "victim": VICTIMS, "over": "best"}, "y": {"attack": "em", "victim": VICTIMS, "over": "mean"}},
              "x < 13 and 43.9 < y < 44.1"),
    )
    r = results(check_all(cf, records))
    assert r["tp-worst-below-em-and-cp"].status == HOLDS
    tp = r["tp-worst-below-em-and-cp"].measured[0]
    assert tp.value == pytest.approx(35.0) and "worst of 6 cells at moco" in tp.detail
    assert r["cp-near-floor-sl-keeps"].status == HOLDS  # simclr 47 <= 44 + 5 and sl 60 >= 70 - 15
    assert r["em-best"].status == HOLDS  # best (lowest) 12 at sl; mean 264 / 6 = 44.0


@pytest.mark.parametrize("cp_simclr, expected", [(0.47, HOLDS), (0.50, FAILS)])
def test_compound_condition_hand_checked(cp_simclr, expected):
    records = [rec("clean", "sl", 0.70), rec("clean", "random-init", 0.44), rec("cp", "sl", 0.60), rec("cp", "simclr", cp_simclr)]
    cf = claims(claim("cp", {
        "cp": {"attack": "cp", "victim": "simclr"}, "floor": {"attack": "clean", "victim": "random-init"},
        "cp_sl": {"attack": "cp"}, "clean": {"attack": "clean"},
    }, "cp <= floor + 5 and cp_sl >= clean - 15"))
    assert results(check_all(cf, records))["cp"].status == expected


def test_worst_needs_every_victim_measured():
    records = [rec("tp", v, 0.2) for v in VICTIMS[:-1]]
    cf = claims(claim("w", {"tp": {"attack": "tp", "victim": VICTIMS, "over": "worst"}}, "tp < 50"))
    r = results(check_all(cf, records))["w"]
    assert r.status == NOT_MEASURED and "simsiam" in r.measured_text()


def test_other_metrics_seeds_and_nan():
    records = [rec("em", "sl", 0.1, 0, **{"certified@0.004": 17.6}), rec("em", "sl", 0.2, 1, **{"certified@0.004": float("nan")}),
               rec("clean", "sl", 0.7, 0, **{"certified@0.004": 66.4})]
    cf = claims(
        claim("cert", {"em": {"attack": "em", "metric": "certified@0.004"}, "clean": {"attack": "clean", "metric": "certified@0.004"}}, "em <= clean - 30"),
        claim("seed1", {"em": {"attack": "em", "seeds": [1]}}, "em > 19.9"),
    )
    r = results(check_all(cf, records))
    assert r["cert"].status == HOLDS and r["cert"].measured[0].value == pytest.approx(17.6)  # NaN (abstain) is not averaged in
    assert r["seed1"].status == HOLDS and r["seed1"].measured[0].value == pytest.approx(20.0)


def test_superseded_records_are_set_aside():
    old = rec("em", "sl", 0.50, started="2026-01-01T00:00:00", version="1")
    new = [rec("em", "sl", 0.10, 0, started="2026-02-01T00:00:00", version="2"), rec("em", "sl", 0.12, 1, started="2026-02-01T01:00:00", version="2")]
    cur = current([old, *new, {**old, "status": "failed"}])
    assert cur.superseded == 1 and len(cur.records) == 2
    assert cell_mean(cur.records, "em", "sl", "none", "accuracy").mean == pytest.approx(11.0)


def test_a_claim_never_compares_cells_of_an_old_and_a_new_victim_spec():
    """The victim's params changed and only the clean cells were computed again: EM's cell (of the
    old victim) is not current, so a claim comparing EM with clean is not measured (it compared
    epochs=3 with epochs=4)."""
    old = {"victim_spec": {"name": "sl", "params": {"epochs": 3}}}
    new = {"victim_spec": {"name": "sl", "params": {"epochs": 4}}}
    records = [{**rec("em", "sl", 0.80, started="2026-01-01T00:00:00"), **old}, {**rec("clean", "sl", 0.85, started="2026-01-01T00:00:00"), **old},
               {**rec("clean", "sl", 0.90, started="2026-02-01T00:00:00"), **new}]
    cur = current(records)
    assert [(r["attack"], r["metrics"]["accuracy"]) for r in cur.records] == [("clean", 0.90)] and cur.superseded == 2
    r = results(check_all(claims(claim("x", {"em": {"attack": "em"}, "clean": {"attack": "clean"}}, "em <= clean - 1")), records))
    assert r["x"].status == NOT_MEASURED


def test_another_attack_seed_is_another_spec_not_another_seed():
    """Poisons generated with attack_seed 0 and then 1: the newest, alone, is current (the two were averaged as two seeds)."""
    records = [rec("em", "sl", 0.20, started="2026-01-01T00:00:00"), {**rec("em", "sl", 0.40, started="2026-01-02T00:00:00"), "attack_seed": 1}]
    cur = current(records)
    assert [r["metrics"]["accuracy"] for r in cur.records] == [0.40]
    assert cell_mean(cur.records, "em", "sl", "none", "accuracy").n == 1


def test_the_newest_spec_is_the_latest_instant_across_time_zones():
    """02:00 in Los Angeles (10:00 UTC) is later than 09:00 UTC, though it sorts first as text."""
    utc = rec("em", "sl", 0.20, started="2026-01-01T09:00:00+0000", version="1")
    la = rec("em", "sl", 0.40, started="2026-01-01T02:00:00-0800", version="2")
    assert [r["metrics"]["accuracy"] for r in current([utc, la]).records] == [0.40]


def test_a_record_without_a_readable_start_time_is_older_than_any_with_one():
    from benchmark.records import started_at

    assert started_at({}) == started_at({"started": "yesterday"}) == float("-inf")
    assert started_at({"started": "2026-01-01T00:00:00"}) == started_at({"started": "2026-01-01T00:00:00+0000"})  # naive: UTC
    old = {**rec("em", "sl", 0.20, version="1"), "started": "?"}
    assert [r["metrics"]["accuracy"] for r in current([old, rec("em", "sl", 0.40, version="2")]).records] == [0.40]


def test_two_param_variants_of_one_victim_label_claims_take_the_newest_setting_whole():
    """Matrix A ran em and clean on sl(epochs=1); matrix B later ran clean on sl(epochs=2). Claims
    compare the newest setting (B's), where EM is not measured yet; A's pair is set aside whole,
    not mixed with B (the leaderboard shows both variants)."""
    a = {"victim_spec": {"name": "sl", "params": {"epochs": 1}}}
    b = {"victim_spec": {"name": "sl", "params": {"epochs": 2}}}
    records = [{**rec("em", "sl", 0.2, started="2026-01-01T00:00:00"), **a}, {**rec("clean", "sl", 0.8, started="2026-01-01T00:00:00"), **a},
               {**rec("clean", "sl", 0.9, started="2026-01-02T00:00:00"), **b}]
    cur = current(records)
    assert [(r["attack"], r["victim_spec"]["params"]["epochs"]) for r in cur.records] == [("clean", 2)] and cur.superseded == 2
    text = render_text(check_all(claims(claim("x", {"em": {"attack": "em"}, "clean": {"attack": "clean"}}, "em <= clean - 1")), records))
    assert "2 records of a setting that is not current were set aside" in text


def test_scope_filters_profile():
    records = [rec("em", "sl", 0.1), {**rec("em", "sl", 0.9), "profile": "smoke"}]
    cf = claims(claim("x", {"em": {"attack": "em"}}, "em < 50"), scope={"profile": "quick"})
    report = check_all(cf, records)
    assert len(report.sections) == 1 and results(report)["x"].status == HOLDS


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["claims"][0].update(hold="x"), "claims[0].hold: unknown key 'hold'; did you mean 'holds'"),
        (lambda c: c["claims"][0].pop("source"), "claims[0].source: this key is required"),
        (lambda c: c["claims"][0].update(holds="em <= clen - 30"), "unknown value 'clen'; did you mean 'clean'"),
        (lambda c: c["claims"][0].update(holds="em <="), "not a valid condition"),
        (lambda c: c["claims"][0].update(holds="__import__('os') > 0"), "only abs, min, max may be called"),
        (lambda c: c["claims"][0].update(holds="__import__('os')"), "is not a comparison"),
        (lambda c: c["claims"][0]["values"].update(w={"attack": "em", "victim": ["sl", "simclr"]}), "a list of cells needs `over`"),
        (lambda c: c["claims"][0]["values"].update(w={"attack": "em", "victim": ["sl"], "over": "wrst"}), "did you mean 'worst'"),
        (lambda c: c["claims"][0]["values"]["em"].update(atack="em"), "values.em.atack: unknown key 'atack'"),
        (lambda c: c["claims"].append(dict(c["claims"][0])), "duplicate id"),
        (lambda c: c.update(schema=2), "claims schema 2; this uebench reads schema 1"),
        (lambda c: c["claims"][0].update(holds="min(em) < 1"), "min() takes two or more arguments (values are numbers), given 1"),
        (lambda c: c["claims"][0].update(holds="abs(em, clean) < 1"), "abs() takes one argument, given 2"),
        (lambda c: c["claims"][0].update(holds="em < " + "(" * 3000 + "1" + ")" * 3000), "a condition of 6,006 characters"),
        (lambda c: c["claims"][0]["values"].update(w={"attack": "em", "victim": ["sl", "moco"], "over": ["mean"]}),
         "unknown aggregate ['mean']"),
    ],
)
def test_broken_claims_file_one_clear_message(edit, message):
    data = {"defaults": {"victim": "sl", "defense": "none"},
            "claims": [claim("em", {"em": {"attack": "em"}, "clean": {"attack": "clean"}}, "em <= clean - 30")]}
    edit(data)
    with pytest.raises(ClaimsError) as e:
        parse_claims(data, "c.yaml")
    assert str(e.value).startswith("c.yaml: ") and message in str(e.value), str(e.value)


def test_the_project_claims_file_is_valid():
    cf = load_claims()
    ids = [c.id for c in cf.claims]
    for must in ("em-collapses-sl", "random-noise-is-no-protection", "iss-jpeg-restores-em", "iss-jpeg-restores-tap",
                 "iss-gray-restores-em-class", "em-spares-simclr", "at-restores-em", "ssl-learns-byol"):
        assert must in ids
    assert all(c.source for c in cf.claims) and cf.scope == {"profile": "quick"}
    assert DEFAULT_CLAIMS.is_file()


def test_cli_reports_failing_claims_with_exit_0_and_a_broken_file_with_2(tmp_path):
    from benchmark.store import ResultStore

    store = ResultStore(tmp_path / "res")
    for i, r in enumerate([rec("clean", "sl", 0.70), rec("em", "sl", 0.65)]):  # EM does not collapse here: fails
        store.put(f"k{i}", r)
    p = bench("claims", str(tmp_path / "res"))
    assert p.returncode == 0, p.stderr
    assert "FAILS" in p.stdout and "em-collapses-sl" in p.stdout and "measured: em 65.0 (1 seed); clean 70.0 (1 seed)" in p.stdout
    md = (tmp_path / "res" / "CLAIMS.md").read_text()
    assert "| **fails** |" in md and "not measured" in md and "Huang et al." in md
    lines = bench("claims", str(tmp_path / "res"), "--lines").stdout.splitlines()
    assert any(line.startswith("em-collapses-sl | Huang et al.") and line.endswith("| fails") for line in lines)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"claims": [{"id": "x"}]}))
    p = bench("claims", str(tmp_path / "res"), "--claims", str(bad))
    assert p.returncode == 2 and "claims[0].source: this key is required" in p.stderr and "Traceback" not in p.stderr


def test_claims_on_the_committed_evidence(tmp_path):
    """`bench claims` runs on results/cifar10-quick whatever it holds yet: every claim is reported
    (holds, fails or not measured), none is an error."""
    p = bench("claims", str(REPO / "results" / "cifar10-quick"), "--out", str(tmp_path / "CLAIMS.md"))
    if not (REPO / "results" / "cifar10-quick" / "cells").is_dir():
        assert p.returncode == 2 and "holds no results" in p.stderr
        return
    assert p.returncode == 0, p.stderr
    for c in load_claims().claims:
        assert c.id in p.stdout
    assert "hold," in p.stdout and (tmp_path / "CLAIMS.md").read_text().startswith("# Claims")


def test_markdown_lists_every_claim_with_its_source():
    cf = claims(claim("a", {"x": {"attack": "em"}}, "x < 1"))
    md = render_markdown(check_all(cf, [rec("em", "sl", 0.5)]), "res", "c.yaml")
    assert "| **a**: s | P, Table 1 | `x < 1` | x 50.0 (1 seed) | **fails** |" in md


def test_a_condition_that_divides_by_a_measured_zero_names_the_claim_and_its_values():
    records = [rec("em", "sl", 0.10), rec("clean", "sl", 0.10)]
    cf = claims(claim("ratio", {"em": {"attack": "em"}, "clean": {"attack": "clean"}}, "em / (clean - em) < 1"))
    with pytest.raises(ClaimsError, match=r"claim 'ratio': `em / \(clean - em\) < 1` cannot be evaluated with em = 10, clean = 10: "
                                          r"float division by zero"):
        check_all(cf, records)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"claims: []\nclaims: [1]\n", "line 2: duplicate key 'claims' (first at line 1)"),
        (b"claims: [caf\xe9]\n", "is not UTF-8 text (byte 0xe9 at offset 12)"),
        (b"", "is empty; a claims file lists `claims:`"),
        (b"claims: " + b"[" * 1000 + b"]" * 1000, "nested more than 64 levels deep"),
    ],
)
def test_a_claims_file_is_read_with_the_matrix_files_safeguards(tmp_path, content, message):
    f = tmp_path / "c.yaml"
    f.write_bytes(content)
    with pytest.raises(UserError, match=re.escape(message)):
        load_claims(f)
    with pytest.raises(UserError, match="claims file .* is a directory"):
        load_claims(tmp_path)


def test_claims_say_which_record_they_moved_aside(tmp_path, capsys):
    """An invalid record is moved aside (the next run recomputes it): silently, before."""
    from benchmark.records import load_records

    (tmp_path / "cells").mkdir()
    (tmp_path / "cells" / "abc.json").write_text('{"status": "ok", "seed": "1"}')
    assert load_records(tmp_path) == []
    assert "warning: skipping result" in capsys.readouterr().err and (tmp_path / "cells" / "abc.json.corrupt").exists()


def test_a_value_not_measured_says_when_no_record_has_its_label_metric_or_seeds():
    records = [rec("em", "sl", 0.1, 0), rec("em-class", "sl", 0.2, 0), rec("clean", "sl", 0.7, 0)]
    cf = claims(claim("a", {"x": {"attack": "em-clas"}}, "x < 1"), claim("m", {"x": {"attack": "em", "metric": "acuracy"}}, "x < 1"),
                claim("s", {"x": {"attack": "em", "seeds": [7]}}, "x < 1"), claim("v", {"x": {"attack": "em", "victim": "simclr"}}, "x < 1"))
    r = results(check_all(cf, records))
    assert {k: v.status for k, v in r.items()} == dict.fromkeys("amsv", NOT_MEASURED)
    assert "no record here has attack 'em-clas'; did you mean 'em-class'" in r["a"].measured_text()
    assert r["m"].measured_text().endswith("no record here has metric 'acuracy'; did you mean 'accuracy'?)")
    assert r["s"].measured_text().endswith("seeds 7 asked for)")
    assert "no record here has victim 'simclr'" in r["v"].measured_text()
