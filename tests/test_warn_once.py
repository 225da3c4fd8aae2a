"""A warning about the installed plugins is printed once per `bench run`, not once per worker."""

from __future__ import annotations

from tests.test_cli import bench
from tests.test_registry import THIRD_PARTY, make_dist


def test_a_shadowed_built_in_is_warned_of_once_with_two_workers(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    make_dist(site, "uebench-dupclean", "0.1", "uebench_dupclean", THIRD_PARTY.format(name="clean"))
    m = tmp_path / "m.yaml"
    m.write_text("dataset: {name: digits, subset: 100}\nprofile: smoke\nattacks: [clean]\nvictims: [sl]\ndefenses: [none, iss-gray]\n")
    p = bench("run", str(m), "--results", str(tmp_path / "res"), "--quiet", "--workers", "2", path=(site,))
    assert p.returncode == 0 and "local executor: 2 workers" in p.stderr, p.stderr
    assert p.stderr.count("warning: attack 'clean' is uebench's own; uebench-dupclean 0.1 (uebench_dupclean)") == 1, p.stderr
