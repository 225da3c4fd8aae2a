"""bench prune: records, poisons and lock files of settings a matrix no longer has go to RESULTS/pruned/."""

from __future__ import annotations

import json

import yaml

from benchmark.cli import main
from benchmark.config import parse_matrix, resolve
from benchmark.registry import get_registry
from benchmark.runner import Runner
from benchmark.store import file_lock
from tests.test_runner import BASE


def _run(root, **over):
    runner = Runner(resolve(parse_matrix({**BASE, "seeds": [0], **over}), get_registry()), root, log=lambda m: None, progress=False)
    runner.run()
    return runner


def _keys(root, sub="cells"):
    return sorted(p.stem for p in (root / sub).glob("*.json")) if sub == "cells" else sorted(p.name for p in (root / sub).iterdir())


def test_prune_sets_aside_what_the_matrix_no_longer_has_and_nothing_else(tmp_path, capsys):
    """v1: clean and random-noise on sl(epochs 1); v2 drops random-noise and trains 2 epochs. Pruning
    against v2 moves v1's cells and random-noise's poison (only pruned records used it), keeps clean's
    poison (v2 uses it), another matrix's records (and the poison they use), this matrix's records at another profile, and a
    record a live process holds; an interrupted cell of v1 loses its lock file."""
    root = tmp_path / "res"
    v1 = _run(root, victims=[{"name": "sl", "params": {"epochs": 1}}])
    v2 = _run(root, attacks=["clean"], victims=[{"name": "sl", "params": {"epochs": 2}}])
    other = _run(root, name="other", attacks=["random-noise"], dataset={"name": "digits", "subset": 150})
    old = {c.key for c in v1.plan.cells}
    keep = {c.key for c in v2.plan.cells} | {c.key for c in other.plan.cells}
    assert set(_keys(root)) == old | keep
    # an interrupted cell of an old version of the matrix: a lock file, no record
    with file_lock(root / "locks" / "cell-0123abcd.lock", holder={"matrix": "t", "pid": 1}):
        pass
    with file_lock(root / "locks" / "cell-4567cdef.lock", holder={"matrix": "other", "pid": 1}):
        pass
    # this matrix's record at another profile
    at_quick = json.loads(v1.store.path(next(c.key for c in v1.plan.cells if c.job.attack.name == "clean")).read_text())
    v1.store.put("feedfacefeedfacefeed", {**at_quick, "profile": "quick", "key": "feedfacefeedfacefeed"})
    matrix = tmp_path / "m.yaml"
    matrix.write_text(yaml.safe_dump({**BASE, "seeds": [0], "attacks": ["clean"], "victims": [{"name": "sl", "params": {"epochs": 2}}]}))

    assert main(["leaderboard", str(root)]) == 0 and "sl(epochs=1)" in (root / "LEADERBOARD.md").read_text()
    assert main(["prune", str(root), str(matrix)]) == 0  # a listing only
    out = capsys.readouterr().out
    assert f"would move {len(old)} records, 1 poisons" in out and "1 lock files" in out and "add --apply" in out
    assert "left alone: 1 records of this matrix at profile quick" in out
    assert set(_keys(root)) == old | keep | {"feedfacefeedfacefeed"}

    busy = next(c.key for c in v1.plan.cells if c.job.attack.name == "clean" and c.defense.name == "none")
    with file_lock(v1.store.lock_path(busy), holder={"matrix": "t"}):  # a live runner holds one
        assert main(["prune", str(root), str(matrix), "--apply"]) == 0
    out = capsys.readouterr().out
    assert f"moved {len(old) - 1} records, 1 poisons" in out and "left alone: 1 records whose cell a live process holds" in out
    assert set(_keys(root)) == keep | {busy, "feedfacefeedfacefeed"}
    (dest,) = (root / "pruned").iterdir()
    assert set(_keys(dest)) == old - {busy}
    noise = next(j.key for j in v1.plan.jobs if j.attack.name == "random-noise")
    clean = next(j.key for j in v2.plan.jobs if j.attack.name == "clean")
    assert _keys(dest, "artifacts") == [noise] and (root / "artifacts" / clean / "data.pt").exists()
    assert "cell-0123abcd.lock" in _keys(dest, "locks") and (root / "locks" / "cell-4567cdef.lock").exists()
    # the leaderboard is rewritten without them; a rerun of v2 computes nothing
    assert f"rewrote {root / 'LEADERBOARD.md'}" in out and "random-noise" not in (root / "LEADERBOARD.md").read_text().split("other")[0]
    assert main(["run", str(matrix), "--results", str(root), "--quiet"]) == 0
    assert "0 computed" in capsys.readouterr().err
    assert main(["prune", str(root), str(matrix), "--apply"]) == 0
    assert capsys.readouterr().out.startswith("moved 1 records, 0 poisons")  # the busy one, let go since
    assert main(["prune", str(root), str(matrix)]) == 0
    assert capsys.readouterr().out.startswith("would move 0 records, 0 poisons (0.0 MiB) and 0 lock files")


def test_prune_refuses_what_is_not_a_results_directory(tmp_path, capsys):
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(BASE))
    assert main(["prune", str(tmp_path / "nope"), str(tmp_path / "m.yaml")]) == 2
    assert "holds no results" in capsys.readouterr().err
