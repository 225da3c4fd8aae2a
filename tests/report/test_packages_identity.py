"""Another package's plugin of the same name is another plugin: its records (their specs name the
package) make another table entry, and a line under a table speaks of "releases" only for
releases of one package."""

from __future__ import annotations

from collections import Counter
from typing import Any

from benchmark.report.leaderboard import render
from benchmark.report.packages import entry_line
from tests.report.test_packages import notes_of, rec, table

SPEC: dict[str, Any] = {"name": "dup", "version": "1", "params": {}}


def test_two_packages_plugins_of_one_name_are_two_entries_not_two_releases():
    mistakes, dupe = {"victim dup": "uebench-mistakes 0.1.0"}, {"victim dup": "uebench-dupe 0.3.0"}
    recs = [
        rec("em", "dup", "none", 0, 0.2, mistakes, victim_spec={**SPEC, "package": "uebench-mistakes"}),
        rec("em", "dup", "none", 0, 0.6, dupe, victim_spec={**SPEC, "package": "uebench-dupe"}),
        rec("em", "sl", "none", 0, 0.2, {}),
    ]
    md = render(recs, "r")
    assert "### victim `dup [uebench-mistakes]`: attacks × defenses" in md
    assert "### victim `dup [uebench-dupe]`: attacks × defenses" in md
    assert notes_of(table(md, "victim `dup [uebench-dupe]`: attacks × defenses")) == ["victim `dup [uebench-dupe]`: package uebench-dupe 0.3.0"]
    assert "different releases" not in md and "Mixed releases" not in md


def test_a_line_names_releases_of_one_package_and_different_packages_apart():
    releases = Counter({"uebench-foo 0.3.1": 2, "uebench_foo 0.3.0": 1})
    assert entry_line("victim", "foo", releases) == "victim `foo`: cells made by different releases: uebench-foo 0.3.1 (2 cells), uebench_foo 0.3.0 (1 cell)"
    packages = Counter({"uebench-mistakes 0.1.0": 2, "uebench-dupe 0.3.0": 1})  # records made before keys named the package
    assert entry_line("attack", "dup", packages) == "attack `dup`: cells made by different packages: uebench-mistakes 0.1.0 (2 cells), uebench-dupe 0.3.0 (1 cell)"
