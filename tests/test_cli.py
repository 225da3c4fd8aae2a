from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def bench(*args: str, cwd: Path = REPO, path: tuple[Path, ...] = ()) -> subprocess.CompletedProcess:
    """``bench ARGS`` in a fresh process (``path``: more directories on its ``sys.path``)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *map(str, path)])}
    return subprocess.run([sys.executable, "-m", "benchmark", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def test_smoke_matrix_end_to_end(tmp_path):
    res = tmp_path / "results"
    p = bench("run", "examples/smoke.yaml", "--profile", "smoke", "--results", str(res))
    assert p.returncode == 0, p.stderr
    assert "0 failed" in p.stderr and "leaderboard:" in p.stderr
    board = (res / "LEADERBOARD.md").read_text()
    assert "digits — profile `smoke`" in board and "| clean" in board and "| em " in board
    again = bench("run", "examples/smoke.yaml", "--profile", "smoke", "--results", str(res))
    assert "0 computed" in again.stderr
    lb = bench("leaderboard", str(res), "--out", str(tmp_path / "LB.md"))
    assert lb.returncode == 0 and (tmp_path / "LB.md").exists()


def test_leaderboard_and_report_of_one_matrix_leave_out_settings_it_no_longer_has(tmp_path):
    res = tmp_path / "res"
    base = "dataset: {name: digits, subset: 200}\nprofile: smoke\nattacks: [clean]\ndefenses: [none]\n"
    for name, epochs in (("old", 1), ("new", 2)):
        (tmp_path / f"{name}.yaml").write_text(base + f"victims: [{{name: sl, params: {{epochs: {epochs}}}}}]\n")
        assert bench("run", str(tmp_path / f"{name}.yaml"), "--results", str(res), "--quiet").returncode == 0
    both = (res / "LEADERBOARD.md").read_text()
    assert "sl(epochs=1)" in both and "sl(epochs=2)" in both
    p = bench("leaderboard", str(res), "--matrix", str(tmp_path / "new.yaml"), "--out", str(tmp_path / "LB.md"))
    assert p.returncode == 0, p.stderr
    board = (tmp_path / "LB.md").read_text()
    # an entry with params is shown with them (benchmark.config._auto_labels), the other matrix's left out
    assert "sl(epochs=1)" not in board and "| attack | sl(epochs=2) | **Worst** |" in board and ": 1 cells (0 failed" in board
    p = bench("report", str(res), "--matrix", str(tmp_path / "new.yaml"), "--no-figures", "--no-poisons", "-o", str(tmp_path / "rep"))
    assert p.returncode == 0, p.stderr
    assert len((tmp_path / "rep" / "cells.csv").read_text().strip().splitlines()) == 2  # a header and one cell
    p = bench("leaderboard", str(res), "--profile", "smoke")
    assert p.returncode == 2 and "--profile needs --matrix" in p.stderr


def test_dry_run_lists_jobs_and_cells(tmp_path):
    p = bench("run", "examples/smoke.yaml", "--dry-run", "--results", str(tmp_path))
    assert p.returncode == 0
    assert "4 attack jobs, 24 cells" in p.stdout and "to generate" in p.stdout and "pending" in p.stdout
    assert not (tmp_path / "cells").exists()


EXAMPLES = sorted(p.name for p in (REPO / "examples").glob("*.yaml"))


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_matrix_dry_runs(name, tmp_path):
    """Every matrix the README points at validates and is priced, without data (known sizes) or
    with ../shared/data where it reads it; no traceback, nothing written."""
    text = (REPO / "examples" / name).read_text()
    if "../shared/data" in text and not (REPO.parent / "shared" / "data").is_dir():
        pytest.skip("needs ../shared/data")
    p = bench("run", f"examples/{name}", "--dry-run", "--results", str(tmp_path / "r"))
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    assert "cost estimate" in p.stdout and "no cost model" not in p.stdout
    assert not (tmp_path / "r").exists()


def test_user_errors_exit_2_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: digits\nattacks: [emm]\nvictims: [sl]\n")
    p = bench("run", str(bad))
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip() == f"error: {bad}: attacks[0].name: unknown attack 'emm'; did you mean 'em', 'em-class'? (known attacks: clean, em, em-class, random-noise)" or "did you mean 'em'" in p.stderr
    p = bench("run", str(tmp_path / "missing.yaml"))
    assert p.returncode == 2 and "does not exist" in p.stderr and "Traceback" not in p.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("dataset: {name: npz, path: /no/such.npz}\nattacks: [clean]\nvictims: [sl]\nprofile: smoke\n")
    p = bench("run", str(broken), "--results", str(tmp_path / "r"))
    assert p.returncode == 2 and "npz: '/no/such.npz' does not exist" in p.stderr and "Traceback" not in p.stderr
    p = bench("leaderboard", str(tmp_path / "nothing"))
    assert p.returncode == 2 and "holds no results" in p.stderr


def test_plugins_listing():
    p = bench("plugins", "--json")
    rows = json.loads(p.stdout)
    em = next(r for r in rows if r["kind"] == "attack" and r["name"] == "em")
    assert em["package"] == "uebench" and em["usable"] and em["version"]
    table = bench("plugins").stdout
    assert "kind" in table and "random-noise" in table


SMOKE_DIGITS = """\
name: numerics
dataset: {name: digits, subset: 200}
profile: smoke
seeds: [0, 1]
attacks: [em, em-class]
victims: [sl]
defenses: [none, iss-bdr]
"""


def _cells_and_poisons(res: Path) -> tuple[dict[str, dict], dict[str, str]]:
    cells = {p.stem: json.loads(p.read_text()) for p in (res / "cells").glob("*.json")}
    poisons = {d.name: json.loads((d / "meta.json").read_text())["sha256"] for d in (res / "artifacts").iterdir()}
    return cells, poisons


def test_inline_and_two_workers_give_the_same_cells_value_by_value(tmp_path):
    """`bench run m.yaml` and `bench run m.yaml --workers 2` on one smoke matrix: the same poisons
    (sha256 of every artifact) and the same value of every metric of every cell, bit for bit, and
    records that say how they were computed (`numerics`)."""
    m = tmp_path / "m.yaml"
    m.write_text(SMOKE_DIGITS)
    inline = bench("run", str(m), "--results", str(tmp_path / "inline"), "--quiet")
    workers = bench("run", str(m), "--results", str(tmp_path / "workers"), "--quiet", "--workers", "2")
    assert inline.returncode == 0 and workers.returncode == 0, inline.stderr + workers.stderr
    assert "local executor: 2 workers x 1 threads" in workers.stderr
    cells_a, poisons_a = _cells_and_poisons(tmp_path / "inline")
    cells_b, poisons_b = _cells_and_poisons(tmp_path / "workers")
    assert len(cells_a) == 8 and set(cells_a) == set(cells_b)
    assert len(poisons_a) == 2 and poisons_a == poisons_b  # the EM and EM-class poisons, byte for byte
    for key, a in cells_a.items():
        b = cells_b[key]
        assert a["status"] == b["status"] == "ok"
        assert a["metrics"] == b["metrics"], (a["attack"], a["defense"], a["seed"])
        assert a["numerics"] == b["numerics"]  # 1 torch thread, float32, same libraries and ISA
        assert a["numerics"]["threads"] == 1 and a["numerics"]["dtype"] == "float32"
        assert a["poison_meta"]["numerics"] == a["numerics"]  # how the shared poison was made
    assert len({c["provenance"]["pid"] for c in cells_b.values()}) == 2  # both workers computed cells


def test_broken_plugin_packages_never_break_bench(tmp_path):
    """Installed packages that fail to import, whose hook raises, whose class has no name, whose own
    defaults fail validation, that reuse a built-in name or misspell a hook: `bench plugins` lists
    each with its distribution and reason, a matrix that does not use them runs, one that does gets
    one line naming the plugin and its distribution."""
    from tests.test_registry import BROKEN_DISTS, make_dist

    site = tmp_path / "site"
    site.mkdir()
    for dist, (module, source) in BROKEN_DISTS.items():
        make_dist(site, dist, "0.1", module, source)
    listing = bench("plugins", "--json", path=(site,))
    assert listing.returncode == 0, listing.stderr
    rows = json.loads(listing.stdout)
    broken = {r["package"]: r for r in rows if r["error"]}
    assert set(broken) == set(BROKEN_DISTS) - {"uebench-shift"}
    assert all(not r["usable"] and r["package_version"] == "0.1" for r in broken.values())
    assert f"{len(BROKEN_DISTS) - 1} broken plugins" in listing.stderr
    table = bench("plugins", path=(site,)).stdout
    assert "uebench-noimport 0.1" in table and "broken: cannot import uebench_noimport: ModuleNotFoundError" in table
    m = tmp_path / "m.yaml"
    m.write_text("dataset: {name: digits, subset: 100}\nprofile: smoke\nattacks: [clean, shift]\nvictims: [sl]\n")
    run = bench("run", str(m), "--results", str(tmp_path / "res"), "--quiet", path=(site,))
    assert run.returncode == 0 and "2 computed" in run.stderr, run.stderr
    packages = sorted((json.loads(f.read_text())["plugin_packages"] for f in (tmp_path / "res" / "cells").glob("*.json")), key=len)
    assert packages == [{}, {"attack shift": "uebench-shift 0.1"}]  # a third party's package version, in the record
    info = site / "uebench_shift-0.1.dist-info"  # a new release of the package, the class's version unchanged
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: uebench-shift\nVersion: 0.2\n")
    info.rename(site / "uebench_shift-0.2.dist-info")
    m.write_text(m.read_text() + "defenses: [none, iss-gray]\n")  # new cells on the cached poisons
    again = bench("run", str(m), "--results", str(tmp_path / "res"), "--quiet", path=(site,))
    assert again.returncode == 0 and "2 already done, 2 computed" in again.stderr, again.stderr
    assert ("warning: the cached poison of attack 'shift' was generated with another release of its package (uebench-shift 0.1 -> "
            "uebench-shift 0.2); it is reused") in again.stderr
    assert ("warning: 1 done cells of attack shift were computed with another release of its package (uebench-shift 0.1 -> "
            "uebench-shift 0.2); they are reused: if the new release changes numbers, bump the plugin class's `version`") in again.stderr
    m.write_text("dataset: digits\nprofile: smoke\nattacks: [bad-default]\nvictims: [sl]\n")
    bad = bench("run", str(m), "--results", str(tmp_path / "res"), path=(site,))
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr == (
        f"error: {m}: attacks[0].name: attack 'bad-default' from uebench-baddefault 0.1 (uebench_baddefault) is broken: "
        "its own default params fail validation at profile 'smoke': eps: Input should be less than or equal to 1 (got 3.0); eps is in [0, 1] pixel units: write 3/255 (= 0.0118) for 3 on the 0-255 scale\n")
def test_multi_document_matrix_runs_every_document_into_one_results_dir(tmp_path):
    m = tmp_path / "m.yaml"
    m.write_text(
        "name: a\ndataset: {name: digits, subset: 100}\nprofile: smoke\nattacks: [clean]\nvictims: [sl]\n"
        "---\n"
        "name: b\ndataset: {name: digits, subset: 100}\nprofile: smoke\nattacks: [clean, random-noise]\nvictims: [sl]\ndefenses: [iss-bdr]\n"
    )
    dry = bench("run", str(m), "--dry-run", "--results", str(tmp_path / "r"))
    assert dry.returncode == 0 and "document 1 of 2: matrix 'a': 1 attack jobs, 1 cells" in dry.stdout
    assert "document 2 of 2: matrix 'b': 2 attack jobs, 2 cells (poisons: 0 cached, 1 from an earlier document, 1 to generate;" in dry.stdout
    assert re.search(r"attack clean +\w+  generated by document 1\n", dry.stdout)  # priced once, in document 1
    p = bench("run", str(m), "--results", str(tmp_path / "r"), "--quiet")
    assert p.returncode == 0, p.stderr
    assert "all documents: 3 cells: 0 already done, 3 computed" in p.stderr
    assert len(list((tmp_path / "r" / "cells").glob("*.json"))) == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text(m.read_text() + "---\nname: c\ndataset: {name: npz, path: /no/such.npz}\nattacks: [clean]\nvictims: [sl]\n")
    p = bench("run", str(bad), "--results", str(tmp_path / "r2"))
    assert p.returncode == 2 and f"{bad}, document 3: npz: '/no/such.npz' does not exist" in p.stderr
    assert not (tmp_path / "r2" / "cells").exists()  # nothing ran: every document is checked first


def test_pipes_wrong_roots_and_audits_that_check_nothing_are_one_line_each(tmp_path):
    """`bench ... | head` stops quietly; `bench docs`, `bench status` and `bench audit` refuse what
    they cannot do (exit 2, one line) instead of reporting success."""
    import torch

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    piped = subprocess.run(f"'{sys.executable}' -m benchmark run examples/smoke.yaml --dry-run --verbose | head -n 1",
                           shell=True, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert piped.stdout.count("\n") == 1 and "Traceback" not in piped.stderr, piped.stderr
    docs = bench("docs", "--check", "--root", str(tmp_path))
    assert (docs.returncode, docs.stderr) == (2, f"error: --root {str(tmp_path)!r} is not a uebench checkout (no README.md there)\n")
    m = tmp_path / "npz.yaml"
    m.write_text(f"dataset: {{name: npz, path: {tmp_path}}}\nprofile: smoke\nattacks: [clean]\nvictims: [sl]\n")
    d = bench("run", str(m), "--dry-run", "--results", str(tmp_path / "r0"))
    assert d.returncode == 2 and f"npz: {str(tmp_path)!r} is a directory, not a file." in d.stderr, d.stderr
    afile = tmp_path / "afile"
    afile.write_text("x")
    st = bench("status", str(afile))
    assert (st.returncode, st.stderr) == (2, (f"error: results directory {str(afile)!r} is a file, not a directory; give the "
                                              "directory `bench run --results` wrote\n"))
    res = tmp_path / "res"
    assert bench("run", "examples/smoke.yaml", "--profile", "smoke", "--results", str(res), "--quiet").returncode == 0
    plain, smoke = bench("status", str(res), "examples/smoke.yaml"), bench("status", str(res), "examples/smoke.yaml", "--profile", "smoke")
    assert re.search(r"done\s+0\n", plain.stdout) and re.search(r"done\s+24\n", smoke.stdout), smoke.stdout  # the quick plan is not what ran
    bad = [(["--budget", "nan"], "--budget a finite number > 0"), (["--threads", "0"], "--threads must be >= 1")]
    if not torch.cuda.is_available():
        bad.append((["--device", "cuda"], "CUDA is not available here"))
    for args, says in bad:
        a = bench("audit", str(res), *args)
        assert a.returncode == 2 and says in a.stderr and a.stderr.count("\n") == 1, a.stderr
    nothing = bench("audit", str(res), "--budget", "0.0001")  # no cell fits: nothing is checked, so it does not pass
    assert nothing.returncode == 1 and "audit FAILED: it checked nothing" in nothing.stdout, nothing.stdout
