"""docs/writing-plugins.md stays true: its worked example is the example package's code, every
contract it documents is one the kit checks, and uebench never imports the example package."""

from __future__ import annotations

import re
from pathlib import Path

from benchmark.testing import CONTRACTS

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "writing-plugins.md"
EXAMPLE = REPO / "examples" / "plugins" / "uebench-example"


def test_worked_example_is_the_example_package():
    text = DOC.read_text()
    for name in ("__init__.py", "orthogonal_projection.py"):
        block = re.search(rf"<!-- example: {re.escape(name)} -->\n```python\n(.*?)```", text, re.DOTALL)
        assert block, name
        assert block.group(1) == (EXAMPLE / "src" / "uebench_example" / name).read_text(), f"docs block {name} is stale"


def test_every_contract_is_documented():
    text = DOC.read_text()
    missing = [c for c in CONTRACTS if f"`{c}`" not in text]
    assert not missing


def test_uebench_never_imports_the_example():
    users = [p for p in (REPO / "benchmark").rglob("*.py") if "uebench_example" in p.read_text()]
    users += [p for p in (REPO / "plugins").rglob("*.py") if "uebench_example" in p.read_text()]
    assert not users
