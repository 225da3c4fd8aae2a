"""The report in a real browser: headless Chromium opens the site from disk, the tables render,
clicking a header sorts, typing in the filter filters, a cell links to its page, and the
screenshot is a real page of the right size. Skipped where Chromium is not installed (CI installs
Debian's ``chromium`` package)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.report import write_report
from tests.report.browser import Browser, chromium_path, dump_dom
from tests.report.synthetic import small_matrix, write

pytestmark = pytest.mark.skipif(chromium_path() is None, reason="needs Chromium (Debian: apt-get install chromium; .ci/run installs it)")

TABLE = "#toy-quick--defense-none"
LABELS = f"Array.from(document.querySelectorAll('{TABLE} tbody tr')).filter(r => r.offsetParent !== null).map(r => r.cells[0].textContent)"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write(tmp_path_factory.mktemp("results"), small_matrix())
    write_report(root, root / "report", poisons=False)
    return root / "report"


def test_dump_dom_renders_every_table(site: Path) -> None:
    dom = dump_dom((site / "index.html").as_uri())
    n = len(json.loads((site / "tables.json").read_text())["tables"])
    assert dom.count('<table class="sortable"') == n and "15.0 ⚠1/2" in dom


def test_sort_filter_link_and_screenshot(site: Path, tmp_path: Path) -> None:
    import numpy as np
    from matplotlib.image import imread

    with Browser(width=1280, height=900) as b:
        b.open((site / "index.html").as_uri())
        n = len(json.loads((site / "tables.json").read_text())["tables"])
        assert b.eval("document.querySelectorAll('table.sortable').length") == n
        assert b.eval(LABELS) == ["clean", "em", "tap"]
        cells = b.eval(f"Array.from(document.querySelectorAll('{TABLE} tbody tr:nth-child(2) td')).map(td => td.textContent)")
        assert cells == ["15.0 ⚠1/2", "50.5 ± 0.7", "50.5 ⚠"]
        # a real click on the "sl" header: ascending by value, the failed group last; again: descending
        b.click(f"{TABLE} thead th:nth-child(2)")
        assert b.eval(LABELS) == ["em", "clean", "tap"]
        assert b.eval(f"document.querySelector('{TABLE} thead th:nth-child(2)').getAttribute('aria-sort')") == "ascending"
        b.click(f"{TABLE} thead th:nth-child(2)")
        assert b.eval(LABELS) == ["clean", "em", "tap"]
        b.click(f"{TABLE} thead th:nth-child(1)")  # by name
        assert b.eval(LABELS) == ["clean", "em", "tap"]
        b.click(f"{TABLE} thead th:nth-child(1)")
        assert b.eval(LABELS) == ["tap", "em", "clean"]
        # typing in the filter box keeps the matching rows of every table
        b.click("#filter")
        b.call("Input.insertText", session=True, text="em")
        assert b.eval(LABELS) == ["em"]
        assert b.eval("document.querySelectorAll('tbody tr:not(.hidden)').length") == n  # one em row per table
        b.eval("var f=document.getElementById('filter'); f.value=''; f.dispatchEvent(new Event('input'))")
        # the screenshot: the page as a reader sees it
        b.eval("window.scrollTo(0, 0)")
        shot = b.screenshot(tmp_path / "index.png")
        img = imread(shot)
        assert img.shape[:2] == (900, 1280)
        rgb = (img[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
        assert len(np.unique(rgb, axis=0)) > 100  # text, tables, a heatmap: not a blank page
        assert (rgb.min(axis=1) < 200).mean() > 0.03  # dark pixels: text is drawn
        # a cell links to its group's page, which opens
        assert b.eval(LABELS)[0] == "tap"  # still sorted by name, descending
        b.click(f"{TABLE} tbody tr:nth-child(1) td:nth-child(2) a")  # tap x sl: failed
        b.wait_event("Page.loadEventFired")
        assert b.eval("document.querySelector('h1').textContent") == "tap × sl × none"
        assert "RuntimeError: tap crashed" in b.eval("document.body.innerText")
