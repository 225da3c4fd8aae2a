"""The runner with plugins that fail: a failed cell is recorded with one line naming the plugin
and the others go on; contracts the runner checks (budgets, in-place writes); sys.exit in a plugin."""

from __future__ import annotations

import sys

import pytest

from benchmark.config import parse_matrix, resolve
from benchmark.registry import get_registry
from benchmark.runner import Runner
from tests.test_runner import BASE, runner

FAILING = '''
from benchmark import Attack, Defense, Params, Poison, Victim, hookimpl

class Boom(Victim):
    """Fails on the em-like attack only."""
    name = "boom"
    def fit(self, train, ctx, hooks):
        raise RuntimeError("boom went the victim")

class Greedy(Attack):
    """Breaks its L-inf budget."""
    name = "greedy"
    def generate(self, train, ctx):
        return Poison(x=(255 - train.x))

class Widens(Attack):
    """Widens its own budget during generate (eps 8/255 validated, 0.5 used)."""
    name = "widens"
    class Params(Params):
        eps: float = 8 / 255
    def generate(self, train, ctx):
        self.params = self.Params(eps=0.5)
        return Poison(x=(255 - train.x))

class InPlace(Attack):
    """Writes its poison into the training set it was given, and returns that."""
    name = "in-place"
    def generate(self, train, ctx):
        train.x.copy_(255 - train.x)
        return Poison(x=train.x.clone())

class Raiser(Attack):
    """Raises in generate."""
    name = "raiser"
    def generate(self, train, ctx):
        raise ValueError("oops: forgot the surrogate")

class Crasher(Defense):
    """Raises in transform."""
    name = "crasher"
    stage = "data"
    def transform(self, train, ctx):
        raise KeyError("no such view")

class ForgetsHoldout(Defense):
    """A model-stage defense that does not say it needs the hold-out."""
    name = "forgets-holdout"
    stage = "model"
    def repair(self, model, holdout, ctx):
        return model

class SSLOnly(Defense):
    """Applies to contrastive victims only."""
    name = "ssl-only"
    stage = "data"
    def applies_to(self, victim):
        return victim.paradigm == "contrastive"

@hookimpl
def register_victims():
    return [Boom]

@hookimpl
def register_attacks():
    return [Greedy, Widens, InPlace, Raiser]

@hookimpl
def register_defenses():
    return [SSLOnly, ForgetsHoldout, Crasher]
'''


@pytest.fixture
def failing_plugins(tmp_path, monkeypatch):
    (tmp_path / "failing_plugins.py").write_text(FAILING)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "failing_plugins", raising=False)
    from benchmark.registry import DEFAULT_PLUGINS

    monkeypatch.setenv("UEBENCH_PLUGINS", ",".join([*DEFAULT_PLUGINS, "failing_plugins"]))


def test_failures_recorded_others_go_on(tmp_path, failing_plugins):
    r = runner(tmp_path, attacks=["clean", "greedy"], victims=["sl", "boom"], defenses=["none", "ssl-only"])
    s = r.run()
    assert s.exit_code == 1
    by = {(x["attack"], x["victim"], x["defense"]): x for x in r.store.records()}
    assert by[("clean", "sl", "none")]["status"] == "ok"
    assert by[("clean", "boom", "none")]["status"] == "failed"
    assert by[("clean", "boom", "none")]["error"] == "victim 'boom' (fit): RuntimeError: boom went the victim"  # names the plugin
    assert "broke its budget" in by[("greedy", "sl", "none")]["error"]
    assert by[("clean", "sl", "ssl-only")]["status"] == "n/a"
    assert s.ok == 1 and s.na == 4 and len(s.failed) == 3
    assert "FAILED" in s.text()
    # every record says which metrics it was asked for (failed ones too: the tables they belong to);
    # finished ones name each output's metric and declared unit
    assert all(x["metric_plugins"] == ["accuracy"] for x in r.store.records())
    assert by[("clean", "sl", "none")]["metric_units"] == {"accuracy": {"metric": "accuracy", "unit": "fraction"}}
    # a rerun keeps the failures (reported, exit code 1) and the finished cells
    axes = {"attacks": ["clean", "greedy"], "victims": ["sl", "boom"], "defenses": ["none", "ssl-only"]}
    s2 = runner(tmp_path, **axes).run()
    assert (s2.skipped, s2.ok, s2.failed, len(s2.failed_before), s2.exit_code) == (5, 0, [], 3, 1)
    assert "3 failed earlier (kept: `bench run --retry-failed` recomputes them)" in s2.text()
    assert "failed earlier: clean × boom × none (seed 0): victim 'boom' (fit): RuntimeError: boom went the victim" in s2.text()
    # retry_failed recomputes them (they fail again here), once, and keeps the finished cells
    m = parse_matrix({**BASE, **axes})
    r3 = Runner(resolve(m, get_registry()), tmp_path / "res", log=lambda s: None, progress=False, retry_failed=True)
    s3 = r3.run()
    assert (s3.skipped, s3.ok, len(s3.failed), s3.failed_before) == (5, 0, 3, [])


