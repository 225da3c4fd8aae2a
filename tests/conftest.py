"""Shared fixtures: tiny synthetic data, and the quick-profile CIFAR-10 runs that slow tests share."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch

from benchmark.data.dataset import ImageDataset

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("UEBENCH_SHARED_DATA", REPO.parent / "shared" / "data"))
CIFAR_NPZ = SHARED_DATA / "cifar10-jpeg.npz"

# A suite started in the background of a shell without job control (`pytest ... &` in a script)
# inherits an ignored SIGINT, and so would every `bench run` it starts: the Ctrl-C tests would see
# a run that cannot be interrupted. A Python handler is reset to the default in the child on exec.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def tiny_dataset(n: int = 40, classes: int = 4, channels: int = 3, size: int = 8, seed: int = 0) -> ImageDataset:
    """A small learnable dataset: each class has its own mean colour, plus noise. uint8 ``[n, C, size, size]``."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    base = torch.linspace(40, 215, classes).view(classes, 1, 1, 1)
    x = base[y] + torch.randn(n, channels, size, size, generator=g) * 20
    return ImageDataset(x.clamp(0, 255).round().to(torch.uint8), y, tuple(f"c{i}" for i in range(classes)))


def pytest_configure(config: pytest.Config) -> None:
    """The kit's fixtures, also where this checkout is not the installed uebench (its ``pytest11``
    entry point then is not this code's)."""
    from benchmark.testing import pytest_plugin

    if config.pluginmanager.get_plugin("uebench") is None and not config.pluginmanager.is_registered(pytest_plugin):
        config.pluginmanager.register(pytest_plugin, "uebench")


@pytest.fixture
def tiny() -> ImageDataset:
    return tiny_dataset()


@pytest.fixture(autouse=True)
def _fresh_registry() -> Any:
    """Each test sees the registry built from the environment at that time."""
    from benchmark.registry import reset_registry

    reset_registry()
    yield
    reset_registry()


@pytest.fixture(autouse=True)
def _restore_torch_threads() -> Any:
    """A test that changes torch's thread count must not slow down every later test."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------------------------------ slow tests


def cifar_dataset() -> dict[str, Any]:
    """The quick-profile dataset: a class-balanced 5k subset of the shared CIFAR-10 (JPEG) npz,
    full 10k test set."""
    if not CIFAR_NPZ.exists():
        pytest.skip(f"shared CIFAR-10 data not found at {CIFAR_NPZ}")
    return {"name": "npz", "label": "cifar10-5k", "path": str(CIFAR_NPZ), "subset": 5000}


@pytest.fixture(scope="session")
def quick_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One results directory for every slow test of the session: poisons and cells are
    content-addressed, so a poison one test generated (EM...) is reused by the next."""
    path = os.environ.get("UEBENCH_TEST_RESULTS")
    return Path(path) if path else tmp_path_factory.mktemp("quick-results")


# The supervised victim of the slow tests: the quick profile with 10 epochs instead of 20 (about 40 s
# instead of 80 s per cell here), so CI stays under its time budget. The calibration
# (shared/reference/quick-scale-calibration.md) has 10-epoch figures: clean 63.8, EM-S 15.1.
SL = {"name": "sl", "params": {"epochs": 10}}


def run_quick(results: Path, **axes: Any) -> dict[tuple[str, str, str, int], dict[str, Any]]:
    """Run a quick-profile matrix on the CIFAR-10 5k subset; return the records by
    (attack, victim, defense, seed). ``axes``: attacks, victims, defenses, seeds, metrics."""
    from benchmark.config import parse_matrix, resolve
    from benchmark.registry import get_registry
    from benchmark.runner import Runner

    # two torch threads per job: the slow tests train inline on CI's 2 cores
    matrix = parse_matrix({"name": "slow-tests", "dataset": cifar_dataset(), "profile": "quick", "threads": 2, **axes})
    runner = Runner(resolve(matrix, get_registry()), results, progress=False)
    summary = runner.run()
    print(summary.text())
    out = {}
    for cell in runner.plan.cells:
        rec = runner.store.get(cell.key)
        assert rec is not None and rec["status"] == "ok", (cell.label, rec and rec.get("error"))
        out[(cell.job.attack.name, cell.victim.name, cell.defense.name, cell.seed)] = rec
    return out


def acc(records: dict, attack: str, victim: str = "sl", defense: str = "none", seed: int = 0) -> float:
    """Test accuracy in % of one cell."""
    return 100 * records[(attack, victim, defense, seed)]["metrics"]["accuracy"]
