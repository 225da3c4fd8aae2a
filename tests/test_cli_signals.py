"""What ``bench`` says and which exit code it returns when a signal stops it: 128 + the signal, as a
shell reports a process the signal killed (Ctrl-C 130, SIGHUP 129, SIGTERM 143). The signals
themselves, in a real ``bench run``: tests/test_runner.py (Ctrl-C, SIGTERM) and
tests/executors/test_slurm_submission.py (SIGHUP while the slurm executor submits or waits)."""

from __future__ import annotations

import pytest

from benchmark import cli
from benchmark.executors.slurm_signals import HungUp

MATRIX = "name: t\ndataset: {name: digits, subset: 100}\nprofile: smoke\nattacks: [clean]\nvictims: [sl]\n"

STOPS = [(KeyboardInterrupt, 130, "interrupted"), (cli.Terminated, 143, "terminated (SIGTERM)"),
         (HungUp, 129, "hung up (SIGHUP)")]


@pytest.mark.parametrize(("stop", "code", "said"), STOPS)
def test_a_stopped_run_says_which_signal_with_exit_128_plus_it(tmp_path, monkeypatch, capsys, stop, code, said):
    """SIGHUP (the terminal closed) exited 130 "interrupted", as Ctrl-C does: 129 and its name now."""
    import benchmark.executors

    def execute(*a: object, **k: object) -> None:
        raise stop()

    monkeypatch.setattr(benchmark.executors, "execute", execute)
    (tmp_path / "m.yaml").write_text(MATRIX)
    res = tmp_path / "res"
    assert cli.main(["run", str(tmp_path / "m.yaml"), "--results", str(res)]) == code
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"{said}: every finished cell is saved in {res}/; rerun the same command to resume"]


@pytest.mark.parametrize(("stop", "code", "said"), STOPS)
def test_a_command_stopped_elsewhere_says_which_signal_with_exit_128_plus_it(monkeypatch, capsys, stop, code, said):
    def plugins(args: object) -> int:
        raise stop()

    monkeypatch.setattr(cli, "_plugins", plugins)
    assert cli.main(["plugins"]) == code
    tail = ": every finished cell is saved; rerun the same command to resume" if stop is cli.Terminated else ""
    assert capsys.readouterr().err.strip().splitlines() == [said + tail]


def test_hungup_is_still_a_keyboard_interrupt():
    """Everything that stops cleanly on Ctrl-C (the runner, the slurm executor's wait) stops so on SIGHUP too."""
    assert isinstance(HungUp(), KeyboardInterrupt)
    assert cli.stopped_by(KeyboardInterrupt()) == ("interrupted", 130)
    assert cli.stopped_by(HungUp("the terminal hung up (SIGHUP)")) == ("hung up (SIGHUP)", 129)
