"""Every input a user can produce ends in one clear line and exit code 2: no traceback, bounded
output, bounded memory. The inputs are generated here and given to the `bench` command: through
its entry point (`benchmark.cli.main`, in this process: the same code, without paying torch's
import once per input) and, where the process itself matters (a read-only file system, a C-level
crash, memory), through a `bench` subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from benchmark.cli import MAX_ERROR_CHARS, main
from tests.test_cli import bench

GOOD = "dataset: {name: digits, subset: 100}\nprofile: smoke\nattacks: [clean]\nvictims: [sl]\n"


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    """``bench ARGV`` through the CLI's entry point: (exit code, stderr)."""
    try:
        code = main(list(argv))
    except SystemExit as e:  # argparse
        code = e.code
    out, err = capsys.readouterr()
    assert out == "" or code == 0, out
    return code, err


def one_error_line(code: int, err: str, expected: str) -> None:
    """Exit code 2 and exactly one line, ``error: ...`` containing ``expected``, of bounded length."""
    assert code == 2, err
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("error: ") and len(err) <= len("error: ") + MAX_ERROR_CHARS + 1, err[:300]
    assert expected in err, err


def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str) -> None:
    """A plugin module ``name`` with ``source`` in ``tmp_path``, loaded beside the built-ins
    (``UEBENCH_PLUGINS``), as a user's own module would be."""
    from benchmark.registry import DEFAULT_PLUGINS

    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("UEBENCH_PLUGINS", ",".join([*DEFAULT_PLUGINS, name]))


def write(tmp_path: Path, text: str | bytes, name: str = "m.yaml") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


# ------------------------------------------------------------------------------- the matrix file


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (bytes(range(256)) * 8, "is a binary file (a NUL byte at offset 0), not YAML"),
        (b"dataset: digits\nattacks: [caf\xe9]\n", "is not UTF-8 text (byte 0xe9 at offset 29)"),
        (b"", "is empty; a matrix names at least a dataset, attacks and victims"),
        (b"# only a comment\n", "is empty"),
        (GOOD.encode() + b"---\n- a\n", "document 2: a matrix must be a mapping of keys, found list"),
        (b"attacks: [clean\n  victims", "not valid YAML at line"),
        (b"- a\n- b\n", "a matrix must be a mapping of keys, found list"),
        (GOOD.encode() + b"defenses: [iss-jpeg]\ndefenses: [none]\n", "line 6: duplicate key 'defenses' (first at line 5)"),
        (b"dataset: {name: digits, subset: 100, subset: 50}\nattacks: [clean]\nvictims: [sl]\n", "line 1: duplicate key 'subset' (first at line 1)"),
        (b"dataset: digits\nvictims: [sl]\nattacks: [" + b"9" * 5000 + b"]\n", "not a usable YAML value: Exceeds the limit (4300 digits)"),
        (GOOD.encode() + b"~: a\nnull: b\n", "line 6: duplicate key 'null' (first at line 5)"),  # the same key as YAML reads it
    ],
    ids=["binary", "latin-1", "empty", "comment-only", "second-document-a-list", "broken-yaml", "a-list", "duplicate-key",
         "duplicate-nested-key", "5000-digit-int", "null-twice"],
)
def test_a_file_that_is_not_a_matrix(tmp_path, capsys, content, expected):
    m = write(tmp_path, content)
    one_error_line(*run_cli(capsys, "run", str(m)), expected)


def test_a_directory_a_device_file_a_missing_file_and_a_huge_file_as_the_matrix(tmp_path, capsys):
    one_error_line(*run_cli(capsys, "run", str(tmp_path)), f"matrix file {str(tmp_path)!r} is a directory; give the YAML file inside it")
    one_error_line(*run_cli(capsys, "run", "/dev/zero"), "matrix file '/dev/zero' is not a regular file")
    one_error_line(*run_cli(capsys, "run", str(tmp_path / "nope.yaml")), "does not exist")
    big = tmp_path / "big.yaml"
    with open(big, "wb") as f:
        f.truncate(9 * 2**20)  # sparse: 9 MiB of NULs without writing them
    one_error_line(*run_cli(capsys, "run", str(big)), "is larger than 8 MiB; is it a matrix file?")


