"""The plugin registry: built-ins and third-party packages, all through the same pluggy hooks.

``UEBENCH_PLUGINS`` (comma-separated module names) loads exactly those plugin modules instead of
the built-ins and the entry points: an explicit subset, e.g. for a reproducible environment or to
test one plugin alone.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import weakref
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from typing import Any

import pluggy

from benchmark import hookspecs
from benchmark.errors import PluginNotFound, UserError
from benchmark.plugin_checks import class_problem, name_problem

KINDS = ("attack", "victim", "defense", "metric", "dataset", "executor", "model")
HOOKS = {k: f"register_{k}s" for k in KINDS}
ENV_VAR = "UEBENCH_PLUGINS"
#: how the ``local`` executor's worker processes are named (``uebench-worker-0``...): they print
#: no warning about a shadowed name, which the ``bench run`` that started them printed once
LOCAL_WORKER = "uebench-worker-"

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
    """One registered plugin: its kind, name, the object (class or factory) and who provides it.

    ``error`` is set when the plugin is broken (its module failed to import, its hook raised, its
    class has no ``name``, its own defaults fail validation, its name is taken): ``bench plugins``
    lists it with that one-line reason, a matrix naming it gets the reason as its error, and every
    other plugin works as usual.
    """

    kind: str
    name: str
    obj: Any
    source: str  # module of the hook implementation
    package: str  # distribution providing it (``uebench`` for built-ins)
    package_version: str = ""
    error: str | None = None

    @property
    def version(self) -> str:
        return str(getattr(self.obj, "version", "") or "")

    @property
    def missing(self) -> list[str]:
        fn = getattr(self.obj, "missing_requirements", None)
        return fn() if fn else []

    @property
    def origin(self) -> str:
        """``package version`` (``uebench`` for built-ins), as error messages name it."""
        return f"{self.package} {self.package_version}".strip()

    @property
    def key_package(self) -> str | None:
        """The distribution a cache key names for this plugin (:func:`key_package`): its
        normalized name, ``None`` for uebench's own plugins and for a module no installed
        distribution provides (a plain module in ``UEBENCH_PLUGINS``, a class a test defines)."""
        if self.package in ("uebench", "?", "") or _uebench_code(self.obj):
            return None
        return normalized_package(self.package)


def normalized_package(name: str) -> str:
    """A distribution's name as keys compare it (PEP 503: ``Uebench_Foo`` -> ``uebench-foo``), so
    that another build tool's spelling of the same project keeps its keys."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _uebench_code(obj: Any) -> bool:
    """Whether ``obj`` is defined in uebench itself (``benchmark``, ``plugins``): a built-in class
    keeps its keys whichever module registers it."""
    return str(getattr(obj, "__module__", "") or "").split(".")[0] in ("benchmark", "plugins")


def _own_module(entry: Entry) -> bool:
    """Whether ``entry`` was registered by the package that defines its class (the same top-level
    module): only that registration says which distribution the class's keys name."""
    top = str(getattr(entry.obj, "__module__", "") or "").split(".")[0]
    return bool(top) and top == str(entry.source).split(":")[0].split(".")[0]


#: plugin class -> the distribution its cache keys name (:func:`key_package`), set by every
#: :class:`Registry` built for the classes it holds (one class comes from one distribution)
_KEY_PACKAGES: weakref.WeakKeyDictionary[type, str] = weakref.WeakKeyDictionary()


def key_package(cls: type) -> str | None:
    """The installed distribution that provides plugin class ``cls``, as its cache keys name it
    (:meth:`benchmark.plugin.Plugin.spec`): two packages that each provide a plugin of one name
    and version are two plugins, with different keys. ``None`` for uebench's own plugins (their
    specs and keys predate this and stay as they were), for a plain module (no distribution) and
    for a class no registry holds. A class given to the plugin kit that shadows an installed plugin
    of its name is named by its module and class (``tests.test_mine.MyEM``)."""
    return _KEY_PACKAGES.get(cls)


class DuplicatePlugin(UserError):
    """Two sources register the same kind and name."""


class BrokenPlugin(UserError):
    """A matrix names a plugin that is installed but broken; the message names it, its
    distribution and the reason."""


