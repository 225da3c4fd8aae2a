"""``bench new-plugin``: each kind's package installs offline, ``bench plugins`` lists it with its
distribution and version, and its own tests pass with uebench's pytest plugin; bad input is one
line and exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.cli import main

REPO = Path(__file__).resolve().parents[1]
KINDS = ("attack", "victim", "defense", "metric")


def _env(*paths: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("UEBENCH_PLUGINS", "PYTHONPATH")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *map(str, paths)])
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # the kit's fixtures come from -p below, wherever uebench is installed
    return env


#: the plugin each kind's package is generated for: the attack's and the defense's class names
#: would hide names their modules import (``Poison``, ``RunContext``)
NAMES = {"attack": "poison", "victim": "my-victim", "defense": "run-context", "metric": "my-metric"}


def test_every_kind_installs_lists_and_passes_its_tests(tmp_path, capsys):
    dirs = []
    for kind in KINDS:
        assert main(["new-plugin", kind, NAMES[kind], str(tmp_path / f"uebench-{NAMES[kind]}")]) == 0
        dirs.append(tmp_path / f"uebench-{NAMES[kind]}")
    assert "pip install -e" in capsys.readouterr().out
    for d in dirs:
        assert {p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file()} >= {"pyproject.toml", "README.md"}
        assert 'uebench = "uebench_' not in (d / "pyproject.toml").read_text()  # the entry point is name = module
        assert "[project.entry-points.uebench]" in (d / "pyproject.toml").read_text()
    site = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                          "--no-build-isolation", "--no-index", "--target", str(site), *map(str, dirs)],
                         check=False, capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr[-2000:]
    env = _env(site)
    listed = subprocess.run([sys.executable, "-m", "benchmark", "plugins", "--json"], check=False, env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr[-2000:]
    rows = {(r["kind"], r["name"]): r for r in json.loads(listed.stdout)}
    for kind in KINDS:
        row = rows[(kind, NAMES[kind])]
        assert (row["package"], row["package_version"], row["version"], row["usable"]) == (f"uebench-{NAMES[kind]}", "0.1.0", "1", True)
    assert "class PoisonAttack(Attack):" in (dirs[0] / "src" / "uebench_poison" / "attack.py").read_text()
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "benchmark.testing.pytest_plugin", "-p", "no:cacheprovider",
                            "--rootdir", str(tmp_path), *map(str, dirs)],
                           check=False, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert "11 passed" in tests.stdout


def _bad(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as e:
        code = main(argv)
        raise SystemExit(code)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    return err


def test_existing_dir_is_refused(tmp_path, capsys):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "keep.txt").write_text("mine")
    assert "already exists" in _bad(["new-plugin", "attack", "foo", str(tmp_path / "pkg")], capsys)
    assert (tmp_path / "pkg" / "keep.txt").read_text() == "mine" and len(list((tmp_path / "pkg").iterdir())) == 1
    (tmp_path / "empty").mkdir()
    assert main(["new-plugin", "attack", "foo", str(tmp_path / "empty")]) == 0  # an empty directory is fine


@pytest.mark.parametrize(("argv", "says"), [
    (["new-plugin", "dataset", "foo"], "kind"),
    (["new-plugin", "attack", "Foo"], "NAME"),
    (["new-plugin", "attack", "foo bar"], "NAME"),
    (["new-plugin", "attack", "-foo-"], None),
    (["new-plugin", "attack", "foo--bar"], "NAME"),
    (["new-plugin", "attack", "em"], "already a registered attack"),
    (["new-plugin", "metric", "x" * 41], "at most 40"),
])
def test_bad_kind_or_name(argv, says, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = _bad(argv, capsys)
    if says:
        assert says in err
    assert list(tmp_path.iterdir()) == []  # nothing written


def _installed(site: Path, dist: str, version: str, module: str | None = None) -> None:
    """A distribution ``dist`` as pip leaves it in ``site``: its dist-info, and its module if given."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    if module:
        (site / f"{module}.py").write_text("")


def test_a_name_whose_package_or_module_is_installed_is_refused(tmp_path, capsys, monkeypatch):
    """`pip install -e uebench-NAME` of the new package would replace an installed distribution
    uebench-NAME or shadow a module uebench_NAME, whatever kind of plugin (or none) they hold."""
    site = tmp_path / "site"
    _installed(site, "uebench-taken", "0.2")  # a distribution, its module elsewhere (or none)
    (site / "uebench_modonly").mkdir()  # a module of no distribution
    (site / "uebench_modonly" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(site))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    err = _bad(["new-plugin", "attack", "taken"], capsys)
    assert "NAME 'taken' is taken: the distribution uebench-taken 0.2 is already installed" in err
    err = _bad(["new-plugin", "metric", "modonly", str(work / "elsewhere")], capsys)
    assert "NAME 'modonly' is taken: the module uebench_modonly is already importable (from " in err
    assert list(work.iterdir()) == []  # nothing written


def test_the_installed_example_package_is_not_replaced(tmp_path, capsys, monkeypatch):
    from importlib import metadata

    try:
        metadata.version("uebench-example")
    except metadata.PackageNotFoundError:
        pytest.skip("uebench-example is not installed here")
    monkeypatch.chdir(tmp_path)
    assert "uebench-example" in _bad(["new-plugin", "attack", "example"], capsys)
    assert list(tmp_path.iterdir()) == []


def test_a_name_pytest_would_collect_gets_another_class_name_and_the_texts_fit_the_kind(tmp_path, capsys):
    assert main(["new-plugin", "attack", "test", str(tmp_path / "a")]) == 0
    assert main(["new-plugin", "metric", "testing-x", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "class AttackTest(Attack):" in (tmp_path / "a" / "src" / "uebench_test" / "attack.py").read_text()
    assert "class MetricTestingX(Metric):" in (tmp_path / "m" / "src" / "uebench_testing_x" / "metric.py").read_text()
    assert "every\ncontract of an attack)" in (tmp_path / "a" / "tests" / "test_uebench_test.py").read_text()
    assert "contract of a metric)" in (tmp_path / "m" / "tests" / "test_uebench_testing_x.py").read_text()
    # the printed next steps name the TODOs left to fill
    assert "fill its TODOs" in out and "src/uebench_test/attack.py" in out and "Deviations" in out and "README" in out
    collected = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                                "-p", "benchmark.testing.pytest_plugin", "--rootdir", str(tmp_path / "a"), str(tmp_path / "a" / "tests")],
                               check=False, env=_env(tmp_path / "a" / "src"), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert collected.returncode == 0, collected.stdout[-2000:]
    assert "PytestCollectionWarning" not in collected.stdout + collected.stderr
    assert "3 tests collected" in collected.stdout


def test_every_generated_docstring_leaves_source_and_deviations_to_fill():
    from benchmark.scaffold import MODULES

    for kind, text in MODULES.items():
        assert "Source: TODO" in text and "Deviations: TODO" in text, kind