def test_an_alias_bomb_is_refused_in_bounded_memory_and_output(tmp_path, capsys):
    """Ten levels of ten aliases: 10^10 values if expanded (a 1.5 GB process and a 312 MB error line
    before); refused from the parser's events, in a few MB."""
    lines = ["dataset: digits", "victims: [sl]", "a0: &a0 [" + ", ".join(["lol"] * 10) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 11)]
    m = write(tmp_path, "\n".join([*lines, "attacks: *a10", ""]))
    tracemalloc.start()
    try:
        code, err = run_cli(capsys, "run", str(m))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    one_error_line(code, err, "YAML aliases expand this document by more than 100,000 values; refusing it (an alias bomb?)")
    assert peak < 20 * 2**20, peak


def test_aliases_within_bounds_are_fine_and_recursive_ones_are_refused(tmp_path, capsys):
    from benchmark.config import load_matrix

    m = write(tmp_path, "dataset: digits\nvictims: [&v {name: sl, params: {epochs: 1}}]\nattacks: [clean]\ndefenses: [none]\nx: *v\n")
    one_error_line(*run_cli(capsys, "run", str(m)), "x: unknown key 'x'")
    m = write(tmp_path, "dataset: digits\nvictims: [sl]\nattacks: &a [clean, *a]\n")
    one_error_line(*run_cli(capsys, "run", str(m)), "a YAML alias refers to a value that contains it")
    assert load_matrix(write(tmp_path, "dataset: &d digits\nvictims: [sl]\nattacks: [clean]\nname: *d\n")).name == "digits"


def test_deep_nesting_is_refused_not_a_crash(tmp_path):
    """100,000 nested brackets overflow libyaml's recursive composer (a segfault): refused from the
    parser's events first. In a subprocess, so a regression cannot take the test run down."""
    m = write(tmp_path, "dataset: digits\nvictims: [sl]\nattacks: " + "[" * 100_000 + "]" * 100_000 + "\n")
    p = bench("run", str(m))
    one_error_line(p.returncode, p.stderr, "nested more than 64 levels deep; a matrix nests a few")


def test_huge_rejected_values_and_keys_are_never_echoed_whole(tmp_path, capsys):
    m = write(tmp_path, GOOD.replace("profile: smoke", "profile: " + "x" * 500_000))
    code, err = run_cli(capsys, "run", str(m))
    one_error_line(code, err, "profile: Input should be 'paper', 'quick' or 'smoke' (got 'xxxx")
    assert len(err) < 300
    m = write(tmp_path, GOOD.replace("victims: [sl]", "victims: [{name: sl, params: {" + "k" * 1000 + ": 1}}]"))
    code, err = run_cli(capsys, "run", str(m))
    one_error_line(code, err, "victims[0].params.kkkk")
    assert len(err) < 600
    m = write(tmp_path, GOOD.replace("attacks: [clean]", "attacks: [" + "e" * 100_000 + "]"))
    code, err = run_cli(capsys, "run", str(m))
    one_error_line(code, err, "unknown attack 'eeee")
    assert len(err) < MAX_ERROR_CHARS


