"""A third-party plugin's keys name its package: two packages that each provide a plugin of one name
and version are two plugins (different keys, nothing reused across them), while uebench's own
plugins and plain modules (no distribution) keep the specs and keys they always had."""

from __future__ import annotations

import sys
import textwrap
import types

import pytest

from benchmark.config import parse_matrix, resolve
from benchmark.packages import package_warning
from benchmark.plan import make_plan
from benchmark.registry import Registry, make_plugin_manager

#: the same plugin name and version in two packages, one adding eps, the other subtracting it
DUP = """
    from benchmark import Attack, Poison, hookimpl

    class Dup(Attack):
        '''Shifts every pixel by {sign}1 grey level. Test plugin.'''
        name = "dup-attack"
        version = "1"
        def generate(self, train, ctx):
            return Poison(x=(train.x.int() {sign} 1).clamp(0, 255).byte())

    @hookimpl
    def register_attacks():
        return [Dup]
"""

MATRIX = {"dataset": {"name": "digits", "subset": 100}, "profile": "smoke", "attacks": ["dup-attack"], "victims": ["sl"],
          "defenses": ["none"]}


def _module(name: str, sign: str) -> types.ModuleType:
    mod = types.ModuleType(name)
    exec(compile(textwrap.dedent(DUP.format(sign=sign)), name, "exec"), mod.__dict__)  # noqa: S102 - the test's own source
    return mod


def _registry(module: types.ModuleType, package: str, version: str) -> Registry:
    """uebench's plugins and ``module`` as the distribution ``package`` ``version`` provides it."""
    pm = make_plugin_manager(entry_points=False)
    pm.add_module(module, module.__name__, package, version)
    return Registry(pm)


def _keys(registry: Registry) -> tuple[dict, list[str]]:
    plan = make_plan(resolve(parse_matrix(dict(MATRIX)), registry))
    return plan.jobs[0].spec["attack"], [plan.jobs[0].key] + [c.key for c in plan.cells]


def test_two_packages_with_a_plugin_of_one_name_and_version_get_different_keys():
    """The reviewer's case: `dup-attack` v1 from uebench-mistakes, then from uebench-dupe; the
    second must not reuse the first's cells and poison."""
    mistakes = _registry(_module("uebench_mistakes", "+"), "uebench-mistakes", "0.1.0")
    spec_a, keys_a = _keys(mistakes)
    dupe = _registry(_module("uebench_dupe", "-"), "uebench-dupe", "0.3.0")
    spec_b, keys_b = _keys(dupe)
    assert spec_a["package"] == "uebench-mistakes" and spec_b["package"] == "uebench-dupe"
    assert {k: v for k, v in spec_a.items() if k != "package"} == {k: v for k, v in spec_b.items() if k != "package"}
    assert not set(keys_a) & set(keys_b)  # no poison, no cell shared


def test_another_release_of_one_package_keeps_its_keys_and_another_spelling_too():
    from benchmark.registry import normalized_package

    module = _module("uebench_dupe", "-")
    _, first = _keys(_registry(module, "uebench-dupe", "0.3.0"))
    _, release = _keys(_registry(module, "uebench-dupe", "0.4.0"))  # the release is not in the keys: a warning says it
    _, spelled = _keys(_registry(module, "Uebench_Dupe", "0.3.0"))  # another build tool's spelling of the name
    assert first == release == spelled
    assert normalized_package("Uebench_Dupe.x") == "uebench-dupe-x"


def test_builtin_and_plain_module_specs_name_no_package(tmp_path, monkeypatch):
    """uebench's own plugins keep their specs (the committed results are keyed by them), and so does
    a plain module named in UEBENCH_PLUGINS: it has no distribution to name."""
    from benchmark.registry import key_package

    registry = _registry(_module("uebench_dupe", "-"), "uebench-dupe", "0.3.0")
    plan = make_plan(resolve(parse_matrix(dict(MATRIX)), registry))
    assert set(plan.cells[0].victim.spec()) == {"name", "version", "params"}
    assert set(plan.cells[0].defense.spec()) == {"name", "version", "params"}
    assert key_package(type(plan.cells[0].victim)) is None

    (tmp_path / "plain_dup.py").write_text(textwrap.dedent(DUP.format(sign="+")))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "plain_dup", raising=False)
    monkeypatch.setenv("UEBENCH_PLUGINS", "plain_dup,benchmark.builtins,plugins.victims,plugins.defenses,plugins.metrics")
    plain = Registry(make_plugin_manager())
    assert plain.entry("attack", "dup-attack").package == "?"
    spec, _ = _keys(plain)
    assert set(spec) == {"name", "version", "params"}


