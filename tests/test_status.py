"""bench status: done / running / failed / pending per matrix, from records, held locks and the plan."""

from __future__ import annotations

import json

from benchmark.cli import main
from benchmark.config import parse_matrix, resolve
from benchmark.registry import get_registry
from benchmark.runner import Runner
from benchmark.status import Survey, render
from benchmark.store import file_lock
from tests.test_runner import BASE
from tests.test_runner_failures import failing_plugins  # noqa: F401 - a fixture


def test_states_of_every_cell(tmp_path, failing_plugins, capsys):  # noqa: F811
    over = {"attacks": ["clean", "random-noise"], "victims": ["sl", "boom"], "defenses": ["none"], "seeds": [0]}
    r = resolve(parse_matrix({**BASE, **over}), get_registry())
    runner = Runner(r, tmp_path, log=lambda m: None, progress=False)
    clean = [c for c in runner.plan.cells if c.job.attack.name == "clean"]
    runner.run(cells=clean)  # the random-noise cells stay to do
    noise_sl, noise_boom = [c for c in runner.plan.cells if c.job.attack.name == "random-noise"]
    holder = {"pid": 4242, "host": "node7", "since": "2026-12-01T10:00:00+0000", "matrix": "t",
              "what": f"cell {noise_boom.label}", "executor": {"name": "slurm", "job": "77_3"}}
    with file_lock(runner.store.lock_path(noise_boom.key), holder=holder):
        pass  # taken and let go without a record: a killed or cancelled task
    with file_lock(runner.store.lock_path(noise_sl.key), holder={**holder, "pid": 99, "executor": {"name": "inline"}}):
        s = Survey(tmp_path).of_matrix(r)  # held now: running
    assert (s.cells, s.done, len(s.failed), len(s.running), len(s.pending)) == (4, 1, 1, 1, 1)
    assert s.failed[0].label == "clean × boom × none (seed 0)" and s.failed[0].detail == "victim 'boom' (fit): RuntimeError: boom went the victim"
    assert s.running[0].detail == "pid 99 on node7 since 2026-12-01T10:00:00+0000"
    assert s.pending[0].detail.startswith("interrupted: started by slurm job 77_3 on node7")
    assert s.poisons == {"cached": 1, "to generate": 1}
    import shutil

    shutil.rmtree(runner.cache.dir(clean[0].job.key))  # no cell of it is left to do: not kept, not needed
    assert Survey(tmp_path).of_matrix(r).poisons == {"not needed": 1, "to generate": 1}
    text = render([s], tmp_path)
    assert "failed       1\n    clean × boom × none (seed 0): victim 'boom' (fit): RuntimeError: boom went the victim" in text
    # without the matrix: what the results directory knows, per matrix name
    (only,) = Survey(tmp_path).of_results()
    # (both locks are let go now, without records: both cells were interrupted)
    assert (only.matrix, only.cells, only.done, len(only.failed), len(only.pending)) == ("t", None, 1, 1, 2)
    assert main(["status", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["failed"][0]["detail"] == "victim 'boom' (fit): RuntimeError: boom went the victim"


def test_status_of_a_missing_directory_is_one_line(tmp_path, capsys):
    assert main(["status", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.startswith("error: results directory")


def test_a_cell_to_recompute_says_which_metric_it_lacks_and_why(tmp_path):
    base = {**BASE, "attacks": ["clean"], "defenses": ["none"], "seeds": [0], "metrics": ["accuracy"]}
    first = resolve(parse_matrix(base), get_registry())
    assert Runner(first, tmp_path, log=lambda m: None, progress=False).run().exit_code == 0
    # the same cell asked for with another accuracy param and a metric it never computed
    more = resolve(parse_matrix({**base, "metrics": [{"name": "accuracy", "params": {"batch_size": 64}}, "certified-learnability"]}),
                   get_registry())
    s = Survey(tmp_path).of_matrix(more)
    (line,) = s.pending
    assert line.detail == "to recompute: accuracy (other params or version), certified-learnability (not computed)"
    assert Survey(tmp_path).of_matrix(first).done == 1


def test_status_says_which_record_it_set_aside(tmp_path, capsys):
    (tmp_path / "cells").mkdir()
    (tmp_path / "cells" / "abc.json").write_text("{not json")
    assert main(["status", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: skipping result") and "abc.json: not a valid record" in err and "the next run recomputes it" in err
    assert (tmp_path / "cells" / "abc.json.corrupt").exists()


def test_status_of_a_matrix_run_at_another_profile_says_which(tmp_path, capsys):
    import yaml

    m = tmp_path / "m.yaml"
    m.write_text(yaml.safe_dump({**BASE, "attacks": ["clean"], "defenses": ["none"], "profile": "quick"}))
    assert main(["run", str(m), "--profile", "smoke", "--results", str(tmp_path / "res"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["status", str(tmp_path / "res"), str(m)]) == 0
    assert f"holds this matrix's cells at profile smoke: `bench status {tmp_path / 'res'} {m} --profile smoke`" in capsys.readouterr().err
    assert main(["status", str(tmp_path / "res"), str(m), "--profile", "smoke"]) == 0
    assert "holds this matrix's cells" not in capsys.readouterr().err


def test_status_and_tables_of_a_matrix_whose_data_is_not_here_warn(tmp_path, capsys, monkeypatch):
    """Without its data, cifar10's cell keys are the download's: the quickstart's finished cells
    show as not started. status, leaderboard --matrix and report --matrix say why, one warning line
    each, and do not fail."""
    import shutil

    from tests.conftest import REPO

    root = tmp_path / "res"
    shutil.copytree(REPO / "results" / "quickstart", root)
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("UEBENCH_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    matrix = str(REPO / "examples" / "quickstart.yaml")
    warning = (f"warning: {matrix}: dataset 'cifar10-5k' is not found here, so its cells' keys may not match the records "
               "(finished cells may show as not started): cifar10: not found in $UEBENCH_DATA")
    for argv in (["status", str(root), matrix], ["leaderboard", str(root), "--matrix", matrix, "--out", str(tmp_path / "lb.md")],
                 ["report", str(root), "--matrix", matrix, "-o", str(tmp_path / "rep"), "--no-figures"]):
        assert main(argv) == 0, argv
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if "cifar10" in line]
        assert len(lines) == 1 and lines[0].startswith(warning), (argv, err)
    assert main(["status", str(root)]) == 0  # no matrix, no plan: nothing to warn of
    assert "not found" not in capsys.readouterr().err
