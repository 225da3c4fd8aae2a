"""The report's modules stay under the project's 500 lines, one concept each."""

from __future__ import annotations

from pathlib import Path

import benchmark.report

REPORT = Path(benchmark.report.__file__).parent


def test_every_report_module_is_under_500_lines():
    sizes = {p.name: len(p.read_text().splitlines()) for p in REPORT.glob("*.py")}
    assert {name: n for name, n in sizes.items() if n >= 500} == {}


def test_numeric_environments_and_poison_generations_are_their_own_module():
    from benchmark.report import environments, records

    for name in ("numerics", "environments", "poison_generations", "POISON"):
        assert hasattr(environments, name) and not hasattr(records, name), name
