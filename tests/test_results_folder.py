"""A folder of results directories given where one is expected (``bench claims results`` for
``results/cifar10-quick``): ``bench claims``, ``leaderboard``, ``report``, ``status`` and ``prune``
say so in one line naming the subdirectories that hold results, exit 2 and write nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.records import record_subdirs
from tests.report.synthetic import record, write
from tests.test_claims import rec as claim_rec

COMMANDS = {
    "claims": ["claims", "{root}"],
    "leaderboard": ["leaderboard", "{root}"],
    "report": ["report", "{root}", "--no-figures"],
    "status": ["status", "{root}"],
    "status with a matrix": ["status", "{root}", "examples/quickstart.yaml"],
    "prune": ["prune", "{root}", "examples/quickstart.yaml"],
}


def folder(tmp: Path, *names: str) -> Path:
    """``tmp/parent`` holding a results directory per name (one toy record each), and a folder
    that holds none (``notes``)."""
    root = tmp / "parent"
    for name in names:
        write(root / name, [record("em", "sl", "none", 0, 0.2, with_curves=False)])
    (root / "notes").mkdir(parents=True)
    return root


def run(argv: list[str], root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main([a.format(root=root) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_folder_of_results_directories_is_refused_naming_them(command, tmp_path, capsys):
    root = folder(tmp_path, "cifar10-quick", "quickstart")
    before = files(root)
    code, out, err = run(COMMANDS[command], root, capsys)
    assert code == 2 and out == ""
    assert err == (f"error: {str(root)!r} holds no result records; its subdirectories cifar10-quick, quickstart do: "
                   f"pass one of them (e.g. {str(root / 'cifar10-quick')!r})\n")
    assert files(root) == before  # no CLAIMS.md, LEADERBOARD.md, report/ ...


def test_a_results_directory_a_run_started_is_not_taken_for_a_folder_of_them(tmp_path, capsys):
    """``bench run`` makes ``cells/`` before its first cell: ``results/`` (the default) in use beside
    committed results directories is read as the results directory it is, not refused."""
    root = folder(tmp_path, "a")
    (root / "cells").mkdir()
    code, _, err = run(["status", "{root}"], root, capsys)
    assert code == 0 and "pass one of them" not in err
    code, _, err = run(["leaderboard", "{root}"], root, capsys)
    assert code == 0 and "pass one of them" not in err and (root / "LEADERBOARD.md").exists()


def test_many_subdirectories_are_counted_past_the_first_eight(tmp_path, capsys):
    root = folder(tmp_path, *(f"r{i:02d}" for i in range(11)))
    assert record_subdirs(root) == [f"r{i:02d}" for i in range(11)]
    code, _, err = run(["claims", "{root}"], root, capsys)
    assert code == 2 and "subdirectories r00, r01, r02, r03, r04, r05, r06, r07 and 3 more do: pass one of them" in err


def test_claims_on_a_folder_that_holds_unmeasured_records_and_results_directories_below(tmp_path, capsys):
    """``results/`` is also ``bench run``'s default results directory: records of some other run
    there (none a claim measures) beside the committed results directories is the same mistake."""
    root = folder(tmp_path, "cifar10-quick")
    write(root, [record("clean", "sl", "none", 0, 0.9, dataset="digits", profile="smoke", with_curves=False)])
    code, out, err = run(["claims", "{root}"], root, capsys)
    assert code == 2 and out == "" and not (root / "CLAIMS.md").exists()
    assert err.startswith(f"error: {str(root)!r} holds 1 result record, none of which a claim measures; "
                          "its subdirectory cifar10-quick does: pass one of them")
    # leaderboard, report and status show that directory's own records, as before
    code, out, _ = run(["leaderboard", "{root}", "--out", str(tmp_path / "LB.md")], root, capsys)
    assert code == 0 and "digits" in (tmp_path / "LB.md").read_text()


def test_claims_measured_in_a_folder_with_results_directories_below_are_written(tmp_path, capsys):
    root = folder(tmp_path, "old")
    write(root, [claim_rec("clean", "sl", 0.70), claim_rec("em", "sl", 0.65)])
    code, out, _ = run(["claims", "{root}"], root, capsys)
    assert code == 0 and "em-collapses-sl" in out and (root / "CLAIMS.md").is_file()


def test_a_folder_with_no_results_anywhere_keeps_its_message(tmp_path, capsys):
    root = tmp_path / "empty"
    (root / "sub").mkdir(parents=True)
    for argv in (["claims", "{root}"], ["leaderboard", "{root}"], ["report", "{root}"]):
        code, _, err = run(argv, root, capsys)
        assert code == 2 and err == (f"error: {str(root)!r} holds no results (no cells/ folder); "
                                     f"run `bench run MATRIX --results {root}` first\n")
    code, out, _ = run(["status", "{root}"], root, capsys)  # a results directory not run yet: not an error
    assert code == 0 and "no cells yet" in out
