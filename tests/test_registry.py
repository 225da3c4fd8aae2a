from __future__ import annotations

import sys
import textwrap

import pytest

from benchmark.errors import PluginNotFound, UserError
from benchmark.registry import DuplicatePlugin, Registry, get_registry, make_plugin_manager


def test_builtins_registered_through_hooks():
    r = get_registry()
    assert {"clean", "em", "em-class", "random-noise"} <= set(r.names("attack"))
    assert "sl" in r.names("victim")
    assert {"none", "iss-gray", "iss-jpeg", "iss-bdr"} <= set(r.names("defense"))
    assert "accuracy" in r.names("metric")
    assert {"digits", "fashion-mnist", "cifar10", "cifar100", "svhn", "npz", "imagefolder"} <= set(r.names("dataset"))
    assert {"resnet18", "small-cnn"} <= set(r.names("model"))
    assert r.entry("attack", "em").source == "plugins.attacks"


def test_unknown_name_did_you_mean():
    with pytest.raises(PluginNotFound, match=r"unknown attack 'emm'; did you mean 'em'"):
        get_registry().get("attack", "emm")


def _write_module(tmp_path, name, body, monkeypatch):
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)


THIRD_PARTY = """
    from benchmark import Attack, Poison, hookimpl

    class Shift(Attack):
        '''Adds one grey level (L-inf 1/255). Test plugin.'''
        name = "{name}"
        def generate(self, train, ctx):
            return Poison(x=(train.x.int() + 1).clamp(max=255).byte())

    @hookimpl
    def register_attacks():
        return [Shift]
"""


def test_duplicate_names_both_sources(tmp_path, monkeypatch):
    _write_module(tmp_path, "dup_em_plugin", THIRD_PARTY.format(name="em"), monkeypatch)
    with pytest.raises(DuplicatePlugin) as e:
        Registry(make_plugin_manager(["plugins.attacks", "dup_em_plugin"], entry_points=False))
    assert "plugins.attacks" in str(e.value) and "dup_em_plugin" in str(e.value)


def test_env_var_loads_explicit_subset(tmp_path, monkeypatch):
    _write_module(tmp_path, "shift_plugin", THIRD_PARTY.format(name="shift"), monkeypatch)
    monkeypatch.setenv("UEBENCH_PLUGINS", "shift_plugin,plugins.metrics")
    r = Registry(make_plugin_manager())
    assert r.names("attack") == ["shift"]
    assert r.names("metric") == ["accuracy", "certified-learnability"]
    assert r.names("victim") == []


def test_env_var_bad_module(monkeypatch):
    monkeypatch.setenv("UEBENCH_PLUGINS", "no_such_plugin_module")
    with pytest.raises(UserError, match="cannot import plugin module 'no_such_plugin_module'"):
        make_plugin_manager()


def test_entry_point_third_party_package(tmp_path, monkeypatch):
    """A distribution with an entry point in the `uebench` group is picked up, with its package name."""
    _write_module(tmp_path, "uebench_shift", THIRD_PARTY.format(name="shift"), monkeypatch)
    dist = tmp_path / "uebench_shift-0.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: uebench-shift\nVersion: 0.3\n")
    (dist / "entry_points.txt").write_text("[uebench]\nshift = uebench_shift\n")
    r = Registry(make_plugin_manager())
    entry = r.entry("attack", "shift")
    assert entry.package == "uebench-shift" and entry.source == "uebench_shift"
    assert "em" in r.names("attack")


def test_missing_requirement_reported():
    from benchmark import Attack

    class NeedsKornia(Attack):
        """x"""

        name = "needs"
        requires = ("surely_not_installed_module",)

        def generate(self, train, ctx):  # pragma: no cover
            return None

    assert NeedsKornia.missing_requirements() == ["surely_not_installed_module"]