# --------------------------------------------------------------------------------- matrix values


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("attacks: [clean]", "attaks: [clean]", "m.yaml: attaks: unknown key 'attaks'; did you mean 'attacks'"),
        ("profile: smoke", "profile: smoke\ndevice: tpu:7", "device: device must be auto, cpu, cuda, cuda:N or mps (got 'tpu:7')"),
        ("profile: smoke", "profile: smoke\nseeds: [123456789012345678901234567890]", "seeds[0]: Input should be less than or equal to 4294967295"),
        ("profile: smoke", "profile: smoke\nseeds: [-1]", "seeds[0]: Input should be greater than or equal to 0"),
        ("profile: smoke", "profile: smoke\nseeds: [true]", "seeds[0]: Input should be a valid integer (got True)"),
        ("profile: smoke", "profile: smoke\nseeds: [1.5]", "seeds[0]: Input should be a valid integer"),
        ("profile: smoke", "profile: smoke\nattack_seed: 18446744073709551616", "attack_seed: Input should be less than or equal to 4294967295"),
        ("subset: 100", "subset: true", "dataset.subset: Input should be a valid integer (got True)"),
        ("subset: 100", "subset: 0", "dataset.subset: Input should be greater than 0"),
        ("subset: 100", "subset: 1e3", ("dataset.subset: Input should be a valid integer (got the string '1e3': YAML reads a quoted number, "
                                        "or an exponent without a dot, as text; write 1000)")),
        ("subset: 100", "subset: '100'", "dataset.subset: Input should be a valid integer (got the string '100': YAML reads"),
        ("profile: smoke", "profile: smoke\nthreads: .inf", "threads: Input should be a valid integer"),
        ("attacks: [clean]", "attacks: [{name: random-noise, params: {eps: 2.0}}]", "attacks[0].params.eps: Input should be less than or equal to 1 (got 2.0)"),
        ("attacks: [clean]", "attacks: [{name: random-noise, params: {eps: .nan}}]", "attacks[0].params.eps: Input should be a finite number (got nan)"),
        ("attacks: [clean]", "attacks: [{name: random-noise, params: {eps: 1e400}}]", "attacks[0].params.eps: Input should be a finite number (got '1e400')"),
        ("attacks: [clean]", "attacks: [{name: random-noise, params: {eps: true}}]", "attacks[0].params.eps: expected a number, got true"),
        ("attacks: [clean]", "attacks: [{name: em, params: {eps: 8/0}}]", "attacks[0].params.eps: division by zero in '8/0'"),
        ("attacks: [clean]", "attacks: [{name: em, params: {steps: true}}]", "attacks[0].params.steps: expected a number, got true"),
        ("victims: [sl]", "victims: [{name: sl, params: {arch: resnet19}}]", "victims[0].params.arch: unknown model 'resnet19'; did you mean 'resnet18'"),
        ("victims: [sl]", "victims: [sl]\nmetrics: [{name: certified-learnability, params: {surrogate_arch: vgg16}}]",
         "metrics[0].params.surrogate_arch: unknown model 'vgg16'; did you mean 'vgg19'"),
        ("victims: [sl]", "victims: [{name: sl, params: {arch: timm/resnet10x}}]", "victims[0].params.arch: unknown timm model 'resnet10x'; did you mean 'resnet10t'"),
        ("subset: 100", "subsett: 100",
         ("dataset.subsett: unknown key 'subsett'; did you mean 'subset', 'test_subset'? (allowed: name, label, subset, test_subset, holdout, test_from_train, "
         "split_seed, test_fraction)")),
        ("subset: 100", "subset: 100, holdout: 0.05", "dataset.holdout: holdout must be a count of images or a percentage like '5%' (got 0.05)"),
        ("subset: 100", "subset: 100, params: [1], foo: 2", "dataset: params: must be a mapping of the source's params (got [1])"),
        ("subset: 100", "params: {subset: 100}", "dataset.params.subset: 'subset' is a key of the matrix's dataset entry: write it beside `name`"),
        ("profile: smoke", "profile: smoke\nseeds: [-1, -1]", "seeds[0]: Input should be greater than or equal to 0 (got -1)"),  # not a union
        ("profile: smoke", "profile: smoke\nexecutor: {name: slurm, params: {sbatch: {account: [1, 2]}}}",
         "executor.params.sbatch.account: must be a string or an integer or a number or true/false (got [1, 2])"),
    ],
    ids=["typo-attaks", "tpu", "seed-2^97", "seed-negative", "seed-true", "seed-float", "attack-seed-2^64", "subset-true",
         "subset-0", "subset-1e3", "subset-quoted", "threads-inf", "eps-2", "eps-nan", "eps-1e400", "eps-true", "eps-8/0", "steps-true", "arch", "surrogate-arch", "timm-arch",
         "dataset-key-typo", "holdout-fraction", "params-a-list", "matrix-key-in-params", "same-value-twice", "sbatch-union"],
)
def test_bad_matrix_values(tmp_path, capsys, old, new, expected):
    assert old in GOOD
    m = write(tmp_path, GOOD.replace(old, new))
    code, err = run_cli(capsys, "run", str(m), "--results", str(tmp_path / "res"))
    one_error_line(code, err.replace(str(m), "m.yaml"), expected)
    assert not (tmp_path / "res").exists()  # refused before anything is written


