"""The plugin kit: what a plugin author tests their plugin with.

::

    from benchmark.testing import check_plugin, run_cell
    check_plugin(MyAttack)                  # every contract of its kind; ContractError names the one broken
    run = run_cell(attack=MyAttack)         # one cell through the real runner, with the kit's stub victim
    assert run.metrics["kit-accuracy"] < 0.5

Installed with uebench, :mod:`benchmark.testing.pytest_plugin` gives every pytest session the
fixtures ``uebench_tiny`` (a tiny dataset), ``uebench_run_cell`` (:func:`run_cell` into the test's
temporary directory) and ``uebench_check_plugin``. The kit depends on the core only: its stub
attacks, victims, defense, metric and dataset (:mod:`benchmark.testing.stubs`) stand in for the
built-ins. See docs/writing-plugins.md.
"""

from __future__ import annotations

from benchmark.testing.cell import CellFailed, CellRun, run_cell
from benchmark.testing.contracts import (
    CONTRACTS,
    ContractError,
    check_attack,
    check_declaration,
    check_defense,
    check_metric,
    check_plugin,
    check_victim,
    smoke_context,
    smoke_instance,
)
from benchmark.testing.stubs import (
    KitAccuracy,
    KitClean,
    KitContrastive,
    KitNoise,
    KitNone,
    KitSupervised,
    TinyData,
    synthetic_dataset,
)

__all__ = [
    "CONTRACTS",
    "CellFailed",
    "CellRun",
    "ContractError",
    "KitAccuracy",
    "KitClean",
    "KitContrastive",
    "KitNoise",
    "KitNone",
    "KitSupervised",
    "TinyData",
    "check_attack",
    "check_declaration",
    "check_defense",
    "check_metric",
    "check_plugin",
    "check_victim",
    "run_cell",
    "smoke_context",
    "smoke_instance",
    "synthetic_dataset",
]
