"""A class given to the kit (run_cell, check_plugin) is the class that runs, also when an installed
or built-in plugin has its name: it shadows that plugin for the kit's run only."""

from __future__ import annotations

import sys
from typing import ClassVar

import torch

from benchmark import Defense
from benchmark.registry import get_registry
from benchmark.testing import KitNoise, check_plugin, run_cell

CALLS: list[str] = []


class MyMedian(Defense):
    """Inverts the images (255 - x), under the name of the built-in median filter. Test-only."""

    name = "median-filter"
    stage: ClassVar[str] = "data"

    def transform(self, train, ctx):
        CALLS.append("transform")
        return train.with_images(255 - train.x)


class MyEM(KitNoise):
    """The kit's noise attack under the name of the built-in EM. Test-only."""

    name = "em"


def test_a_class_named_like_a_builtin_is_what_run_cell_runs(capsys):
    CALLS.clear()
    run = run_cell(defense=MyMedian)
    assert run.status == "ok" and CALLS == ["transform"]
    assert run.registry.entry("defense", "median-filter").obj is MyMedian
    assert "is uebench's own" not in capsys.readouterr().err  # no warning that it is not used: it is
    assert get_registry().get("defense", "median-filter") is not MyMedian  # for the kit's run only


def test_an_attack_named_like_a_builtin_gives_its_own_poison():
    run = run_cell(attack=(MyEM, {"eps": 8 / 255}))
    assert run.poison is not None and run.poison.kind == "samplewise"
    assert (run.poison.x.int() - run_cell().poison.x.int()).abs().max() == 8  # the kit noise's budget, not EM's
    # keyed apart from the built-in it shadows: its module and class in place of a package
    assert run.record["attack_spec"] == {"name": "em", "version": "1", "params": {"eps": 8 / 255}, "package": f"{__name__}.MyEM"}


def test_a_subclass_of_a_builtin_with_its_params_shares_no_result_with_it(tmp_path):
    """Same name, version and params as the built-in, in one results directory: the subclass runs
    (its cell is not the built-in's, reused)."""
    from plugins.defenses.median import MedianFilter

    class CountingMedian(MedianFilter):
        """The built-in median filter, counting its calls. Test-only."""

        def transform(self, train, ctx):
            CALLS.append("transform")
            return super().transform(train, ctx)

    CALLS.clear()
    builtin = run_cell(defense="median-filter", results=tmp_path)
    mine = run_cell(defense=CountingMedian, results=tmp_path)
    assert CALLS == ["transform"] and mine.record["key"] != builtin.record["key"]
    assert mine.metrics == builtin.metrics  # the same computation, made twice


def test_check_plugin_checks_the_given_class_not_the_builtin_of_its_name():
    check_plugin(MyEM)  # the cell it runs generates MyEM's poison (was: attack.determinism against EM's)
    CALLS.clear()
    check_plugin(MyMedian)
    assert len(CALLS) > 2  # two direct transforms, and the cells the kit ran it in


def test_a_subclass_of_an_installed_plugin_is_what_runs(tmp_path, monkeypatch):
    """A test subclassing its package's own plugin under the same name (was: "registered twice")."""
    from tests.test_registry import THIRD_PARTY, make_dist

    site = tmp_path / "site"
    site.mkdir()
    make_dist(site, "uebench-shift", "0.1", "uebench_shift", THIRD_PARTY.format(name="shift"))
    monkeypatch.delitem(sys.modules, "uebench_shift", raising=False)
    monkeypatch.syspath_prepend(str(site))
    from uebench_shift import Shift

    class Shift3(Shift):
        """Adds three grey levels. Test-only."""

        def generate(self, train, ctx):
            p = super().generate(train, ctx)
            return type(p)(x=(p.x.int() + 2).clamp(max=255).byte())

    installed = run_cell(attack="shift")
    mine = run_cell(attack=Shift3)
    assert installed.record["plugin_packages"] == {"attack shift": "uebench-shift 0.1"}
    assert mine.record["plugin_packages"] == {}  # not the package's class: not the package's release
    assert mine.poison is not None and installed.poison is not None
    assert torch.equal(mine.poison.x.int(), (installed.poison.x.int() + 2).clamp(max=255))
    assert mine.record["key"] != installed.record["key"]  # the package's class names its package in the key