def test_a_subset_larger_than_the_dataset_fails_once_before_any_work(tmp_path, capsys):
    m = write(tmp_path, GOOD.replace("subset: 100", "subset: 5000").replace("[clean]", "[clean, random-noise, em]"))
    code, err = run_cli(capsys, "run", str(m), "--results", str(tmp_path / "res"))
    one_error_line(code, err, "dataset 'digits': asked for 5000 samples but the split has only")
    assert not list((tmp_path / "res" / "artifacts").iterdir()) and not list((tmp_path / "res" / "cells").iterdir())


@pytest.mark.parametrize(
    "dataset, expected",
    [  # cifar10's sizes come from costs.yaml: the dry-run refuses without loading (no data here)
        ("{name: cifar10, subset: 60000}", "dataset.subset: dataset 'cifar10': asked for 60000 samples but the split has only 50000"),
        ("{name: cifar10, test_subset: 20000}", "dataset.test_subset: dataset 'cifar10': asked for 20000 samples but the split has only 10000"),
        ("{name: cifar10, subset: 45000, holdout: 6000}",
         "dataset.holdout: dataset 'cifar10': a hold-out of 6000 does not fit in the 5000 training images outside the subset of 45000"),
        ("{name: digits, subset: 5000}", "dataset.subset: dataset 'digits': asked for 5000 samples but the split has only"),
        # a victim that would never see 4 of the 10 classes, scored on all of them
        ("{name: digits, subset: 6}", ("dataset.subset: dataset 'digits': 6 images cannot hold one of each of the 10 "
                                       "classes; give at least 10")),
        ("{name: digits, test_subset: 3}", "dataset.test_subset: dataset 'digits': 3 images cannot hold one of each of the 10"),
        ("{name: cifar10, subset: 6}", "dataset.subset: dataset 'cifar10': 6 images cannot hold one of each of the 10 classes"),
        ("{name: cifar10, test_from_train: 10%}",
         "dataset.test_from_train: dataset 'cifar10': the data has a test split (10000 images); test_from_train carves one"),
    ],
)
def test_a_dry_run_refuses_the_splits_the_run_would_refuse(tmp_path, capsys, monkeypatch, dataset, expected):
    monkeypatch.setenv("UEBENCH_DATA", str(tmp_path / "no-data"))
    m = write(tmp_path, GOOD.replace("{name: digits, subset: 100}", dataset))
    code, err = run_cli(capsys, "run", str(m), "--results", str(tmp_path / "res"), "--dry-run")
    one_error_line(code, err, expected)


def test_a_dry_run_of_loaded_data_refuses_a_subset_its_classes_cannot_balance(tmp_path, capsys):
    """Data costs.yaml does not know is loaded to be priced: its class balance is checked too (the
    dry-run passed and the run refused)."""
    import numpy as np

    y = np.array([0] * 20 + [1] * 4 + [2] * 20)
    np.savez(tmp_path / "lopsided.npz", x_train=np.zeros((44, 4, 4, 3), np.uint8), y_train=y, x_test=np.zeros((3, 4, 4, 3), np.uint8),
             y_test=np.arange(3), classes=np.array(["cat", "dog", "bird"]))
    m = write(tmp_path, GOOD.replace("{name: digits, subset: 100}", f"{{name: npz, path: {tmp_path / 'lopsided.npz'}, subset: 30}}"))
    code, err = run_cli(capsys, "run", str(m), "--results", str(tmp_path / "res"), "--dry-run")
    one_error_line(code, err, "dataset.subset: dataset 'npz': class 'dog' (1) has 4 samples, fewer than the 10 asked for")


def test_a_dataset_plugin_that_crashes_fails_once_with_its_reason(tmp_path, capsys, monkeypatch):
    plugin_module(tmp_path, monkeypatch, "crashing_data",
        "from benchmark import DatasetSource, hookimpl\n"
        "class Gone(DatasetSource):\n"
        "    '''Its files are gone.'''\n"
        "    name = 'gone'\n"
        "    def load(self):\n"
        "        open('/no/such/dir/train.bin', 'rb')\n"
        "@hookimpl\n"
        "def register_datasets():\n"
        "    return [Gone]\n"
    )
    m = write(tmp_path, GOOD.replace("{name: digits, subset: 100}", "gone"))
    code, err = run_cli(capsys, "run", str(m), "--results", str(tmp_path / "res"))
    one_error_line(code, err, "dataset 'gone' (gone) failed to load: FileNotFoundError: [Errno 2] No such file or directory: "
                              "'/no/such/dir/train.bin' (at crashing_data.py:6)")


