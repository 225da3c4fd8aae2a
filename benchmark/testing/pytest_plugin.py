"""uebench's pytest plugin (entry point ``pytest11``: loaded in every pytest session where uebench
is installed). Fixtures for a plugin package's tests:

``uebench_tiny``
    a tiny learnable dataset, uint8 ``[64, 3, 16, 16]``, 4 classes (:func:`benchmark.testing.synthetic_dataset`);
``uebench_run_cell``
    :func:`benchmark.testing.run_cell` writing into the test's ``tmp_path``:
    ``uebench_run_cell(attack=MyAttack, victim="kit-supervised", defense="kit-none", metric="kit-accuracy")``;
``uebench_check_plugin``
    :func:`benchmark.testing.check_plugin`: every contract of a plugin class's kind.

Every fixture restores torch's thread count after the test (the runner sets it per job).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def uebench_tiny() -> Any:
    from benchmark.testing import synthetic_dataset

    return synthetic_dataset()


@pytest.fixture
def uebench_run_cell(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    import torch

    from benchmark.testing import run_cell

    threads = torch.get_num_threads()

    def run(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("results", tmp_path / "uebench-results")  # one per test: poisons are reused within it
        return run_cell(*args, **kwargs)

    yield run
    torch.set_num_threads(threads)


@pytest.fixture
def uebench_check_plugin() -> Iterator[Callable[..., Any]]:
    import torch

    from benchmark.testing import check_plugin

    threads = torch.get_num_threads()
    yield check_plugin
    torch.set_num_threads(threads)
