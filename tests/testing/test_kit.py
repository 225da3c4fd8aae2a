"""The plugin kit (benchmark.testing): its stubs pass their own contracts, a broken contract fails
with a message naming it, the pytest fixtures run one cell, and the kit needs no built-in plugin."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from torch import nn

from benchmark import Attack, Defense, Metric, Poison
from benchmark.testing import (
    CONTRACTS,
    ContractError,
    KitAccuracy,
    KitContrastive,
    KitNoise,
    KitNone,
    KitSupervised,
    check_plugin,
)
from benchmark.trace import EpochEvent

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("cls", [KitNoise, KitSupervised, KitContrastive, KitNone, KitAccuracy], ids=lambda c: c.name)
def test_kit_stubs_pass_their_own_contracts(cls):
    check_plugin(cls)


class LoudNoise(KitNoise):
    """Noise at twice the declared budget (breaks attack.budget). Test-only."""

    name = "test-loud-noise"

    def generate(self, train, ctx):
        delta = torch.full(train.x.shape, 2 * self.params.eps)
        from benchmark import release

        return Poison(x=release(train.x, delta), delta=delta, kind="samplewise")


class RoundedDown(KitNoise):
    """Releases x + delta by truncation instead of benchmark.release (breaks attack.release). Test-only."""

    name = "test-rounded-down"

    def generate(self, train, ctx):
        delta = torch.full(train.x.shape, 0.7 / 255)
        return Poison(x=(train.x.float() + delta * 255).clamp(0, 255).to(torch.uint8), delta=delta, kind="samplewise")


class Misaligned(KitNoise):
    """A sample-wise delta of the wrong length (breaks attack.alignment). Test-only."""

    name = "test-misaligned"

    def generate(self, train, ctx):
        return Poison(x=train.x.clone(), delta=torch.zeros(len(train) + 1, *train.shape), kind="samplewise")


class HooksOnce(KitSupervised):
    """Reports two epochs but computes only the first batch's loss through hooks.loss (breaks
    victim.hooks). Test-only."""

    name = "test-hooks-once"

    def fit(self, train, ctx, hooks):
        c, h, w = train.shape
        model = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, train.num_classes))
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        for epoch in (1, 2):
            x, y = train.float_batch(torch.arange(len(train))), train.y
            loss = hooks.loss(model, x, y, nn.functional.cross_entropy) if epoch == 1 else nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            ctx.trace.emit(EpochEvent("supervised", epoch, 2, loss.item()))
        return model


class NoHooks(KitSupervised):
    """Trains with its own loop that never calls hooks.loss (breaks victim.hooks). Test-only."""

    name = "test-no-hooks"

    def fit(self, train, ctx, hooks):
        c, h, w = train.shape
        model = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, train.num_classes))
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        loss = nn.functional.cross_entropy(model(train.float_batch(torch.arange(len(train)))), train.y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return model


class WrongStage(Defense):
    """Declares stage data but implements train_hooks (breaks defense.stage). Test-only."""

    name = "test-wrong-stage"
    stage: ClassVar[str] = "data"

    def train_hooks(self, ctx):
        return super().train_hooks(ctx)


class OverOne(Metric):
    """A 'fraction' of 2 (breaks metric.units). Test-only."""

    name = "test-over-one"
    unit = "fraction"

    def compute(self, cell, ctx):
        return {"test-over-one": 2.0}


class GuessedTolerance(Metric):
    """A tolerance for an output it never returns (breaks metric.audit-tolerance). Test-only."""

    name = "test-guessed-tolerance"
    unit = "fraction"
    audit_tolerance = {"accuracy": 3.0}

    def compute(self, cell, ctx):
        return {"test-guessed-tolerance": 0.5}


class Undocumented(Attack):
    name = "test-undocumented"

    def generate(self, train, ctx):
        return Poison(x=train.x.clone(), kind="none")


@pytest.mark.parametrize(
    ("cls", "contract"),
    [(LoudNoise, "attack.budget"), (RoundedDown, "attack.release"), (Misaligned, "attack.alignment"),
     (NoHooks, "victim.hooks"), (HooksOnce, "victim.hooks"), (WrongStage, "defense.stage"), (OverOne, "metric.units"),
     (GuessedTolerance, "metric.audit-tolerance"), (Undocumented, "plugin.docstring")],
    ids=lambda v: v if isinstance(v, str) else v.name,
)
def test_a_broken_contract_fails_naming_it(cls, contract):
    with pytest.raises(ContractError) as err:
        check_plugin(cls)
    assert err.value.contract == contract
    msg = str(err.value)
    assert f"breaks contract {contract!r}" in msg and cls.name in msg and CONTRACTS[contract] in msg


def test_contract_error_is_an_assertion():
    assert issubclass(ContractError, AssertionError)  # pytest shows it as a failure, not an error


def test_check_plugin_wants_a_class():
    with pytest.raises(TypeError, match="plugin class"):
        check_plugin(KitNoise())  # type: ignore[arg-type]


def test_run_cell_fixture_runs_one_cell_through_the_runner(uebench_run_cell, tmp_path):
    clean = uebench_run_cell()
    noisy = uebench_run_cell(attack=(KitNoise, {"eps": 16 / 255}), victim="kit-supervised", defense="kit-none", metric="kit-accuracy")
    for run in (clean, noisy):
        assert run.status == "ok"
        assert 0.0 <= run.metrics["kit-accuracy"] <= 1.0
        assert [c["epoch"] for c in run.curves if c["phase"] == "supervised"] == [1, 2, 3, 4]  # the training trace
        assert run.results == tmp_path / "uebench-results"
    assert clean.metrics["kit-accuracy"] > 0.5  # the tiny dataset is learnable
    assert noisy.poison is not None and noisy.poison.kind == "samplewise"
    assert (noisy.poison.x.int() - clean.poison.x.int()).abs().max() == 16


def test_run_cell_of_a_failing_plugin_raises_with_its_error(uebench_run_cell):
    from benchmark.testing import CellFailed

    class Crashing(KitNoise):
        """Raises in generate. Test-only."""

        name = "test-crashing"

        def generate(self, train, ctx):
            raise RuntimeError("boom in generate")

    with pytest.raises(CellFailed, match="boom in generate"):
        uebench_run_cell(attack=Crashing)
    assert uebench_run_cell(attack=Crashing, check=False).status == "failed"


def test_defense_that_does_not_apply_is_na(uebench_run_cell):
    class SupervisedOnly(KitNone):
        """A no-op train-stage defense for supervised victims only. Test-only."""

        name = "test-supervised-only"
        applies_note = "supervised victims only"

        def applies_to(self, victim):
            return victim.paradigm == "supervised"

    assert uebench_run_cell(defense=SupervisedOnly, victim="kit-contrastive").status == "n/a"
    assert uebench_run_cell(defense=SupervisedOnly).status == "ok"


def test_tiny_fixture(uebench_tiny):
    assert uebench_tiny.x.dtype == torch.uint8 and tuple(uebench_tiny.x.shape) == (64, 3, 16, 16)
    assert uebench_tiny.num_classes == 4


def test_kit_needs_no_builtin_plugin():
    code = ("import sys, benchmark.testing, benchmark.testing.pytest_plugin\n"
            "bad = sorted(m for m in sys.modules if m == 'plugins' or m.startswith('plugins.'))\n"
            "assert not bad, bad\n"
            "r = benchmark.testing.run_cell(attack='kit-noise')\n"
            "assert r.status == 'ok', r.error\n"
            "bad = sorted(m for m in sys.modules if m == 'plugins' or m.startswith('plugins.'))\n"
            "assert not bad, bad\n")
    env = {"PYTHONPATH": str(REPO), "UEBENCH_PLUGINS": "benchmark.builtins", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


def test_pytest11_entry_point_declared():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["pytest11"]["uebench"] == "benchmark.testing.pytest_plugin"