BROKEN_PLUGINS = '''
from pydantic import field_validator
from benchmark import Attack, Budget, Defense, Params, hookimpl

class P(Params):
    eps: float = 0.03

    @field_validator("eps")
    @classmethod
    def _eps(cls, v):
        if v == 0.5:
            raise RuntimeError("validator crashed")
        return v

class Base(Attack):
    "A complete attack (not registered)."
    name, Params = "base", P
    def budget(self):
        return Budget("linf", self.params.eps)
    def generate(self, train, ctx):
        raise RuntimeError("not run")

class InitRaise(Base):
    "Raises in __init__."
    name, Params = "init-raise", P
    def __init__(self, params, label=None):
        raise RuntimeError("boom in __init__")

class ValRaise(Base):
    "Its Params validator raises a RuntimeError."
    name, Params = "val-raise", P

class SpecRaise(Base):
    "Raises in spec()."
    name, Params = "spec-raise", P
    def spec(self):
        raise RuntimeError("spec crashed")

class AppliesRaise(Defense):
    "Raises in applies_to()."
    name, stage, Params = "applies-raise", "data", P
    def applies_to(self, victim):
        raise RuntimeError("applies_to crashed")

@hookimpl
def register_attacks():
    return [InitRaise, ValRaise, SpecRaise]

@hookimpl
def register_defenses():
    return [AppliesRaise]
'''


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("[clean]", "[init-raise]", "attacks[0]: attack 'init-raise' (broken_plan) failed: RuntimeError: boom in __init__ (at broken_plan.py:"),
        ("[clean]", "[{name: val-raise, params: {eps: 0.5}}]", "attacks[0]: attack 'val-raise' (broken_plan) failed: RuntimeError: validator crashed"),
        ("[clean]", "[spec-raise]", "attacks[0]: attack 'spec-raise' (broken_plan) failed: RuntimeError: spec crashed"),
        ("victims: [sl]", "victims: [sl]\ndefenses: [applies-raise]",
         "defenses[0]: defense 'applies-raise' (broken_plan) failed: RuntimeError: applies_to crashed"),
    ],
    ids=["init", "validator", "spec", "applies_to"],
)
def test_a_third_party_plugin_that_crashes_while_the_matrix_is_resolved_is_one_line(tmp_path, capsys, monkeypatch, old, new, expected):
    (tmp_path / "broken_plan.py").write_text(BROKEN_PLUGINS)
    monkeypatch.syspath_prepend(str(tmp_path))
    from benchmark.registry import DEFAULT_PLUGINS

    monkeypatch.setenv("UEBENCH_PLUGINS", ",".join([*DEFAULT_PLUGINS, "broken_plan"]))
    m = write(tmp_path, GOOD.replace(old, new))
    (tmp_path / "res" / "cells").mkdir(parents=True)
    for argv in (["run", str(m), "--results", str(tmp_path / "res"), "--dry-run"], ["status", str(tmp_path / "res"), str(m)]):
        one_error_line(*run_cli(capsys, *argv), expected)


