"""Third-party plugins that misbehave in ways the runner must contain: a model-stage defense that
writes into the clean hold-out, an exception whose message runs over many long lines, and
``sys.exit`` inside an attack's ``generate`` or a dataset's ``load``."""

from __future__ import annotations

import sys

import pytest

from benchmark.config import parse_matrix, resolve
from benchmark.errors import DatasetError
from benchmark.registry import get_registry
from benchmark.runner import Runner
from tests.test_runner import BASE

FAULTY = '''
import sys
from benchmark import Attack, DatasetSource, Defense, hookimpl

GENERATED = []

class WrecksHoldout(Defense):
    """Zeroes the clean hold-out it is given, images and labels, in place."""
    name = "wrecks-holdout"
    stage = "model"
    def repair(self, model, holdout, ctx):
        holdout.x.zero_()
        holdout.y.zero_()
        return model

class WrecksThenRaises(Defense):
    """Zeroes the hold-out's images in place, then raises."""
    name = "wrecks-then-raises"
    stage = "model"
    def repair(self, model, holdout, ctx):
        holdout.x.zero_()
        raise RuntimeError("gave up")

class LongWinded(Attack):
    """Raises with a message of three lines, one of them 2000 characters."""
    name = "long-winded"
    def generate(self, train, ctx):
        raise RuntimeError("line one\\nline two\\n" + "x" * 2000)

class Exits(Attack):
    """Calls sys.exit inside generate."""
    name = "exits"
    def generate(self, train, ctx):
        GENERATED.append(1)
        sys.exit(4)

class Quits(DatasetSource):
    """Calls sys.exit while loading."""
    name = "quits"
    def load(self):
        sys.exit(5)

@hookimpl
def register_attacks():
    return [LongWinded, Exits]

@hookimpl
def register_defenses():
    return [WrecksHoldout, WrecksThenRaises]

@hookimpl
def register_datasets():
    return [Quits]
'''

HOLDOUT = {"name": "digits", "subset": 200, "holdout": 20}


@pytest.fixture
def faulty_plugins(tmp_path, monkeypatch):
    (tmp_path / "faulty_plugins.py").write_text(FAULTY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "faulty_plugins", raising=False)
    from benchmark.registry import DEFAULT_PLUGINS

    monkeypatch.setenv("UEBENCH_PLUGINS", ",".join([*DEFAULT_PLUGINS, "faulty_plugins"]))


def run(results, logs=None, **over):
    r = Runner(resolve(parse_matrix({**BASE, **over}), get_registry()), results, progress=False,
               log=(logs.append if logs is not None else lambda s: None))
    return r, r.run()


@pytest.mark.parametrize("defense,error", [
    ("wrecks-holdout", ("PluginError: defense 'wrecks-holdout' changed the clean hold-out it was given in place (repair must "
                        "leave its input alone: change a copy; its images or labels differ after repair)")),
    ("wrecks-then-raises", "defense 'wrecks-then-raises' (repair): RuntimeError: gave up"),  # its own error, and the data reloaded
], ids=["changes", "changes-then-raises"])
def test_a_defense_that_writes_into_the_holdout_fails_and_the_next_cell_gets_it_clean(tmp_path, faulty_plugins, defense, error):
    over = {"dataset": HOLDOUT, "attacks": ["clean"], "victims": ["sl"]}
    r, _ = run(tmp_path / "both", **over, defenses=[defense, "finetune"])
    by = {x["defense"]: x for x in r.store.records()}
    assert by[defense]["status"] == "failed" and by[defense]["error"] == error
    assert by["finetune"]["status"] == "ok", by["finetune"]["error"]
    alone, _ = run(tmp_path / "alone", **over, defenses=["finetune"])
    (ref,) = alone.store.records()
    assert by["finetune"]["metrics"] == ref["metrics"]  # fine-tuned on the clean hold-out, not the zeroed one
    assert by["finetune"]["curves"] == ref["curves"]


def test_a_long_multiline_plugin_error_is_printed_as_one_bounded_line(tmp_path, faulty_plugins):
    logs: list[str] = []
    r, s = run(tmp_path, logs, attacks=["long-winded", "clean"], victims=["sl"], defenses=["none", "iss-bdr"])
    assert (s.ok, len(s.failed)) == (2, 2)
    first = "attack 'long-winded' (generate): RuntimeError: line one"
    failed = [m for m in logs if "FAILED" in m]
    assert len(failed) == 2 and all(m.endswith(f": FAILED {first}") for m in failed), failed
    assert all("\n" not in m and len(m) < 400 for m in logs), [m[:100] for m in logs]
    text = s.text()
    assert all(len(line) < 400 for line in text.splitlines()) and text.count("line two") == 0, text[:500]
    assert all(f.endswith(first) for f in s.failed)
    # the record keeps the whole message (and its traceback); `bench status` and a rerun list its first line
    for rec in r.store.records():
        if rec["attack"] == "long-winded":
            assert rec["error"] == first + "\nline two\n" + "x" * 2000
            assert "x" * 2000 in rec["traceback"]
    again: list[str] = []
    _, s2 = run(tmp_path, again, attacks=["long-winded", "clean"], victims=["sl"], defenses=["none", "iss-bdr"])
    assert len(s2.failed_before) == 2 and all(f.endswith(first) for f in s2.failed_before)


def test_sys_exit_in_generate_is_one_failure_of_the_poison(tmp_path, faulty_plugins):
    """Remembered as an exception is: generated once for the attack's three cells, each failed with
    one line, and the run goes on to the next attack."""
    logs: list[str] = []
    r, s = run(tmp_path, logs, attacks=["exits", "clean"], victims=["sl"], defenses=["none", "iss-bdr", "iss-gray"])
    assert len(sys.modules["faulty_plugins"].GENERATED) == 1
    assert sum(m.startswith("generating poison exits") for m in logs) == 1, logs
    by = {(x["attack"], x["defense"]): x for x in r.store.records()}
    for d in ("none", "iss-bdr", "iss-gray"):
        assert by[("exits", d)]["status"] == "failed" and by[("exits", d)]["error"] == "attack 'exits' (generate): SystemExit: 4"
        assert by[("clean", d)]["status"] == "ok"
    assert (s.ok, len(s.failed), s.exit_code) == (3, 3, 1)


def test_sys_exit_in_a_dataset_plugin_stops_the_run_with_one_line(tmp_path, faulty_plugins):
    with pytest.raises(DatasetError, match=r"^dataset 'quits' \(quits\) failed to load: SystemExit: 5 \(at faulty_plugins.py:\d+\)$"):
        run(tmp_path, dataset="quits", attacks=["clean"], victims=["sl"], defenses=["none"])
