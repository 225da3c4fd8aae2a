"""Built-in metric plugins: one module each; every module lists its classes in ``PLUGINS``."""

from __future__ import annotations

from benchmark.hookspecs import hookimpl
from benchmark.interfaces import Metric
from benchmark.registry import Unloadable, plugin_modules

_collect = plugin_modules(__name__)


@hookimpl
def register_metrics() -> list[type[Metric] | Unloadable]:
    return _collect()
