"""A report over 5,000 cells stays fast: tables, exports and 2,500 cell-group pages in a few CPU
seconds; its figures drawn once, and none again while the data stays."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from benchmark.report import write_report
from tests.report.synthetic import record


def big_results(root: Path, seed: int = 0) -> Path:
    """25 attacks x 10 victims x 10 defenses x 2 seeds = 5,000 records, 1% failed, with curves and
    two certificate outputs (written without fsync: this is about the report, not the store)."""
    rng = random.Random(seed)
    (root / "cells").mkdir(parents=True)
    for a in range(25):
        for v in range(10):
            for d in range(10):
                for s in range(2):
                    status = "failed" if rng.random() < 0.01 else "ok"
                    r = record(f"attack{a:02d}", f"victim{v}", f"defense{d}", s, rng.random(), status=status,
                               extra={"certified@0.001": 100 * rng.random(), "certified@0.002": 100 * rng.random()})
                    (root / "cells" / f"{r['key']}.json").write_text(json.dumps(r))
    return root


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return big_results(tmp_path_factory.mktemp("big"))


def test_5000_cells_tables_and_pages_in_seconds(big: Path, tmp_path: Path) -> None:
    t0 = time.process_time()
    rep = write_report(big, tmp_path / "site", figures=False)
    cpu = time.process_time() - t0
    print(f"5,000 cells without figures: {cpu:.1f} s CPU, {rep.seconds:.1f} s wall; {rep.text()}")
    assert rep.pages == 2500 and rep.tables == 10 + 10 + 1 + 2
    assert cpu < 15  # measured 2.2 s CPU on the 2-core VM
    html = (tmp_path / "site" / "index.html").read_text()
    assert html.count("<tr data-i=") == 23 * 25


@pytest.mark.slow
def test_5000_cells_with_figures(big: Path, tmp_path: Path) -> None:
    t0 = time.process_time()
    rep = write_report(big, tmp_path / "site", poisons=False)
    first = time.process_time() - t0
    t0 = time.process_time()
    again = write_report(big, tmp_path / "site", poisons=False)
    second = time.process_time() - t0
    print(f"5,000 cells with figures: first {first:.1f} s CPU ({rep.text()}); again {second:.1f} s CPU ({again.text()})")
    # The behaviour: 40 figures drawn once, none redrawn while the data stays. How long the first
    # drawing takes is a speed target, not a unit test (the guide: targets live in benchmarks/); it
    # read 162 s of CPU on the AMD EPYC of 2026-12-04 and under 120 s on the Intel VM before.
    assert rep.figures == 40 and again.drawn == 0
