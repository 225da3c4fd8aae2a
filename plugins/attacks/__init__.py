"""Built-in attack plugins: one module each; every module lists its classes in ``PLUGINS``."""

from __future__ import annotations

from benchmark.hookspecs import hookimpl
from benchmark.interfaces import Attack
from benchmark.registry import Unloadable, plugin_modules

_collect = plugin_modules(__name__)


@hookimpl
def register_attacks() -> list[type[Attack] | Unloadable]:
    return _collect()