def test_an_attack_cannot_widen_its_budget_or_poison_its_input_in_place(tmp_path, failing_plugins):
    """The budget is the validated params', taken before ``generate`` runs; an attack that writes
    into the training set it was given fails, and the cells after it train on the clean data."""
    r = runner(tmp_path, attacks=["widens", "in-place", "clean"], victims=["sl"], defenses=["none"])
    r.run()
    by = {x["attack"]: x for x in r.store.records()}
    assert by["widens"]["status"] == "failed" and "broke its budget" in by["widens"]["error"]
    assert by["in-place"]["status"] == "failed" and "changed the training set it was given in place" in by["in-place"]["error"]
    clean = runner(tmp_path / "fresh", attacks=["clean"], victims=["sl"], defenses=["none"])
    clean.run()
    assert by["clean"]["status"] == "ok"
    assert by["clean"]["metrics"] == clean.store.records()[0]["metrics"]  # as in a run without the in-place attack


def test_a_plugin_that_raises_is_named_in_its_cells_error(tmp_path, failing_plugins):
    """A plugin's own exception (not a contract the runner checks) says which plugin raised it, in
    which call; a contract's PluginError names its plugin already; a budget broken by an attack with
    no ``eps`` param says which budget it was held to."""
    r = runner(tmp_path, attacks=["clean", "raiser", "greedy"], victims=["sl"], defenses=["none", "crasher"])
    r.run()
    by = {(x["attack"], x["defense"]): x["error"] for x in r.store.records()}
    assert by[("raiser", "none")] == by[("raiser", "crasher")] == "attack 'raiser' (generate): ValueError: oops: forgot the surrogate"
    assert by[("clean", "crasher")] == "defense 'crasher' (transform): KeyError: 'no such view'"
    assert by[("clean", "none")] is None
    assert by[("greedy", "none")].startswith("PluginError: attack 'greedy' broke its budget")
    assert "the default L-inf 8/255: it has no `eps` param; override Attack.budget()" in by[("greedy", "none")]


def test_a_core_failure_is_not_blamed_on_a_plugin(tmp_path, monkeypatch):
    """Only the plugin's own call is named: a disk that fails while the runner stores the poison
    is the runner's error, not the attack's."""
    from benchmark.store import ArtifactCache

    def full(self, *a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ArtifactCache, "save", full)
    r = runner(tmp_path, attacks=["random-noise"], defenses=["none"])
    r.run()
    (rec,) = r.store.records()
    assert rec["error"] == "OSError: [Errno 28] No space left on device"


def test_a_model_stage_defense_without_a_holdout_is_a_config_error_even_if_it_does_not_ask(failing_plugins):
    from benchmark.errors import ConfigError

    with pytest.raises(ConfigError, match=r"defenses\[1\]: defense 'forgets-holdout' repairs a model with clean data: set dataset.holdout"):
        resolve(parse_matrix({**BASE, "defenses": ["none", "forgets-holdout"]}), get_registry())


EXITING = """
import sys
from benchmark import Victim, hookimpl

class Quitter(Victim):
    "Calls sys.exit inside fit (a plugin's own crash)."
    name = "quitter"
    def fit(self, train, ctx, hooks):
        sys.exit(3)

@hookimpl
def register_victims():
    return [Quitter]
"""


def test_a_plugin_that_exits_fails_its_cells_only(tmp_path, monkeypatch):
    (tmp_path / "exiting_plugins.py").write_text(EXITING)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "exiting_plugins", raising=False)
    from benchmark.registry import DEFAULT_PLUGINS

    monkeypatch.setenv("UEBENCH_PLUGINS", ",".join([*DEFAULT_PLUGINS, "exiting_plugins"]))
    r = runner(tmp_path, attacks=["clean"], victims=["quitter", "sl"], defenses=["none"])
    s = r.run()
    assert (s.ok, len(s.failed), s.exit_code) == (1, 1, 1)
    (bad,) = [x for x in r.store.records() if x["status"] == "failed"]
    assert bad["victim"] == "quitter" and bad["error"] == "victim 'quitter' (fit): SystemExit: 3"


def test_an_attack_whose_budget_is_not_a_budget_fails_with_one_line(tmp_path, monkeypatch):
    from plugins.attacks.random_noise import RandomNoise

    monkeypatch.setattr(RandomNoise, "budget", lambda self: 8 / 255)
    r = runner(tmp_path, attacks=["random-noise"], defenses=["none"])
    r.run()
    (rec,) = r.store.records()
    assert rec["error"] == "PluginError: attack 'random-noise': budget() returned float 0.03137254901960784, not a benchmark.Budget (e.g. Budget('linf', 8 / 255))"