@dataclass(frozen=True)
class Unloadable:
    """What a ``register_*`` hook may return in place of a class that could not be loaded (e.g. one
    module of a plugin package failed to import): listed as broken, the hook's other classes load."""

    name: str
    error: str


def _machinery(filename: str) -> bool:
    parts = os.path.normpath(filename).split(os.sep)
    return filename.startswith("<") or "importlib" in parts or filename == __file__ or parts[-2:] == ["metadata", "__init__.py"]


def one_line(err: BaseException, limit: int = 300) -> str:
    """``Type: first line of the message (at file:line)``, at most ``limit`` characters: how a
    plugin's failure is shown wherever it is listed."""
    import traceback

    msg = str(err).strip().splitlines()
    text = f"{type(err).__name__}: {msg[0]}" if msg else type(err).__name__
    frames = [f for f in traceback.extract_tb(err.__traceback__) if not _machinery(f.filename)] if err.__traceback__ else []
    if frames:  # where it happened in the plugin's code (not in importlib or in this registry)
        f = frames[-1]
        text += f" (at {os.path.basename(f.filename)}:{f.lineno})"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _shown(obj: Any) -> str:
    """``obj`` as a message quotes a value a plugin returned: its repr, or its type and repr."""
    from benchmark.errors import shorten

    text = shorten(obj, 60)
    return text if isinstance(obj, (str, int, float, type(None))) else f"{type(obj).__name__} {text}"


