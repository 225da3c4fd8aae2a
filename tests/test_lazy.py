"""The flat API imported on first use (`benchmark/lazy.py`): the same names, and commands that read
records start without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import benchmark
import benchmark.data
from benchmark.lazy import typing_imports
from tests.test_cli import REPO


def _fresh(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("package", [benchmark, benchmark.data])
def test_every_public_name_resolves_to_the_object_its_typing_import_names(package):
    import importlib

    where = typing_imports(Path(package.__file__).read_text())
    assert set(package.__all__) - {"__version__"} == set(where)
    for name in package.__all__:
        if name != "__version__":
            assert getattr(package, name) is getattr(importlib.import_module(where[name]), name)
    with pytest.raises(AttributeError, match="has no attribute 'Atack'"):
        package.Atack  # noqa: B018


def test_typing_imports_reads_only_the_type_checking_block():
    src = ("from typing import TYPE_CHECKING\nfrom a import b\nif TYPE_CHECKING:\n    from x.y import P, Q as R\n"
           "    import z\nif other:\n    from w import V\n")
    assert typing_imports(src) == {"P": "x.y", "R": "x.y"}


def test_the_package_and_the_record_commands_import_no_torch(tmp_path):
    """`bench claims` and `bench status` read JSON records: they start in about a second instead of
    paying for torch's import (several seconds on a slow CPU)."""
    p = _fresh("import sys, benchmark, benchmark.data\nassert 'torch' not in sys.modules\n"
               "from benchmark import ImageDataset\nassert 'torch' in sys.modules and ImageDataset.__name__ == 'ImageDataset'")
    assert p.returncode == 0, p.stderr
    res = REPO / "results" / "cifar10-quick"
    p = _fresh("import sys\nfrom benchmark.cli import main\n"
               f"main(['claims', {str(res)!r}, '--out', {str(tmp_path / 'C.md')!r}]); main(['status', {str(res)!r}])\n"
               "assert 'torch' not in sys.modules, 'torch was imported'")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "C.md").exists()
