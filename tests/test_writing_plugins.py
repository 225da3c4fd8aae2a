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


def test_worked_example_pyproject_is_the_whole_file():
    block = re.search(r"<!-- example: pyproject.toml -->\n```toml\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert block and block.group(1) == (EXAMPLE / "pyproject.toml").read_text(), "docs block pyproject.toml is stale"


def test_run_cell_row_names_every_argument():
    """The fixture table gives run_cell's whole signature, defaults included."""
    import inspect

    from benchmark.testing import run_cell

    row = next(line for line in DOC.read_text().splitlines() if line.startswith("| `uebench_run_cell` |"))
    for name, param in inspect.signature(run_cell).parameters.items():
        shown = f"{name}={param.default!r}".replace("'", '"')
        assert shown in row, shown


def test_streams_agree_with_the_scaffold():
    """The docs tell third-party plugins to number their own streams with ints; the scaffold does."""
    from benchmark.scaffold import MODULES

    assert "ctx.generator(0)" in DOC.read_text() and "ctx.generator(0)" in MODULES["attack"]
    assert not any('ctx.generator("' in text for text in MODULES.values())


def test_every_contract_is_documented():
    text = DOC.read_text()
    missing = [c for c in CONTRACTS if f"`{c}`" not in text]
    assert not missing


def test_uebench_never_imports_the_example():
    users = [p for p in (REPO / "benchmark").rglob("*.py") if "uebench_example" in p.read_text()]
    users += [p for p in (REPO / "plugins").rglob("*.py") if "uebench_example" in p.read_text()]
    assert not users
