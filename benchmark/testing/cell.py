"""A one-cell matrix run through the real runner, for a plugin's tests.

:func:`run_cell` builds a matrix of one attack, one victim, one defense and its metrics on a tiny
dataset, runs it with :class:`benchmark.runner.Runner` into a temporary (or given) results
directory, and returns the cell's record and poison: the code path ``bench run`` takes (budget
check, data/train/model stages, training trace, metric observers, the record). Every axis takes a
plugin class (registered for this run only, if it is not the installed plugin of its name: it then
shadows any installed or built-in plugin of that name, so the class under test is what runs), a
registered name, or ``(class_or_name, params)``; the defaults are the kit's own stubs
(:mod:`benchmark.testing.stubs`), so a test of one plugin needs nothing else installed.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from benchmark.data.dataset import ImageDataset
from benchmark.data.source import DatasetSource
from benchmark.hookspecs import hookimpl
from benchmark.interfaces import Attack, Defense, Metric, Poison, Victim
from benchmark.plugin import Plugin
from benchmark.registry import Unloadable

#: an axis entry: a plugin class, a registered name, or either with params
PluginRef = str | type[Plugin] | tuple[str | type[Plugin], dict[str, Any]]


class CellFailed(AssertionError):
    """The cell's record says ``failed``: the message holds the plugin's error and traceback."""


@dataclass
class CellRun:
    """What a one-cell run produced: the record ``bench run`` would store, and the poison."""

    record: dict[str, Any]
    poison: Poison | None
    results: Path
    registry: Any = field(repr=False, default=None)

    @property
    def status(self) -> str:
        return str(self.record["status"])

    @property
    def metrics(self) -> dict[str, float]:
        return dict(self.record.get("metrics") or {})

    @property
    def error(self) -> str | None:
        return self.record.get("error")

    @property
    def curves(self) -> list[dict[str, Any]]:
        return list(self.record.get("curves") or [])


#: the name of the plugin module of the classes a test passes to :func:`run_cell`
GIVEN = "benchmark.testing.cell:given"


class _Given:
    """A plugin module made of the classes a test passed in (those not installed already)."""

    __name__ = GIVEN

    def __init__(self, classes: list[type[Plugin]]) -> None:
        self.classes = classes

    def _of(self, kind: str) -> list[type | Unloadable]:
        """The given classes of ``kind`` (the registry checks each against its hook's kind)."""
        return [c for c in self.classes if getattr(c, "kind", None) == kind]

    @hookimpl
    def register_attacks(self) -> list[type[Attack] | Unloadable]:
        return self._of("attack")

    @hookimpl
    def register_victims(self) -> list[type[Victim] | Unloadable]:
        return self._of("victim")

    @hookimpl
    def register_defenses(self) -> list[type[Defense] | Unloadable]:
        return self._of("defense")

    @hookimpl
    def register_metrics(self) -> list[type[Metric] | Unloadable]:
        return self._of("metric")

    @hookimpl
    def register_datasets(self) -> list[type[DatasetSource] | Unloadable]:
        return self._of("dataset")


def _split(ref: PluginRef) -> tuple[str | type[Plugin], dict[str, Any]]:
    if isinstance(ref, tuple):
        obj, params = ref
        return obj, dict(params)
    return ref, {}


def cell_registry(classes: list[type[Plugin]]) -> Any:
    """The registry of a one-cell run: the environment's plugins (built-ins, entry points, or
    ``UEBENCH_PLUGINS``), the kit's stubs, and ``classes`` that are not the installed plugin of
    their name. Those are registered for this run only and shadow whatever plugin of their kind
    and name is installed (a built-in, a package's, a stub), so the class a test passes is the
    class that runs."""
    from benchmark.plugin_checks import class_problem
    from benchmark.registry import Registry, get_registry, make_plugin_manager
    from benchmark.testing import stubs

    env = get_registry()
    fresh = []
    for cls in classes:
        try:
            entry = env.entry(cls.kind, cls.name)
            # the installed plugin itself, usable or broken by its own fault (its error names its package)
            same = entry.obj is cls and (entry.error is None or class_problem(cls.kind, cls.name, cls) is not None)
        except Exception:  # noqa: BLE001 - not installed (or no usable name: the registry says why)
            same = False
        if not same and cls not in stubs.STUBS:
            fresh.append(cls)
    pm = make_plugin_manager()
    pm.add_module(stubs, "benchmark.testing.stubs")
    if fresh:
        pm.add_module(_Given(fresh), GIVEN)
    return Registry(pm, overriding=(GIVEN,))


def _dataset(data: Any, holdout: int | str) -> dict[str, Any]:
    from benchmark.testing.stubs import remember

    if data is None:
        return {"name": "kit-tiny", "holdout": holdout}
    if isinstance(data, dict):
        return {"holdout": holdout, **data}
    if isinstance(data, ImageDataset):
        from benchmark.testing.stubs import synthetic_dataset

        c, h, _ = data.shape
        test = synthetic_dataset(max(8, data.num_classes * 2), data.num_classes, h, 1, c)
        return {"name": "kit-memory", "digest": remember(data, test), "holdout": holdout}
    train, test = data
    return {"name": "kit-memory", "digest": remember(train, test), "holdout": holdout}


def run_cell(
    attack: PluginRef = "kit-clean",
    victim: PluginRef = "kit-supervised",
    defense: PluginRef = "kit-none",
    metric: PluginRef | list[PluginRef] = "kit-accuracy",
    *,
    data: ImageDataset | tuple[ImageDataset, ImageDataset] | dict[str, Any] | None = None,
    profile: str = "smoke",
    seed: int = 0,
    attack_seed: int = 0,
    holdout: int | str = 0,
    device: str = "cpu",
    results: str | Path | None = None,
    check: bool = True,
) -> CellRun:
    """Run one cell ``attack x victim x defense`` with ``metric`` (one or a list) through the runner.

    ``data``: ``None`` (the kit's synthetic 64 + 32 images, 4 classes, ``[3, 16, 16]``), a training
    :class:`ImageDataset` (a synthetic test split of its shape is added), ``(train, test)``, or a
    matrix ``dataset`` mapping such as ``{"name": "digits"}``. ``holdout``: clean images kept for
    model-stage defenses (a count or ``"25%"``). ``results``: the results directory (default: a
    fresh temporary one). With ``check`` (default) a failed cell raises :class:`CellFailed`
    with the plugin's error and traceback; an ``n/a`` cell (the defense does not apply to the
    victim) is returned as it is.
    """
    from benchmark.config import parse_matrix, resolve
    from benchmark.runner import Runner

    metrics = metric if isinstance(metric, list) else [metric]
    axes: dict[str, list[dict[str, Any]]] = {}
    classes: list[type[Plugin]] = []
    for field_, refs in (("attacks", [attack]), ("victims", [victim]), ("defenses", [defense]), ("metrics", metrics)):
        entries = []
        for ref in refs:
            obj, params = _split(ref)
            if isinstance(obj, type):
                classes.append(obj)
                obj = obj.name
            entries.append({"name": obj, "params": params})
        axes[field_] = entries
    registry = cell_registry(classes)
    threads = torch.get_num_threads()
    matrix = parse_matrix({
        "name": "kit-cell", "dataset": _dataset(data, holdout), "profile": profile, "seeds": [seed],
        "attack_seed": attack_seed, "device": device, "threads": threads, **axes,
    })
    root = Path(results) if results is not None else Path(tempfile.mkdtemp(prefix="uebench-cell-"))
    try:
        runner = Runner(resolve(matrix, registry), root, progress=False, log=lambda m: None)
        runner.run()
        cell = runner.plan.cells[0]
        record = runner.store.get(cell.key)
        assert record is not None, "the runner stored no record"
        poison: Poison | None = None
        try:
            if record["status"] != "n/a":
                poison = runner.poison(cell.job)  # generated once: from the runner's memory or cache
        except Exception:  # noqa: BLE001, S110 - the attack itself failed: the record says how
            pass
    finally:
        torch.set_num_threads(threads)
    run = CellRun(record, poison, root, registry)
    if check and run.status == "failed":
        raise CellFailed(f"cell {cell.label} failed: {run.error}\n{record.get('traceback', '')}")
    return run
