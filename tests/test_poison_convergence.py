"""A poison that ended at its iteration limit before its stopping condition (``poison_meta.stopped``
false) is said to be so when it is generated and in the leaderboard made from its cells."""

from __future__ import annotations

from types import SimpleNamespace

from benchmark.config import parse_matrix, resolve
from benchmark.registry import get_registry
from benchmark.report import write_leaderboard
from benchmark.runner import Runner
from benchmark.summary import unconverged_note
from tests.test_runner import BASE


def run_em(tmp_path, stop_accuracy):
    m = {**BASE, "attacks": [{"name": "em", "params": {"max_outer": 1, "stop_accuracy": stop_accuracy}}], "defenses": ["none"], "seeds": [0]}
    logs: list[str] = []
    run = Runner(resolve(parse_matrix(m), get_registry()), tmp_path / "res", log=logs.append, progress=False)
    assert run.run().exit_code == 0
    [rec] = run.store.records()
    return [line for line in logs if line.startswith("poison em done")], rec, write_leaderboard(tmp_path / "res").read_text()


def test_an_unconverged_poison_is_flagged_when_generated_and_in_the_leaderboard(tmp_path):
    [line], rec, board = run_em(tmp_path, 1.0)  # an accuracy never above 1: never stops
    assert rec["poison_meta"]["stopped"] is False
    acc = rec["poison_meta"]["train_accuracy"][-1]
    assert line.endswith(f"; NOT CONVERGED: stopped at max_outer=1 with accuracy {acc:.4g} on the poisoned data, below stop_accuracy 1 "
                         "(`poison_meta.stopped` false): it may be weaker than a converged poison")
    assert "**Poisons that did not reach their stopping condition.**" in board
    assert (f": em(max_outer=1, stop_accuracy=1.0): 1 cell; 1 outer iteration; last accuracy on the poisoned data {acc:.4g}"
            in board)  # the entry shown with its params


def test_a_converged_poison_is_not(tmp_path):
    [line], rec, board = run_em(tmp_path, 0.0)
    assert rec["poison_meta"]["stopped"] is True
    assert "CONVERGED" not in line and "did not reach" not in board


def test_the_note_reads_what_the_meta_and_params_hold():
    assert unconverged_note({"stopped": True}) == unconverged_note({}) == ""
    assert unconverged_note({"stopped": False}).startswith("; NOT CONVERGED: stopped at its iteration limit (")
    p = SimpleNamespace(max_outer=3, stop_accuracy=0.9)
    assert unconverged_note({"stopped": False, "outer_iterations": 3, "train_accuracy": [0.2, 0.51234]}, p).startswith(
        "; NOT CONVERGED: stopped at max_outer=3 with accuracy 0.5123 on the poisoned data, below stop_accuracy 0.9 (")
    assert "stopped at 4 outer iterations (" in unconverged_note({"stopped": False, "outer_iterations": 4, "train_accuracy": "x"})