# ----------------------------------------------------------------------------- command-line options


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--workers", "0"], "argument --workers: a number of worker processes from 1 to 1024 (got '0')"),
        (["--workers", "-3"], "argument --workers: a number of worker processes from 1 to 1024 (got '-3')"),
        (["--workers", "two"], "argument --workers: a number of worker processes from 1 to 1024 (got 'two')"),
        (["--device", "cuda:abc"], "argument --device: device must be auto, cpu, cuda, cuda:N or mps (got 'cuda:abc')"),
        (["--device", "tpu:7"], "argument --device: device must be auto, cpu, cuda, cuda:N or mps (got 'tpu:7')"),
        (["--profile", "fast"], "argument --profile: invalid choice: 'fast'"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_bad_options(tmp_path, capsys, args, expected):
    m = write(tmp_path, GOOD)
    one_error_line(*run_cli(capsys, "run", str(m), *args), expected)


def test_a_device_this_machine_does_not_have(tmp_path, capsys):
    import torch

    if torch.cuda.is_available() and torch.cuda.device_count() > 7:  # pragma: no cover
        pytest.skip("this machine has a cuda:7")
    m = write(tmp_path, GOOD)
    code, err = run_cli(capsys, "run", str(m), "--device", "cuda:7", "--results", str(tmp_path / "res"))
    one_error_line(code, err, "device 'cuda:7' was asked for but")


# ----------------------------------------------------------------------------- results directories


def test_results_naming_a_file(tmp_path, capsys):
    m = write(tmp_path, GOOD)
    f = write(tmp_path, "not a directory", name="results.txt")
    one_error_line(*run_cli(capsys, "run", str(m), "--results", str(f)),
                   f"results directory {str(f)!r} is a file, not a directory; give a directory (new or with earlier results)")
    one_error_line(*run_cli(capsys, "leaderboard", str(f)), f"results directory {str(f)!r} is a file, not a directory; "
                   "give the directory `bench run --results` wrote")


def _read_only(directory: Path) -> list[str] | None:
    """A command prefix under which ``directory`` is read-only: ``chmod`` for a normal user; for
    root (whom permissions do not stop), a read-only bind mount in a private mount namespace."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        return []
    if shutil.which("unshare") is None:
        return None
    d = str(directory)
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount --bind {d} {d} && mount -o remount,ro,bind {d} {d}"],
                           capture_output=True)
    if probe.returncode != 0:
        return None
    return ["unshare", "-m", "sh", "-c", f'mount --bind {d} {d} && mount -o remount,ro,bind {d} {d} && exec "$@"', "sh"]


def test_a_read_only_results_directory(tmp_path):
    """One line before any work, for `bench run`; `bench leaderboard` on it says to use --out."""
    m = write(tmp_path, GOOD)
    res = tmp_path / "res"
    first = bench("run", str(m), "--results", str(res), "--quiet")
    assert first.returncode == 0, first.stderr
    prefix = _read_only(res)
    if prefix is None:
        pytest.skip("cannot make a read-only directory here (root without mount namespaces)")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    try:
        cmd = [*prefix, sys.executable, "-m", "benchmark"]
        p = subprocess.run([*cmd, "run", str(m), "--results", str(res)], env=env, capture_output=True, text=True, timeout=300)
        one_error_line(p.returncode, p.stderr, f"results directory {str(res)!r} is not writable")
        assert "Read-only file system" in p.stderr or "Permission denied" in p.stderr
        p = subprocess.run([*cmd, "leaderboard", str(res)], env=env, capture_output=True, text=True, timeout=300)
        one_error_line(p.returncode, p.stderr, "cannot write the leaderboard to")
        assert "write it elsewhere with --out FILE" in p.stderr
        p = subprocess.run([*cmd, "leaderboard", str(res), "--out", str(tmp_path / "LB.md")], env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0 and "| clean" in (tmp_path / "LB.md").read_text(), p.stderr
    finally:
        res.chmod(0o755)


# ------------------------------------------------------------------------------- damaged records


@pytest.mark.parametrize("content", ["[1, 2, 3]", "null", '"done"', '{"status": "ok"}'])
def test_a_record_that_is_json_but_not_a_record_is_moved_aside_and_recomputed(tmp_path, capsys, content):
    """It used to stop `bench run` and `bench leaderboard` with a traceback until deleted by hand."""
    m = write(tmp_path, GOOD)
    res = tmp_path / "res"
    assert run_cli(capsys, "run", str(m), "--results", str(res), "--quiet")[0] == 0
    (cell,) = (res / "cells").glob("*.json")
    good = json.loads(cell.read_text())
    cell.write_text(content)
    code, err = run_cli(capsys, "leaderboard", str(res))
    assert code == 0 and "not a valid record" in err and "Traceback" not in err
    assert cell.with_suffix(".json.corrupt").read_text() == content and not cell.exists()
    cell.write_text(content)
    code, err = run_cli(capsys, "run", str(m), "--results", str(res), "--quiet")
    assert code == 0 and "moving it aside and recomputing the cell" in err and "1 computed" in err, err
    assert json.loads(cell.read_text())["metrics"] == good["metrics"]


def test_a_tampered_poison_that_passes_its_checksum_is_moved_aside_and_regenerated(tmp_path, capsys):
    """A poison edited to break its budget, with its checksum updated, is set aside and generated
    again (once), not failed on every rerun."""
    import hashlib
    import io

    import torch

    m = write(tmp_path, GOOD.replace("[clean]", "[random-noise]"))
    res = tmp_path / "res"
    assert run_cli(capsys, "run", str(m), "--results", str(res), "--quiet")[0] == 0
    (art,) = (res / "artifacts").iterdir()
    tensors = torch.load(art / "data.pt", weights_only=True)
    tensors["x"] = 255 - tensors["x"]
    buf = io.BytesIO()
    torch.save(tensors, buf)
    (art / "data.pt").write_bytes(buf.getvalue())
    meta = json.loads((art / "meta.json").read_text())
    (art / "meta.json").write_text(json.dumps({**meta, "sha256": hashlib.sha256(buf.getvalue()).hexdigest()}))
    for cell in (res / "cells").glob("*.json"):
        cell.unlink()
    code, err = run_cli(capsys, "run", str(m), "--results", str(res), "--quiet")
    assert code == 0 and "fails its check (linf distance" in err and "1 computed, 0 n/a, 0 failed" in err, err
    assert (art / "data.pt.corrupt").exists()
    assert json.loads((art / "meta.json").read_text())["sha256"] == meta["sha256"]  # the same poison, generated again


def test_an_output_path_that_cannot_be_a_file_is_refused_before_any_work(tmp_path, capsys):
    """leaderboard/claims --out and audit --json are checked first: an audit can take hours before it writes."""
    res = tmp_path / "res"
    (res / "cells").mkdir(parents=True)
    (tmp_path / "afile").write_text("x")
    for argv, expected in [
        (["leaderboard", str(res), "--out", str(tmp_path)], f"--out {str(tmp_path)!r} is a directory; give a file path"),
        (["leaderboard", str(res), "--out", str(tmp_path / "new") + "/"], "is a directory; give a file path"),
        (["claims", str(res), "--out", str(tmp_path)], f"--out {str(tmp_path)!r} is a directory; give a file path"),
        (["claims", str(res), "--out", str(tmp_path / "afile" / "c.md")], f"{str(tmp_path / 'afile')!r} is a file, not a directory"),
        (["audit", str(res), "--cells", "1", "--json", str(tmp_path)], f"--json {str(tmp_path)!r} is a directory; give a file path"),
        (["audit", str(res), "--cells", "1", "--keep", str(tmp_path / "afile")], "is a file; give a directory to recompute into"),
        (["audit", str(res), "--cells", "1", "--data", str(tmp_path / "nope")], "is not a directory"),
        (["audit", str(tmp_path / "nope"), "--cells", "1"], "holds no results (no cells/ folder); run `bench run MATRIX --results"),
    ]:
        one_error_line(*run_cli(capsys, *argv), expected)
    assert not (tmp_path / "new").exists() and not (tmp_path / "figures").exists()
    (res / "CLAIMS.md").mkdir()
    one_error_line(*run_cli(capsys, "claims", str(res)), "CLAIMS.md' is a directory; move it, or write elsewhere with --out FILE")


def test_executor_params_are_read_with_the_matrix_files_safeguards(capsys):
    base = ["run", str(Path(__file__).resolve().parents[1] / "examples" / "smoke.yaml"), "--dry-run", "--executor", "local"]
    one_error_line(*run_cli(capsys, *base, "-E", "workers=" + "[" * 10_000), "--executor-param workers: nested more than 64 levels deep")
    one_error_line(*run_cli(capsys, *base, "-E", "workers=" + "9" * 5000), "--executor-param workers: not a usable YAML value")
    one_error_line(*run_cli(capsys, *base, "-E", "workers=[1"), "executor.params.workers: Input should be a valid integer")  # not YAML: the text


def test_an_empty_path_is_refused_not_taken_for_the_current_directory(capsys):
    one_error_line(*run_cli(capsys, "run", ""), "MATRIX is an empty string; give a path")
    one_error_line(*run_cli(capsys, "run", "m.yaml", "--results", ""), "--results is an empty string; give a path")
    one_error_line(*run_cli(capsys, "leaderboard", ""), "RESULTS is an empty string; give a path")
    one_error_line(*run_cli(capsys, "claims", "res", "--out="), "--out is an empty string; give a path")
    one_error_line(*run_cli(capsys, "report", "res", "-o", ""), "-o is an empty string; give a path")


def test_keys_that_only_look_alike_are_not_duplicates():
    from benchmark.yaml_file import load_yaml_documents

    assert load_yaml_documents("{1: a, '1': b}") == [{1: "a", "1": "b"}]
    assert load_yaml_documents("{true: c, 'true': d}") == [{True: "c", "true": "d"}]
    assert load_yaml_documents("base: &b {x: 1}\nm: {<<: *b, x: 2}\n")[0]["m"] == {"x": 2}  # a merge key overrides, not a duplicate


def test_an_ops_pixel_count_the_images_cannot_take_is_one_line_and_no_failed_cell(tmp_path, capsys):
    """`pixels` is bounded by the data's image size, known only once loaded: the run stops with one
    line (exit 2) and records nothing, rather than a cell failed by a crash and kept on reruns."""
    m = write(tmp_path, GOOD.replace("[clean]", "[{name: ops, params: {pixels: 100000}}]"))
    code, err = run_cli(capsys, "run", str(m), "--results", str(tmp_path / "res"), "--quiet")
    assert code == 2 and "Traceback" not in err, err
    assert err.splitlines()[-1] == ("error: attack 'ops(pixels=100000)': pixels 100000 exceeds the 64 pixel positions of "
                                    "this dataset's 8x8 images; give at most 64"), err
    assert not list((tmp_path / "res" / "cells").iterdir())


def test_an_unbounded_eps_of_a_third_party_attack_is_refused_by_its_budget(tmp_path, capsys, monkeypatch):
    """A plugin whose Params leave eps unbounded: `eps: 8` would pass the release check (2040/255)
    and turn every image white, recorded ok. The budget's range is checked when the matrix is
    resolved, naming the key."""
    plugin_module(tmp_path, monkeypatch, "nobounds",
        "import torch\n"
        "from benchmark import Attack, Params, Poison, hookimpl, release\n"
        "class NoBounds(Attack):\n"
        "    '''Adds eps everywhere.'''\n"
        "    name = 'nobounds'\n"
        "    class Params(Params):\n"
        "        eps: float = 8 / 255\n"
        "    profiles = {'quick': {}, 'smoke': {}}\n"
        "    def generate(self, train, ctx):\n"
        "        delta = torch.full(train.x.shape, self.params.eps)\n"
        "        return Poison(x=release(train.x, delta), delta=delta, kind='samplewise')\n"
        "@hookimpl\n"
        "def register_attacks():\n"
        "    return [NoBounds]\n"
    )
    m = write(tmp_path, GOOD.replace("[clean]", "[{name: nobounds, params: {eps: 8}}]"))
    for extra in (["--dry-run"], []):
        code, err = run_cli(capsys, "run", str(m), "--results", str(tmp_path / "res"), *extra)
        one_error_line(code, err, "attacks[0].params.eps: the attack's budget L-inf 2040/255 is outside its threat model: "
                                  "the radius is in [0, 1] pixel units: write 8/255 (= 0.0314) for 8 on the 0-255 scale")
    assert not (tmp_path / "res" / "cells").exists() or not list((tmp_path / "res" / "cells").iterdir())
    m2 = write(tmp_path, GOOD.replace("[clean]", "[{name: nobounds, params: {eps: -0.1}}]"), name="m2.yaml")
    code, err = run_cli(capsys, "run", str(m2), "--results", str(tmp_path / "res"), "--dry-run")
    one_error_line(code, err, "attacks[0].params.eps: the attack's budget L-inf -0.1 is outside its threat model")


@pytest.mark.parametrize("eps", [None, float("nan"), "8/255"])
def test_a_budget_whose_radius_is_no_number_is_left_to_the_run(tmp_path, capsys, monkeypatch, eps):
    """A plugin's budget() with a radius that is no number does not crash resolving the matrix
    (status, prune, --matrix resolve it too): the run's budget check fails its cells with the reason."""
    from benchmark.interfaces import Budget
    from plugins.attacks.random_noise import RandomNoise

    monkeypatch.setattr(RandomNoise, "budget", lambda self: Budget("linf", eps))
    m = write(tmp_path, GOOD.replace("[clean]", "[random-noise]"))
    code, err = run_cli(capsys, "run", str(m), "--results", str(tmp_path / "res"), "--dry-run")
    assert code == 0 and "Traceback" not in err, err
