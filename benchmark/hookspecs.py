"""The whole plugin API: pluggy hook specifications of the ``uebench`` project.

A plugin module implements any of these with ``@benchmark.hookimpl`` and is found through the
``uebench`` entry-point group::

    [project.entry-points.uebench]
    foo = "uebench_foo"

Each hook returns a list of plugin classes (``register_models``: a dict of name -> factory).
Built-in plugins are registered through exactly these hooks (see ``benchmark.registry.DEFAULT_PLUGINS``).
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy
from torch import nn

hookspec = pluggy.HookspecMarker("uebench")
hookimpl = pluggy.HookimplMarker("uebench")


@hookspec
def register_attacks() -> list[type]:
    """Attack classes (subclasses of :class:`benchmark.Attack`)."""


@hookspec
def register_victims() -> list[type]:
    """Victim classes (subclasses of :class:`benchmark.Victim`)."""


@hookspec
def register_defenses() -> list[type]:
    """Defense classes (subclasses of :class:`benchmark.Defense`)."""


@hookspec
def register_metrics() -> list[type]:
    """Metric classes (subclasses of :class:`benchmark.Metric`)."""


@hookspec
def register_datasets() -> list[type]:
    """Dataset sources (subclasses of :class:`benchmark.DatasetSource`)."""


@hookspec
def register_executors() -> list[type]:
    """Executor classes (subclasses of :class:`benchmark.Executor`): how a matrix's jobs run."""


@hookspec
def register_models() -> dict[str, Callable[[int], nn.Module]]:
    """Architectures: name -> ``factory(in_channels)`` returning a backbone with ``feature_dim``."""
