"""The plugin registry: built-ins and third-party packages, all through the same pluggy hooks.

``UEBENCH_PLUGINS`` (comma-separated module names) loads exactly those plugin modules instead of
the built-ins and the entry points: an explicit subset, e.g. for a reproducible environment or to
test one plugin alone.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pluggy

from benchmark import hookspecs
from benchmark.errors import PluginNotFound, UserError

KINDS = ("attack", "victim", "defense", "metric", "dataset", "model")
HOOKS = {k: f"register_{k}s" for k in KINDS}
ENV_VAR = "UEBENCH_PLUGINS"

#: Modules of the built-in plugins; each has hook implementations like any third-party package.
DEFAULT_PLUGINS = (
    "benchmark.builtins",
    "plugins.attacks",
    "plugins.victims",
    "plugins.defenses",
    "plugins.metrics",
)


@dataclass(frozen=True)
class Entry:
    """One registered plugin: its kind, name, the object (class or factory) and who provides it."""

    kind: str
    name: str
    obj: Any
    source: str  # module of the hook implementation
    package: str  # distribution providing it (``uebench`` for built-ins)

    @property
    def version(self) -> str:
        return str(getattr(self.obj, "version", "") or "")

    @property
    def missing(self) -> list[str]:
        fn = getattr(self.obj, "missing_requirements", None)
        return fn() if fn else []


class DuplicatePlugin(UserError):
    """Two sources register the same kind and name."""


class Registry:
    """Lookup of plugins by kind and name, with "did you mean" on unknown names."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self._entries: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
        dists = {id(plugin): dist.project_name for plugin, dist in pm.list_plugin_distinfo()}
        for kind, hook_name in HOOKS.items():
            hook = getattr(pm.hook, hook_name)
            for impl in reversed(hook.get_hookimpls()):  # registration order
                result = impl.function()
                if not result:
                    continue
                items = result.items() if isinstance(result, dict) else ((obj.name, obj) for obj in result)
                source = getattr(impl.plugin, "__name__", str(impl.plugin))
                package = dists.get(id(impl.plugin), "uebench")
                for name, obj in items:
                    old = self._entries[kind].get(name)
                    if old is not None:
                        raise DuplicatePlugin(
                            f"{kind} {name!r} is registered twice: by {old.source} ({old.package}) "
                            f"and by {source} ({package})"
                        )
                    self._entries[kind][name] = Entry(kind, name, obj, source, package)

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries[kind])

    def entry(self, kind: str, name: str) -> Entry:
        try:
            return self._entries[kind][name]
        except KeyError:
            raise PluginNotFound(kind, name, self._entries[kind]) from None

    def get(self, kind: str, name: str) -> Any:
        """The class (or model factory) registered as ``name``; unknown names raise :class:`PluginNotFound`."""
        entry = self.entry(kind, name)
        if entry.missing:
            raise UserError(
                f"{kind} {name!r} needs {', '.join(entry.missing)}; install it "
                f"(e.g. `pip install {' '.join(entry.missing)}`)"
            )
        return entry.obj

    def entries(self) -> list[Entry]:
        return [e for k in KINDS for e in sorted(self._entries[k].values(), key=lambda e: e.name)]


def make_plugin_manager(modules: list[str] | None = None, *, entry_points: bool = True) -> pluggy.PluginManager:
    """A plugin manager with the hook specs, the given (or default) modules and the entry points."""
    pm = pluggy.PluginManager("uebench")
    pm.add_hookspecs(hookspecs)
    env = os.environ.get(ENV_VAR)
    if modules is None and env:
        modules = [m.strip() for m in env.split(",") if m.strip()]
        entry_points = False
    for name in modules if modules is not None else DEFAULT_PLUGINS:
        try:
            mod = importlib.import_module(name)
        except ImportError as e:
            raise UserError(f"cannot import plugin module {name!r} (from {ENV_VAR} or defaults): {e}") from None
        pm.register(mod, name=name)
    if entry_points:
        pm.load_setuptools_entrypoints("uebench")
    return pm


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = Registry(make_plugin_manager())
    return _REGISTRY


def reset_registry(registry: Registry | None = None) -> None:
    """Replace (or drop, to rebuild on next use) the process-wide registry. For tests and tools."""
    global _REGISTRY
    _REGISTRY = registry


def plugin_modules(package: str) -> Callable[[], list[type]]:
    """Helper for built-in plugin packages: classes named in each submodule's ``PLUGINS`` list."""
    import pkgutil

    def collect() -> list[type]:
        pkg = importlib.import_module(package)
        out: list[type] = []
        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
            if info.name.startswith("_"):
                continue
            mod = importlib.import_module(f"{package}.{info.name}")
            out.extend(getattr(mod, "PLUGINS", ()))
        return out

    return collect
