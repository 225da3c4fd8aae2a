"""What a newcomer's first mistakes print: a dry-run into a file, ``-E`` keys of another executor, a
dataset the dry-run would download, ``eps: 8``, more threads than cores, a leaderboard of a file,
and the per-cell result line's units."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.test_bad_inputs import one_error_line, run_cli, write

REPO = Path(__file__).resolve().parents[1]
SMOKE = str(REPO / "examples" / "smoke.yaml")
TINY = "name: t\ndataset: {name: digits, subset: 100}\nprofile: smoke\nattacks: [clean]\nvictims: [sl]\n"


def test_a_dry_run_into_a_file_is_refused_like_the_run(capsys, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("notes\n")
    m = write(tmp_path, TINY)
    code, err = run_cli(capsys, "run", str(m), "--results", str(afile), "--dry-run")
    one_error_line(code, err, f"results directory {str(afile)!r} is a file, not a directory; give a directory")
    assert afile.read_text() == "notes\n"  # untouched
    code, err = run_cli(capsys, "run", str(m), "--results", str(afile))  # the same words as the run
    one_error_line(code, err, f"results directory {str(afile)!r} is a file, not a directory; give a directory")
    # a dry-run writes nothing: a new results path stays absent
    code, _ = run_cli(capsys, "run", str(m), "--results", str(tmp_path / "new"), "--dry-run")
    assert code == 0 and not (tmp_path / "new").exists()


def test_an_executor_param_from_the_command_line_is_named_as_such(capsys):
    code, err = run_cli(capsys, "run", SMOKE, "--dry-run", "-E", "workers=2")
    one_error_line(code, err, "-E workers=2 (--executor-param)")
    assert "the inline executor takes no params" in err
    assert "`workers` is the local executor's: add --executor local" in err
    assert "allowed: none" not in err and not err.startswith(f"error: {SMOKE}")  # not the file's key
    # a misspelt key of the chosen executor: still the did-you-mean, now said to come from -E
    code, err = run_cli(capsys, "run", SMOKE, "--dry-run", "--executor", "local", "-E", "worker=2")
    one_error_line(code, err, "-E worker=2 (--executor-param): executor.params.worker: unknown key 'worker'; did you mean 'workers'?")
    # a key no executor has: said to come from -E, with no executor to suggest
    code, err = run_cli(capsys, "run", SMOKE, "--dry-run", "-E", "bogus=1")
    one_error_line(code, err, "-E bogus=1 (--executor-param)")
    assert "add --executor" not in err


def test_the_file_s_own_executor_key_still_names_the_file(capsys, tmp_path):
    m = write(tmp_path, TINY + "executor: {name: inline, params: {workers: 2}}\n")
    code, err = run_cli(capsys, "run", str(m), "--dry-run")
    one_error_line(code, err, f"{m}: executor.params.workers: unknown key 'workers'")
    assert "-E" not in err


def test_a_dry_run_says_when_it_would_download_cifar10(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("UEBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "data").mkdir()
    code, err = run_cli(capsys, "run", str(REPO / "examples" / "quickstart.yaml"), "--dry-run", "--results", str(tmp_path / "r"))
    assert code == 0, err
    notes = [line for line in err.splitlines() if "cifar10" in line]
    assert len(notes) == 1, err
    note = notes[0]
    assert note.startswith("warning: cifar10: not found in ") and str(tmp_path / "data") in note, note
    assert "$UEBENCH_DATA" in note and "would download CIFAR-10 (170 MB)" in note and str(tmp_path / "cache") in note, note
    fetched = list((tmp_path / "cache").rglob("cifar*"))  # (the cost estimate caches its CPU probe there)
    assert not fetched and not (tmp_path / "r").exists()  # a dry-run fetches and writes nothing


def test_a_dry_run_with_the_data_in_place_says_nothing_of_a_download(capsys, tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "cifar-10-batches-py").mkdir(parents=True)
    monkeypatch.setenv("UEBENCH_DATA", str(data))
    code, err = run_cli(capsys, "run", str(REPO / "examples" / "quickstart.yaml"), "--dry-run", "--results", str(tmp_path / "r"))
    assert code == 0 and "download" not in err, err


@pytest.mark.parametrize(("value", "hint"), [("8", "eps is in [0, 1] pixel units: write 8/255 (= 0.0314) for 8 on the 0-255 scale"),
                                             ("300", "eps is in [0, 1] pixel units")])
def test_eps_above_one_says_it_is_in_pixel_units(capsys, tmp_path, value, hint):
    m = write(tmp_path, TINY.replace("attacks: [clean]", f"attacks: [{{name: random-noise, params: {{eps: {value}}}}}]"))
    code, err = run_cli(capsys, "run", str(m), "--dry-run")
    one_error_line(code, err, f"attacks[0].params.eps: Input should be less than or equal to 1 (got {value}); {hint}")


@pytest.mark.parametrize(("entry", "where", "name"), [
    ("attacks: [{name: em, params: {alpha: 2}}]", "attacks[0]", "alpha"),
    ("attacks: [{name: tap, params: {alpha: 2}}]", "attacks[0]", "alpha"),
    ("attacks: [{name: tp, params: {alpha: 2}}]", "attacks[0]", "alpha"),
    ("defenses: [{name: at, params: {step_size: 2}}]", "defenses[0]", "step_size"),
])
def test_a_pgd_step_size_on_the_0_255_scale_is_refused_with_the_fraction_to_write(capsys, tmp_path, entry, where, name):
    """A step size is in [0, 1] pixel units like eps: 2 (meant as 2/255) is a step larger than the
    whole pixel range, refused with the same hint as eps."""
    text = TINY.replace("attacks: [clean]", entry) if entry.startswith("attacks") else TINY + entry + "\n"
    m = write(tmp_path, text)
    code, err = run_cli(capsys, "run", str(m), "--dry-run")
    one_error_line(code, err, f"{where}.params.{name}: Input should be less than or equal to 1 (got 2); {name} is in [0, 1] "
                              "pixel units: write 2/255 (= 0.0078) for 2 on the 0-255 scale")


def test_eps_hint_is_generic_to_eps_named_params():
    from benchmark.params import format_error

    e = {"type": "less_than_equal", "loc": ("adv_eps",), "msg": "Input should be less than or equal to 1", "input": 16,
         "ctx": {"le": 1}}
    assert format_error(e, object)[1].endswith("(got 16); eps is in [0, 1] pixel units: write 16/255 (= 0.0627) for 16 on the 0-255 scale")
    other = {**e, "loc": ("steps",)}
    assert format_error(other, object)[1] == "Input should be less than or equal to 1 (got 16)"
    mix = {**e, "loc": ("mix_alpha",)}  # a Beta parameter, not a pixel-unit step: no pixel hint
    assert format_error(mix, object)[1] == "Input should be less than or equal to 1 (got 16)"


def test_more_threads_than_cores_is_one_warning(capsys, tmp_path):
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    m = write(tmp_path, TINY + f"threads: {cores + 1}\n")
    code, err = run_cli(capsys, "run", str(m), "--dry-run")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    expected = (f"warning: threads: {cores + 1} x 1 worker = {cores + 1} torch threads on {cores} CPU "
                f"{'core' if cores == 1 else 'cores'} here: they would slow each other down; set threads to at most {cores}")
    assert warnings == [expected], err
    m2 = write(tmp_path, TINY + "threads: 1\n", name="m2.yaml")
    code, err = run_cli(capsys, "run", str(m2), "--dry-run")
    assert code == 0 and "warning" not in err, err


def test_threads_times_workers_is_counted(capsys, tmp_path):
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    m = write(tmp_path, TINY + f"threads: {cores}\n")
    code, err = run_cli(capsys, "run", str(m), "--dry-run", "--workers", "2")
    assert code == 0, err
    assert f"warning: threads: {cores} x 2 workers = {2 * cores} torch threads on {cores} CPU" in err, err


def test_a_leaderboard_of_a_file_says_it_is_a_file(capsys, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    code, err = run_cli(capsys, "leaderboard", str(afile))
    one_error_line(code, err, f"results directory {str(afile)!r} is a file, not a directory; give the directory `bench run")
    assert "run `bench run MATRIX --results" not in err  # bench run refuses a file: no advice to do so
    code, err = run_cli(capsys, "leaderboard", str(tmp_path / "nope"))
    one_error_line(code, err, "holds no results (no cells/ folder); run `bench run MATRIX --results")


def test_the_cell_line_shows_each_metric_in_its_unit():
    from benchmark.summary import metrics_text

    rec = {"metrics": {"accuracy": 0.2389, "surrogate_acc": 13.96, "certified@0.05": float("nan"), "loss": 0.01234},
           "metric_units": {"accuracy": {"metric": "accuracy", "unit": "fraction"},
                            "surrogate_acc": {"metric": "s", "unit": "percent"},
                            "certified@0.05": {"metric": "c", "unit": "fraction"},
                            "loss": {"metric": "l", "unit": "number"}}}
    assert metrics_text(rec) == "accuracy 23.9%, surrogate_acc 14.0%, certified@0.05 abstain, loss 0.01234"
    assert metrics_text({"metrics": {"accuracy": 0.5}}) == "accuracy 0.5"  # an old record without units: as it is


def test_a_run_prints_accuracy_in_percent(tmp_path):
    import yaml

    from benchmark.config import parse_matrix, resolve
    from benchmark.registry import get_registry
    from benchmark.runner import Runner

    lines: list[str] = []
    r = resolve(parse_matrix(yaml.safe_load(TINY)), get_registry())
    Runner(r, tmp_path / "r", log=lines.append, progress=False).run()
    cell = [line for line in lines if line.startswith("[1] ")]
    assert len(cell) == 1 and cell[0].split(": ", 1)[1].startswith("accuracy ") and "%" in cell[0], lines


def test_status_defaults_to_the_results_directory(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(capsys, "status")  # like leaderboard, report, claims: `results` by default
    one_error_line(code, err, "results directory 'results' does not exist")
    m = write(tmp_path, TINY)
    code, err = run_cli(capsys, "status", str(m))  # a matrix alone: compared with `results`
    one_error_line(code, err, "results directory 'results' does not exist")


def test_a_dataset_whose_download_note_raises_gives_no_note():
    """status, prune and --matrix ask every dataset for its note: a third-party one that raises is
    skipped (the run reports the dataset's own failure), never a traceback of a read-only command."""
    from types import SimpleNamespace

    from benchmark.cli_matrix import download_note

    def broken() -> str:
        raise OSError("no network")

    assert download_note(SimpleNamespace(dataset=SimpleNamespace(download_note=broken))) is None
    assert download_note(SimpleNamespace(dataset=SimpleNamespace(download_note=lambda: "would download"))) == "would download"
