"""The whole plugin API: pluggy hook specifications of the ``uebench`` project.

A plugin module implements any of these with ``@benchmark.hookimpl`` and is found through the
``uebench`` entry-point group::

    [project.entry-points.uebench]
    foo = "uebench_foo"

Each hook returns a list of plugin classes of its kind (``register_models``: a dict of name ->
factory). A class that could not be loaded (e.g. its module failed to import) may be returned as a
:class:`benchmark.registry.Unloadable` in its place: it is listed as broken, the others load. The
registry also accepts a tuple, and checks every entry (a class of the wrong kind is listed as
broken, never raised).
Built-in plugins are registered through exactly these hooks (see ``benchmark.registry.DEFAULT_PLUGINS``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy
from torch import nn

if TYPE_CHECKING:
    from benchmark.data.source import DatasetSource
    from benchmark.executor import Executor
    from benchmark.interfaces import Attack, Defense, Metric, Victim
    from benchmark.registry import Unloadable

hookspec = pluggy.HookspecMarker("uebench")
hookimpl = pluggy.HookimplMarker("uebench")


@hookspec
def register_attacks() -> list[type[Attack] | Unloadable]:
    """Attack classes (subclasses of :class:`benchmark.Attack`)."""


@hookspec
def register_victims() -> list[type[Victim] | Unloadable]:
    """Victim classes (subclasses of :class:`benchmark.Victim`)."""


@hookspec
def register_defenses() -> list[type[Defense] | Unloadable]:
    """Defense classes (subclasses of :class:`benchmark.Defense`)."""


@hookspec
def register_metrics() -> list[type[Metric] | Unloadable]:
    """Metric classes (subclasses of :class:`benchmark.Metric`)."""


@hookspec
def register_datasets() -> list[type[DatasetSource] | Unloadable]:
    """Dataset sources (subclasses of :class:`benchmark.DatasetSource`)."""


@hookspec
def register_executors() -> list[type[Executor] | Unloadable]:
    """Executor classes (subclasses of :class:`benchmark.Executor`): how a matrix's jobs run."""


@hookspec
def register_models() -> dict[str, Callable[[int], nn.Module]]:
    """Architectures: name -> ``factory(in_channels)`` returning a backbone with ``feature_dim``."""