def test_the_release_warning_speaks_only_of_releases_of_one_package(monkeypatch):
    from benchmark.packages import another_release

    assert another_release("uebench-dupe 0.3.0", "uebench-dupe 0.4.0")
    assert another_release("uebench_dupe 0.3.0", "Uebench-Dupe 0.4.0")
    assert not another_release("uebench-mistakes 0.1.0", "uebench-dupe 0.3.0")  # another package: another plugin
    assert not another_release("uebench_dupe 0.3.0", "uebench-dupe 0.3.0")  # one release, spelled twice
    attack = types.SimpleNamespace(kind="attack", name="dup-attack")
    monkeypatch.setattr("benchmark.packages.package_of", lambda plugin: "uebench-dupe 0.3.0")
    assert package_warning(attack, "uebench-mistakes 0.1.0") is None
    warning = package_warning(attack, "uebench-dupe 0.2.0")
    assert warning is not None and "another release of its package (uebench-dupe 0.2.0 -> uebench-dupe 0.3.0)" in warning


@pytest.mark.parametrize("cls_path", ["plugins.attacks.em.EM", "plugins.defenses.median.MedianFilter"])
def test_a_builtin_class_keeps_its_spec_whoever_registers_it(cls_path):
    """A package re-registering a built-in class (under UEBENCH_PLUGINS, without the built-ins)
    does not change that class's keys."""
    import importlib

    from benchmark.registry import key_package

    module_name, cls_name = cls_path.rsplit(".", 1)
    cls = getattr(importlib.import_module(module_name), cls_name)
    mod = types.ModuleType("uebench_reexport")
    from benchmark import hookimpl

    hook = f"register_{cls.kind}s"
    mod.__dict__[hook] = hookimpl(lambda: [cls])
    pm = make_plugin_manager([], entry_points=False)
    pm.add_module(mod, "uebench_reexport", "uebench-reexport", "1.0")
    assert Registry(pm).entry(cls.kind, cls.name).package == "uebench-reexport"
    assert key_package(cls) is None and "package" not in cls().spec()


def test_a_run_with_the_other_package_reuses_nothing_of_the_first(tmp_path, monkeypatch):
    """The reviewer's sequence, through the runner: run `dup-attack` of uebench-mistakes into a
    results directory, uninstall it, install uebench-dupe (its `dup-attack` is also version 1) and
    run again: a new poison and a new cell, with the other package's numbers."""
    import importlib

    from benchmark.registry import reset_registry
    from benchmark.testing import run_cell
    from tests.test_registry import make_dist

    results = tmp_path / "results"
    runs = {}
    for dist, module, sign in (("uebench-mistakes", "uebench_mistakes", "+"), ("uebench-dupe", "uebench_dupe", "-")):
        site = tmp_path / dist
        site.mkdir()
        make_dist(site, dist, "0.3.0" if sign == "-" else "0.1.0", module, DUP.format(sign=sign))
        monkeypatch.delitem(sys.modules, module, raising=False)
        monkeypatch.setattr(sys, "path", [str(site), *(p for p in sys.path if not p.startswith(str(tmp_path)))])  # the other one uninstalled
        importlib.invalidate_caches()
        reset_registry()
        runs[dist] = run_cell(attack="dup-attack", results=results)
    a, b = runs["uebench-mistakes"], runs["uebench-dupe"]
    assert a.record["attack_spec"]["package"] == "uebench-mistakes" and b.record["attack_spec"]["package"] == "uebench-dupe"
    assert a.record["key"] != b.record["key"] and len(list((results / "cells").glob("*.json"))) == 2
    assert a.poison is not None and b.poison is not None
    assert (a.poison.x.int() - b.poison.x.int()).abs().max() > 0  # +1 and -1: each package's own poison


def test_a_bundle_registering_another_packages_class_does_not_change_its_keys():
    """The class's own package decides its keys, not whichever registry registered it last (a
    bundle package, or a plain module, that registers the class again)."""
    from benchmark.hookspecs import hookimpl
    from benchmark.registry import key_package

    own = _module("uebench_b", "+")
    _registry(own, "uebench-b", "1.0")
    assert key_package(own.Dup) == "uebench-b"
    bundle = types.ModuleType("uebench_bundle")
    bundle.register_attacks = hookimpl(lambda: [own.Dup])  # type: ignore[attr-defined]
    _registry(bundle, "uebench-bundle", "2.0")  # built later in the same process
    assert key_package(own.Dup) == "uebench-b"
    plain = types.ModuleType("my_plugins")  # no distribution
    plain.register_attacks = hookimpl(lambda: [own.Dup])  # type: ignore[attr-defined]
    pm = make_plugin_manager(entry_points=False)
    pm.add_module(plain, "my_plugins")
    Registry(pm)
    assert key_package(own.Dup) == "uebench-b"