def _closest(value: str, allowed: Any) -> str:
    import difflib

    close = difflib.get_close_matches(value, list(allowed), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


#: an unknown name's error quotes the reasons of at most this many broken packages (more: a count)
QUOTED_SUSPECTS = 2


def _package_of(e: Entry) -> str:
    """The distribution of a broken entry (its module where no distribution is known)."""
    return e.package if e.package not in ("?", "") else e.source


def _short(error: str | None, limit: int = 160) -> str:
    from benchmark.errors import clip

    return clip(" ".join((error or "").split()), limit)


def _local_worker() -> bool:
    """Whether this process is a worker of the ``local`` executor (benchmark.executors.local names
    them so): the ``bench run`` that started it resolved the same matrix and printed the warnings."""
    import multiprocessing

    return multiprocessing.current_process().name.startswith(LOCAL_WORKER)


class Registry:
    """Lookup of plugins by kind and name, with "did you mean" on unknown names.

    Built from a plugin manager (:func:`make_plugin_manager`); one broken plugin never stops the
    others (see :class:`Entry`). Built-ins win name clashes with third-party packages; two third-party
    packages that claim one name both lose it (the error names both). The plugins of the modules
    named in ``overriding`` win every clash instead: they shadow any other plugin of their name,
    which this registry then leaves out (the plugin kit's classes under test,
    :func:`benchmark.testing.cell.cell_registry`).
    """

    def __init__(self, pm: pluggy.PluginManager, *, overriding: Collection[str] = ()) -> None:
        self.pm = pm
        self._overriding = frozenset(overriding)
        self._entries: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
        self._broken: list[Entry] = list(getattr(pm, "broken", []))
        self._shadowed: list[Entry] = []
        self._warned: set[tuple[str, str]] = set()
        dists: dict[int, tuple[str, str]] = dict(getattr(pm, "dists", {}))
        for plugin, dist in pm.list_plugin_distinfo():  # registered by pluggy's own loader
            dists.setdefault(id(plugin), (dist.project_name, dist.version))
        for kind, hook_name in HOOKS.items():
            hook = getattr(pm.hook, hook_name)
            for impl in hook.get_hookimpls():  # registration order
                source = getattr(impl.plugin, "__name__", str(impl.plugin))
                package, pversion = dists.get(id(impl.plugin), ("uebench", ""))

                def broken(
                    name: str, error: str, obj: Any = None, *, kind: str = kind, source: str = source, package: str = package, pversion: str = pversion
                ) -> None:
                    self._broken.append(Entry(kind, name, obj, source, package, pversion, error))

                try:
                    result = impl.function()
                except Exception as e:  # noqa: BLE001 - a third party's hook: isolate it
                    broken(source, f"{hook_name}() raised {one_line(e)}")
                    continue
                if not result:
                    continue
                if isinstance(result, dict):
                    items: list[tuple[Any, Any]] = list(result.items())
                elif isinstance(result, (list, tuple)):
                    items = [(o.name, o) if isinstance(o, Unloadable) else (getattr(o, "name", None), o) for o in result]
                else:
                    broken(source, f"{hook_name}() returned {type(result).__name__}, not a list of plugin classes")
                    continue
                for name, obj in items:
                    if isinstance(obj, Unloadable):
                        broken(name, obj.error)
                        continue
                    if kind != "model" and not isinstance(obj, type):  # a name, an instance: "has no `name`" would mislead
                        why = f"{hook_name}() returned {_shown(obj)}, not a class (return the plugin classes themselves)"
                        if isinstance(name, str) and name_problem(name) is None:  # an instance: a matrix naming it gets why
                            self._add(Entry(kind, name, obj, source, package, pversion, why))
                        else:
                            broken(f"<{type(obj).__name__}>", why, obj)
                        continue
                    problem = class_problem(kind, name, obj)
                    if problem and not (isinstance(name, str) and name.strip()):
                        label = getattr(obj, "__qualname__", type(obj).__name__)
                        broken(f"<{label}>", f"class {label} {problem}", obj)
                        continue
                    self._add(Entry(kind, name, obj, source, package, pversion, problem))
        self._key_packages()

    def _key_packages(self) -> None:
        """Record what the keys of the classes this registry holds name (:func:`key_package`). A
        class of an ``overriding`` module keeps what an installed registry said of it; one that
        shadows another plugin is keyed by its module and class name, so that it never shares a
        result with the plugin it shadows (a test's subclass of a built-in, same params)."""
        shadowed = {(e.kind, e.name) for e in self._shadowed}
        for entries in self._entries.values():
            for held in entries.values():
                if not isinstance(held.obj, type):
                    continue
                if held.source in self._overriding:
                    if held.obj not in _KEY_PACKAGES and (held.kind, held.name) in shadowed:
                        _KEY_PACKAGES[held.obj] = f"{held.obj.__module__}.{held.obj.__qualname__}"
                elif not _own_module(held):  # another package's (a bundle's) or a plain module's registration
                    continue  # of a class: its own package decides its keys, not the last registry built
                elif (stamp := held.key_package) is None:
                    _KEY_PACKAGES.pop(held.obj, None)
                else:
                    _KEY_PACKAGES[held.obj] = stamp

    def _add(self, new: Entry) -> None:
        old = self._entries[new.kind].get(new.name)
        if old is None:
            self._entries[new.kind][new.name] = new
            return
        if (old.source in self._overriding) != (new.source in self._overriding):  # the given class shadows the other
            given, other = (old, new) if old.source in self._overriding else (new, old)
            self._entries[new.kind][new.name] = given
            self._shadowed.append(other)
            self._broken = [b for b in self._broken if not (b.kind == new.kind and b.name == new.name)]  # e.g. two packages' clash
            return
        if (old.source in DEFAULT_PLUGINS) != (new.source in DEFAULT_PLUGINS):  # a built-in keeps its name
            builtin, other = (old, new) if old.source in DEFAULT_PLUGINS else (new, old)
            self._entries[new.kind][new.name] = builtin
            self._broken.append(replace(other, error=f"duplicate of the built-in {new.kind} {new.name!r}; rename it"))
            return
        clash = f"{new.kind} {new.name!r} is registered twice: by {old.source} ({old.origin}) and by {new.source} ({new.origin})"
        self._entries[new.kind][new.name] = replace(old, error=clash)
        self._broken.append(replace(new, error=clash))

    def names(self, kind: str) -> list[str]:
        """Names of the plugins of ``kind`` that load (broken ones are in :meth:`broken`)."""
        return sorted(n for n, e in self._entries[kind].items() if e.error is None)

    def entry(self, kind: str, name: str) -> Entry:
        try:
            return self._entries[kind][name]
        except KeyError:
            raise PluginNotFound(kind, name, self.names(kind), hint=self._broken_hint(kind, name)) from None

    def _broken_hint(self, kind: str, name: str) -> str:
        """For an unknown name: the broken packages that may have provided it."""
        suspects = [e for e in self._broken if e.kind in (kind, "module") and (e.name == name or e.kind == "module" or e.name.startswith("<"))]
        if not suspects:
            return ""
        # the plugin itself, else a module, entry point or distribution named after it (``uebench_foo``,
        # ``uebench-foo`` for ``foo``); else the reasons of a few packages, or only their count
        e = next((s for s in suspects if s.name == name), None) or next(
            (s for s in suspects if any(n.replace("_", "-").endswith("-" + name) for n in (s.name, s.source, s.package))), None)
        packages: dict[str, list[Entry]] = {}  # a distribution with two broken modules is one package
        for s in suspects:
            packages.setdefault(_package_of(s), []).append(s)
        if e is None:
            n = len(packages)
            if n > QUOTED_SUSPECTS:
                return f"; {n} broken plugin packages might provide it (see `bench plugins`)"

            def why(found: list[Entry]) -> str:
                first = found[0]
                more = f" (and {len(found) - 1} more broken {'module' if len(found) == 2 else 'modules'})" if len(found) > 1 else ""
                return f"{first.origin if first.package not in ('?', '') else first.source}: {_short(first.error)}{more}"

            head = "a broken plugin package" if n == 1 else f"{n} broken plugin packages"
            return f"; {head} might provide it: {'; '.join(why(f) for f in packages.values())} (see `bench plugins`)"
        others = len(set(packages) - {_package_of(e)})
        more = f" and {others} more broken {'package' if others == 1 else 'packages'}" if others else ""
        return f"; a broken plugin package may provide it: {e.name} from {e.origin}: {e.error}{more} (see `bench plugins`)"

    def get(self, kind: str, name: str) -> Any:
        """The class (or model factory) registered as ``name``; unknown names raise
        :class:`PluginNotFound`, broken ones :class:`BrokenPlugin`."""
        entry = self.entry(kind, name)
        shadowed = [b for b in self._broken if b.kind == kind and b.name == name and b is not entry]
        if shadowed and entry.error is None and (kind, name) not in self._warned and not _local_worker():
            self._warned.add((kind, name))
            print(f"warning: {kind} {name!r} is uebench's own; {', '.join(f'{b.origin} ({b.source})' for b in shadowed)} "
                  "also registers that name and is not used: rename it there", file=sys.stderr)
        if entry.error:
            raise BrokenPlugin(f"{kind} {name!r} from {entry.origin} ({entry.source}) is broken: {entry.error}")
        if entry.missing:
            raise UserError(
                f"{kind} {name!r} needs {', '.join(entry.missing)}; install it "
                f"(e.g. `pip install {' '.join(entry.missing)}`)"
            )
        return entry.obj

    def entries(self) -> list[Entry]:
        """Every plugin, broken ones included (their ``error`` says why), kind by kind."""
        named = [e for k in KINDS for e in sorted(self._entries[k].values(), key=lambda e: e.name)]
        return named + [e for e in self._broken if e not in named]

    def broken(self) -> list[Entry]:
        """The plugins (and plugin modules) that failed to load, with their reasons."""
        return [e for e in self.entries() if e.error]

    def shadowed(self) -> list[Entry]:
        """The plugins left out because a plugin of a module in ``overriding`` took their name."""
        return list(self._shadowed)


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, plus what :class:`Registry` lists: the modules that failed to load
    (``broken``) and the distribution of each entry-point plugin (``dists``)."""

    def __init__(self) -> None:
        super().__init__("uebench")
        self.broken: list[Entry] = []
        self.dists: dict[int, tuple[str, str]] = {}

    def add_module(self, module: Any, name: str, package: str = "uebench", version: str = "") -> None:
        """Register a plugin module; a module pluggy refuses is listed as broken instead."""
        if self.is_registered(module):
            return
        try:
            self.register(module, name=name)
        except Exception as e:  # noqa: BLE001 - pluggy's validation of a third party's hooks
            if self.is_registered(module):  # pluggy keeps the hooks it validated before the bad one: none of the module's count
                self.unregister(module)
            why = "; ".join(line.strip() for line in str(e).splitlines() if line.strip())  # pluggy's message names the argument
            self.broken.append(Entry("module", name, module, name, package, version, f"not a valid plugin module: {type(e).__name__}: {why}"[:400]))
            return
        self.dists[id(module)] = (package, version)
        for attr in dir(module):
            obj = getattr(module, attr, None)
            if attr.startswith("register") and attr not in HOOKS.values() and hasattr(obj, "uebench_impl"):
                self.broken.append(Entry("module", f"{name}.{attr}", module, name, package, version,
                                         f"defines hook {attr!r}, which uebench does not have{_closest(attr, HOOKS.values())}"))
            elif attr in HOOKS.values() and callable(obj) and not hasattr(obj, "uebench_impl") and not hasattr(obj, "uebench_spec"):
                # pluggy ignores a function without the marker: its plugins would silently not exist
                self.broken.append(Entry("module", f"{name}.{attr}", module, name, package, version,
                                         f"{attr} is not decorated with @hookimpl (`from benchmark import hookimpl`): "
                                         "uebench does not call it, so its plugins are not registered"))

    def load_module(self, name: str, *, why: str) -> None:
        try:
            mod = importlib.import_module(name)
        except (Exception, SystemExit) as e:  # noqa: BLE001 - one broken module must not stop the others
            self.broken.append(Entry("module", name, None, name, *_distribution(name), f"cannot import {name} ({why}): {one_line(e)}"))
            return
        self.add_module(mod, name, *_distribution(name))

    def load_entry_points(self, group: str = "uebench") -> None:
        """Every ``group`` entry point, each isolated: one that fails to import is listed as broken."""
        from importlib import metadata

        seen: set[tuple[str, str]] = set()
        for ep in metadata.entry_points(group=group):
            dist = getattr(ep, "dist", None)
            package = dist.name if dist is not None else "?"
            version = dist.version if dist is not None else ""
            if (ep.name, ep.value) in seen or self.get_plugin(ep.name) is not None or self.is_blocked(ep.name):
                continue
            seen.add((ep.name, ep.value))
            try:
                module = ep.load()
            except (Exception, SystemExit) as e:  # noqa: BLE001
                self.broken.append(Entry("module", ep.name, None, ep.value, package, version, f"cannot import {ep.value}: {one_line(e)}"))
                continue
            self.add_module(module, ep.name, package, version)


def _distribution(module: str) -> tuple[str, str]:
    """The installed distribution (name, version) that provides ``module`` (a name in
    ``UEBENCH_PLUGINS``): uebench's own packages are uebench's; another module not found in any
    installed distribution is shown as ``?``."""
    from importlib import metadata

    top = module.split(".")[0]
    if top in ("benchmark", "plugins"):
        return "uebench", ""
    dists = metadata.packages_distributions().get(top, [])
    if not dists:
        return "?", ""
    try:
        return dists[0], metadata.version(dists[0])
    except metadata.PackageNotFoundError:
        return dists[0], ""


def make_plugin_manager(modules: list[str] | None = None, *, entry_points: bool = True) -> PluginManager:
    """A plugin manager with the hook specs, the given (or default) modules and the entry points.
    A module that fails to import is recorded in ``pm.broken``, never raised."""
    pm = PluginManager()
    pm.add_hookspecs(hookspecs)
    env = os.environ.get(ENV_VAR)
    why = "built-in"
    if modules is None and env:
        modules = [m.strip() for m in env.split(",") if m.strip()]
        entry_points = False
        why = f"from {ENV_VAR}"
    elif modules is not None:
        why = "given"
    for name in modules if modules is not None else DEFAULT_PLUGINS:
        pm.load_module(name, why=why)
    if entry_points:
        pm.load_entry_points("uebench")
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


def plugin_modules(package: str) -> Callable[[], list[type | Unloadable]]:
    """Helper for built-in plugin packages: classes named in each submodule's ``PLUGINS`` list (a
    submodule that fails to import is listed as broken; its siblings load). The classes are not
    checked here: the registry checks each one against its hook's kind."""
    import pkgutil

    def collect() -> list[type | Unloadable]:
        pkg = importlib.import_module(package)
        out: list[type | Unloadable] = []
        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
            if info.name.startswith("_"):
                continue
            try:
                mod = importlib.import_module(f"{package}.{info.name}")
            except Exception as e:  # noqa: BLE001 - one broken module must not hide its siblings
                out.append(Unloadable(f"{package}.{info.name}", f"cannot import {package}.{info.name}: {one_line(e)}"))
                continue
            out.extend(getattr(mod, "PLUGINS", ()))
        return out

    return collect
