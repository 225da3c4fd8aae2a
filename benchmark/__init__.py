"""uebench: a benchmark of availability poisoning (unlearnable examples).

The flat public API: plugin contracts (executors too), data, models, training helpers and the registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmark.lazy import lazy_api

__version__ = "0.1.0"

__all__ = [
    "Attack",
    "Budget",
    "CellArtifacts",
    "Classifier",
    "ConfigError",
    "DataSplits",
    "DatasetError",
    "DatasetSource",
    "Defense",
    "Executor",
    "ImageDataset",
    "Metric",
    "Params",
    "Plugin",
    "PluginNotFound",
    "Poison",
    "RunContext",
    "RunOptions",
    "TrainHooks",
    "Unit",
    "UserError",
    "Victim",
    "__version__",
    "build_backbone",
    "build_classifier",
    "get_registry",
    "hookimpl",
    "make_splits",
    "release",
]

if TYPE_CHECKING:
    from benchmark.data import DatasetSource, DataSplits, ImageDataset, make_splits
    from benchmark.errors import ConfigError, DatasetError, PluginNotFound, UserError
    from benchmark.executor import Executor, RunOptions
    from benchmark.hookspecs import hookimpl
    from benchmark.interfaces import (
        Attack,
        Budget,
        CellArtifacts,
        Defense,
        Metric,
        Poison,
        RunContext,
        TrainHooks,
        Unit,
        Victim,
        release,
    )
    from benchmark.models import Classifier, build_backbone, build_classifier
    from benchmark.params import Params
    from benchmark.plugin import Plugin
    from benchmark.registry import get_registry

# imported on first use (benchmark/lazy.py): `bench claims`, `leaderboard`, `docs` and `status` need no torch
__getattr__ = lazy_api(globals())
