"""``bench docs``: the numbers in README.md and docs/ are generated from records, and a stale
generated block fails this test."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.docs import regenerate, update_docs
from benchmark.errors import UserError
from benchmark.store import ResultStore
from tests.test_cli import REPO, bench

JPEG = "sha256:6fbe29a0662f13fe6ef4524a17b67b03745b74e2097af723af52f162714b08eb"


def rec(attack, acc, seed=0, victim="sl", defense="none", **metrics):
    return {"status": "ok", "dataset": "cifar10-5k", "profile": "quick", "attack": attack, "victim": victim,
            "defense": defense, "seed": seed, "metrics": {"accuracy": acc, **metrics}, "wall_s": 90.0,
            "poison_meta": {"wall_s": 300.0}, "started": "2026-01-01",
            "dataset_spec": {"name": "npz", "params": {}, "content": JPEG, "subset": 5000, "test_subset": None}}


@pytest.fixture
def repo(tmp_path):
    store = ResultStore(tmp_path / "results" / "cifar10-quick")
    for i, r in enumerate([rec("clean", 0.70), rec("clean", 0.68, 1), rec("em", 0.13), rec("em", 0.15, 1),
                           rec("em", 0.62, defense="iss-jpeg"), rec("em", 0.5, victim="simclr", **{"certified@0.004": 17.6})]):
        store.put(f"k{i}", r)
    return tmp_path


BLOCK = """intro
<!-- generated: table rows=attack:clean,em,tap cols=defense:none,iss-jpeg -->
| attack | none |
| clean | 16.1 |
<!-- end generated -->
outro
"""


def test_table_blocks_are_rewritten_from_records(repo):
    out = regenerate(BLOCK, repo, "README.md")
    assert out.startswith("intro\n<!-- generated: table rows=attack:clean,em,tap cols=defense:none,iss-jpeg -->\n")
    assert out.endswith("<!-- end generated -->\noutro\n") and "16.1" not in out
    lines = out.splitlines()
    assert "| attack | none | iss-jpeg |" in lines
    assert "| clean | 69.0 ± 1.4 | – |" in lines  # mean ± sample std of 70 and 68
    assert "| em | 14.0 ± 1.4 | 62.0 [n=1] |" in lines  # seed 0 only, where the table's cells have two
    assert "| tap | – | – |" in lines
    assert ("_CIFAR-10 (JPEG-75 copy), 5k subset, full test set; profile quick; mean ± std over seeds 0, 1; 1 cell has "
            "another count, marked [n=k] (the value of seed 0). Generated from `results/cifar10-quick` by `bench docs`._") in out
    assert regenerate(out, repo, "README.md") == out  # idempotent


def test_a_cell_over_another_seed_count_is_marked_as_the_leaderboard_marks_it(repo):
    from benchmark.records import load_records
    from benchmark.report.leaderboard import render

    out = regenerate("<!-- generated: table rows=attack:clean,em cols=defense:none,iss-jpeg -->\n<!-- end generated -->\n",
                     repo, "d.md")
    board = render(load_records(repo / "results" / "cifar10-quick"), "res")
    sl = board.split("### victim `sl`: attacks × defenses")[1].split("\n### ")[0]  # the same cells, attacks × defenses
    assert "| em | 14.0 ± 1.4 | 62.0 [n=1] |" in out and "| em | 14.0 ± 1.4 | 62.0 [n=1] |" in sl
    assert "1 cell has another count, marked [n=k]" in out and "1 cell has another count, marked [n=k]" in sl
    # every cell over the usual count: no mark, and the caption names the seeds
    same = regenerate("<!-- generated: table rows=attack:clean,em cols=defense:none -->\n<!-- end generated -->\n", repo, "d.md")
    assert "| em | 14.0 ± 1.4 |" in same and "[n=" not in same and "; mean ± std over seeds 0, 1. Generated" in same


def test_the_usual_count_is_the_captions_even_when_it_is_one_seed(tmp_path):
    """A table of seed-0 cells beside a clean row of two seeds: the caption states one seed, the
    clean cells are the marked ones (the leaderboard's rule: the most common count)."""
    store = ResultStore(tmp_path / "results" / "cifar10-quick")
    for i, r in enumerate([rec("clean", 0.70), rec("clean", 0.68, 1), rec("cp", 0.5), rec("cp-c", 0.4),
                           rec("cp", 0.44, victim="simclr"), rec("clean", 0.45, victim="simclr")]):
        store.put(f"k{i}", r)
    out = regenerate("<!-- generated: table rows=attack:clean,cp,cp-c cols=victim:sl,simclr -->\n<!-- end generated -->\n",
                     tmp_path, "d.md")
    assert "| clean | 69.0 ± 1.4 [n=2] | 45.0 |" in out and "| cp | 50.0 | 44.0 |" in out and "| cp-c | 40.0 | – |" in out
    assert ("; profile quick; the value of seed 0; 1 cell has another count, marked [n=k] (mean ± std over seeds 0, 1). "
            "Generated") in out
    one = regenerate("<!-- generated: table rows=attack:cp cols=victim:sl -->\n<!-- end generated -->\n", tmp_path, "d.md")
    assert "| cp | 50.0 |" in one and "; profile quick; the value of seed 0. Generated" in one  # no "± std" of one seed


def test_the_caption_says_which_columns_are_means_without_a_std(repo):
    """The minutes (and ``poison.KEY``) are seed means shown without a std: the caption says so,
    for those columns only."""
    cols = "cols=metric:accuracy,wall_min,poison_min"
    out = regenerate(f"<!-- generated: table rows=attack:clean,em {cols} -->\n<!-- end generated -->\n", repo, "d.md")
    assert "| em | 14.0 ± 1.4 | 1.5 | 5.0 |" in out
    assert "; mean ± std over seeds 0, 1 (`wall_min`, `poison_min`: mean, no std). Generated" in out
    timing = regenerate("<!-- generated: table rows=attack:clean,em cols=metric:wall_min -->\n<!-- end generated -->\n",
                        repo, "d.md")
    assert "| em | 1.5 |" in timing and "; mean over seeds 0, 1, no std. Generated" in timing and "±" not in timing


def test_a_timing_cell_over_fewer_seeds_than_its_row_is_marked(tmp_path):
    """``victim_min`` leaves out a seed whose victim was reused: that cell is over one seed where
    the table's cells have two."""
    store = ResultStore(tmp_path / "results" / "cifar10-quick")
    store.put("a", {**rec("em", 0.1), "timing": {"victim_s": 120.0, "victim_reused": False}})
    store.put("b", {**rec("em", 0.1, seed=1), "timing": {"victim_s": 180.0, "victim_reused": False}})
    store.put("c", {**rec("em", 0.3, defense="sau"), "timing": {"victim_s": 60.0, "victim_reused": False, "repair_s": 30.0}})
    store.put("d", {**rec("em", 0.3, defense="sau", seed=1), "timing": {"victim_s": 0.0, "victim_reused": True, "repair_s": 30.0}})
    text = "<!-- generated: table rows=defense:none,sau cols=metric:victim_min,wall_min attack=em -->\n<!-- end generated -->\n"
    out = regenerate(text, tmp_path, "d.md")
    assert "| none | 2.5 | 1.5 |" in out and "| sau | 1.0 [n=1] | 1.5 |" in out
    assert "; mean over seeds 0, 1, no std; 1 cell has another count, marked [n=k] (the value of seed 0). Generated" in out


def test_other_axes_metrics_wall_time_and_not_measured(repo):
    text = ("<!-- generated: table rows=victim:simclr cols=metric:accuracy,certified@0.004,wall_min,poison_min attack=em -->\n"
            "<!-- end generated -->\n"
            "<!-- generated: table rows=attack:cp cols=victim:sl,simclr -->\nold\n<!-- end generated -->\n")
    out = regenerate(text, repo, "docs/x.md")
    assert "| simclr | 50.0 | 17.6 | 1.5 | 5.0 |" in out
    assert "_Not measured yet: no record in `results/cifar10-quick` for this table._" in out and "old" not in out


def test_victim_and_repair_minutes_come_from_the_timing_block(tmp_path):
    store = ResultStore(tmp_path / "results" / "cifar10-quick")
    store.put("a", {**rec("em", 0.1), "timing": {"victim_s": 120.0, "victim_reused": False}})
    store.put("b", {**rec("em", 0.3, defense="sau"), "timing": {"victim_s": 0.0, "victim_reused": True, "repair_s": 30.0}})
    store.put("c", rec("em", 0.2, defense="iss-jpeg"))  # an older record: no timing block
    text = "<!-- generated: table rows=defense:none,sau,iss-jpeg cols=metric:victim_min,repair_min attack=em -->\n<!-- end generated -->\n"
    out = regenerate(text, tmp_path, "d.md")
    assert "| none | 2.0 | – |" in out and "| sau | – | 0.5 |" in out and "| iss-jpeg | – | – |" in out


def test_a_poison_meta_key_reads_the_last_entry_of_its_list(tmp_path):
    store = ResultStore(tmp_path / "results" / "cifar10-quick")
    meta = {"wall_s": 60.0, "model_loss": [12.0, 10.5, 10.19344], "flag": True}
    store.put("a", {**rec("cp-c", 0.4), "poison_meta": meta})
    store.put("b", {**rec("cp-c", 0.4, seed=1), "poison_meta": meta})  # one poison, two seeds: no spread
    store.put("c", rec("em", 0.1))  # no such key
    text = ("<!-- generated: table rows=attack:cp-c,em cols=metric:poison.model_loss,poison.flag,poison_min -->\n"
            "<!-- end generated -->\n")
    out = regenerate(text, tmp_path, "d.md")
    assert "| cp-c | 10.193 | – | 1.0 |" in out and "| em | – | – | 5.0 [n=1] |" in out  # em: seed 0 only


def test_plain_numbers_get_two_decimals(tmp_path):
    store = ResultStore(tmp_path / "results" / "cifar10-quick")
    units = {"accuracy": {"metric": "accuracy", "unit": "fraction"}, "ud": {"metric": "unlearnable-distance", "unit": "number"}}
    for i, (acc, ud) in enumerate([(0.13, 0.636), (0.15, 1.1667)]):
        store.put(f"k{i}", {**rec("em", acc, seed=i, ud=ud), "metric_units": units})
    out = regenerate("<!-- generated: table rows=attack:em cols=metric:accuracy,ud -->\n<!-- end generated -->\n", tmp_path, "d.md")
    assert "| em | 14.0 ± 1.4 | 0.90 ± 0.38 |" in out  # UD: mean 0.901, sample std 0.375


@pytest.mark.parametrize(("marker", "message"), [
    ("table rows=attack:em", "a table needs rows"),
    ("table rows=atack:em cols=defense:none", "unknown axis 'atack'"),
    ("table rows=attack:em cols=defense:none vict=sl", "unknown option 'vict'"),
    ("chart", "a generated block is one of table, claims, cost, speed, plugins"),
])
def test_bad_markers_say_what_is_wrong(repo, marker, message):
    with pytest.raises(UserError, match=message):
        regenerate(f"<!-- generated: {marker} -->\n<!-- end generated -->\n", repo, "README.md")


def test_claims_block(repo):
    out = regenerate("<!-- generated: claims -->\n<!-- end generated -->\n", repo, "README.md")
    assert "| **em-collapses-sl**: " in out and "| holds |" in out and "not measured yet" in out


def test_check_mode_reports_stale_files(repo):
    (repo / "README.md").write_text(BLOCK)
    (repo / "docs").mkdir()
    (repo / "docs" / "a.md").write_text("no blocks\n")
    assert update_docs(repo, check=True) == [repo / "README.md"]
    assert (repo / "README.md").read_text() == BLOCK  # --check changes nothing
    assert update_docs(repo) == [repo / "README.md"] and update_docs(repo, check=True) == []


def test_the_repository_docs_are_generated_from_the_committed_results():
    """Fails when README.md or docs/ hold a generated block that `bench docs` would change: after new
    records land in results/, run `bench docs` and commit."""
    p = bench("docs", "--check", "--root", str(REPO))
    assert p.returncode == 0, p.stdout + p.stderr
    readme = (REPO / "README.md").read_text()
    assert readme.count("<!-- generated:") >= 3  # the quickstart's leaderboard, the evidence tables, the claims


def test_no_draft_placeholder_is_left_in_the_docs():
    """A draft's stand-in (a line or parenthesis that is one ALL_CAPS_NAME, like QUICK_TP) never ships."""
    import re

    found = []
    for path in [REPO / "README.md", REPO / "benchmarks" / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"(^|: |\()[A-Z][A-Z0-9]*_[A-Z0-9_]+(\)|$)", line.strip()):
                found.append(f"{path.relative_to(REPO)}:{i}: {line.strip()}")
    assert not found, "\n".join(found)


def test_plugins_block_lists_every_built_in_and_only_built_ins(repo):
    import re

    from benchmark.registry import get_registry

    out = regenerate("<!-- generated: plugins -->\n<!-- end generated -->", repo, "R.md")
    reg = get_registry()
    listed = set(re.findall(r"`([a-z0-9-]+)`", out))
    for kind in ("attack", "victim", "defense", "metric", "dataset", "executor", "model"):
        for name in reg.names(kind):
            assert (name in listed) == (reg.entry(kind, name).package == "uebench"), (kind, name)
    assert "train stage (supervised victims only): `at`" in out


def test_speed_block_reads_a_benchmark_run(repo):
    import json

    (repo / "b.json").write_text(json.dumps({"meta": {"cpu": "X", "torch_threads": 2, "torch": "t", "commit": "c"}, "results": [
        {"cell": "em", "impl": "uebench", "rate": 300.0, "unit": "img/s"},
        {"cell": "em", "impl": "reference", "rate": 100.0, "unit": "img/s"},
        {"cell": "simclr", "impl": "uebench", "rate": 50.0, "unit": "img/s"}]}))
    out = regenerate("<!-- generated: speed file=b.json -->\n<!-- end generated -->", repo, "R.md")
    assert "| em | 300 img/s | 100 | 3.0x |" in out and "| simclr | 50 img/s | – | – |" in out and "X, 2 threads" in out
    assert "precision" not in out
    doc = json.loads((repo / "b.json").read_text())
    doc["meta"]["args"] = {"precision": "bfloat16"}  # bench.py --precision: the caption says which side ran in it
    (repo / "b.json").write_text(json.dumps(doc))
    out = regenerate("<!-- generated: speed file=b.json -->\n<!-- end generated -->", repo, "R.md")
    assert "X, 2 threads, uebench in precision bfloat16, the official loops in float32" in out
    # bench.py --precision float32,bfloat16: one column per precision, each against the same official loop
    doc["meta"]["args"] = {"precision": "float32,bfloat16"}
    doc["results"] = [{"cell": "em", "impl": "uebench", "rate": 100.0, "unit": "img/s", "extra": {"precision": "float32"}},
                      {"cell": "em", "impl": "uebench", "rate": 160.0, "unit": "img/s", "extra": {"precision": "bfloat16"}},
                      {"cell": "em", "impl": "reference", "rate": 80.0, "unit": "img/s"}]
    (repo / "b.json").write_text(json.dumps(doc))
    out = regenerate("<!-- generated: speed file=b.json -->\n<!-- end generated -->", repo, "R.md")
    assert "| hot path | uebench, float32 | uebench, bfloat16 | official loop | speed-up, float32 | speed-up, bfloat16 |" in out
    assert "| em | 100 img/s | 160 img/s | 80 | 1.2x | 2.0x |" in out
    assert "uebench in precision float32 and bfloat16, the official loops in float32" in out
    doc["meta"]["cpu_bf16"] = "AMX-BF16"  # what ran the bf16 side: AMX tiles run it about twice as fast as AVX512-BF16
    (repo / "b.json").write_text(json.dumps(doc))
    out = regenerate("<!-- generated: speed file=b.json -->\n<!-- end generated -->", repo, "R.md")
    assert "X with AMX-BF16, 2 threads, uebench in precision" in out
    with pytest.raises(UserError, match="cannot read the benchmark results"):
        regenerate("<!-- generated: speed file=nope.json -->\n<!-- end generated -->", repo, "R.md")


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation but hyphens dropped, spaces to hyphens."""
    import re

    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def test_slugs_follow_github():
    assert _slug("Cost before running") == "cost-before-running"
    assert _slug("The evidence: quick-profile CIFAR-10, committed and checkable") == \
        "the-evidence-quick-profile-cifar-10-committed-and-checkable"
    assert _slug("Quickstart time (`quickstart.py`)") == "quickstart-time-quickstartpy"
    assert _slug("CP — `cp`") == "cp--cp"


def test_every_link_in_the_docs_reaches_a_file_and_heading_that_exist():
    """A link to a section that was renamed or never written (`[Cost before running](#cost-before-running)`
    once pointed nowhere) or to a moved file fails here."""
    import re

    docs = [REPO / "README.md", REPO / "benchmarks" / "README.md", *sorted((REPO / "docs").glob("*.md"))]

    def anchors(path: Path) -> set[str]:
        fenced, out = False, set()
        for line in path.read_text().splitlines():
            fenced ^= line.startswith("```")
            if not fenced and re.match(r"#{1,6} ", line):
                out.add(_slug(line.lstrip("#")))
        return out

    bad = []
    for path in docs:
        text = re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if not dest.exists():
                bad.append(f"{path.relative_to(REPO)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                bad.append(f"{path.relative_to(REPO)}: {target} (no such heading)")
    assert not bad, "\n".join(bad)


def test_every_bench_command_the_docs_show_has_its_subcommand_and_flags():
    """`bench run M --dry-run`, `bench audit R --cells K ...`: a subcommand or flag the docs show that
    the CLI does not have (renamed, never added) fails here."""
    import argparse
    import re

    from benchmark.cli import parser

    subs = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    docs = [REPO / "README.md", REPO / "benchmarks" / "README.md", *sorted((REPO / "docs").glob("*.md")),
            *sorted((REPO / "examples").glob("*.yaml"))]
    bad, seen = [], 0
    for path in docs:
        # a command: inside backticks, or a line of a code block / comment, up to its end or a pipe
        for m in re.finditer(r"(?:`|^\s*(?:#\s*)?|&& )bench ([a-z][a-z-]*)((?: +[^`|&#\n]*)?)", path.read_text(), re.MULTILINE):
            sub, rest = m.group(1), m.group(2)
            flags = re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", rest)
            if sub not in subs:
                bad.append(f"{path.relative_to(REPO)}: bench {sub}{rest} (no subcommand {sub!r})")
                continue
            known = {s for a in subs[sub]._actions for s in a.option_strings}
            seen += 1
            bad += [f"{path.relative_to(REPO)}: bench {sub}{rest} (no flag {f})" for f in flags if f not in known]
    assert seen >= 20 and not bad, "\n".join(bad)


def test_the_readme_names_the_evidence_datas_content_digest():
    """README, "The evidence's data": the digest a rebuilt copy is compared with is the one the
    committed records carry."""
    import json
    import re

    text = (REPO / "README.md").read_text()
    stated = re.search(r"`([0-9a-f]{64})` for this copy", text)
    assert stated
    digests = {json.loads(p.read_text()).get("dataset_sha256") for p in (REPO / "results" / "cifar10-quick" / "cells").glob("*.json")}
    assert digests == {stated.group(1)}
