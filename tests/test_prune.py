"""bench prune: records, poisons and lock files of settings a matrix no longer has go to RESULTS/pruned/."""

from __future__ import annotations

import json

import pytest
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


V1 = {"attacks": ["clean", {"name": "random-noise", "label": "noise", "params": {"eps": "4/255"}},
                   {"name": "random-noise", "label": "dropped", "params": {"eps": "2/255"}}],
      "victims": [{"name": "sl", "label": "sl", "params": {"epochs": 1}}]}
V2 = {"attacks": ["clean", {"name": "random-noise", "label": "noise", "params": {"eps": "8/255"}}],
      "victims": [{"name": "sl", "label": "sl", "params": {"epochs": 2}}]}


def test_prune_sets_aside_the_settings_the_matrix_replaced_and_nothing_else(tmp_path, capsys):
    """v1 -> v2: `sl` trains 2 epochs instead of 1, `noise` is made with eps 8/255 instead of 4/255,
    `dropped` is gone. Pruning against v2 moves v1's records under the names v2 still has (clean and
    noise: 4) and the poison only they used (noise at 4/255); it keeps `dropped`'s records (a name v2
    lacks may be another file's: the quick evidence's files share one matrix name), clean's poison
    (v2 uses it), another matrix's records, this matrix's records at another profile, and a record a
    live process holds; an interrupted cell of this matrix loses its lock file."""
    root = tmp_path / "res"
    v1 = _run(root, **V1)
    v2 = _run(root, **V2)
    other = _run(root, name="other", attacks=["random-noise"], dataset={"name": "digits", "subset": 150})
    old = {c.key: c for c in v1.plan.cells}
    replaced = {k for k, c in old.items() if c.job.attack.display != "dropped"}
    keep = {c.key for c in v2.plan.cells} | {c.key for c in other.plan.cells} | (set(old) - replaced)
    assert set(_keys(root)) == set(old) | keep and len(replaced) == 4
    with file_lock(root / "locks" / "cell-0123abcd.lock", holder={"matrix": "t", "pid": 1}):
        pass  # an interrupted cell of an old version of the matrix: a lock file, no record
    with file_lock(root / "locks" / "cell-4567cdef.lock", holder={"matrix": "other", "pid": 1}):
        pass
    # interrupted cells of this matrix name, at another profile or under a label this file lacks
    # (another file's, as with records): left alone
    label = next(c.label for c in v2.plan.cells)
    with file_lock(root / "locks" / "cell-89abcdef.lock", holder={"matrix": "t", "profile": "quick", "what": f"cell {label}"}):
        pass
    with file_lock(root / "locks" / "cell-fedcba98.lock", holder={"matrix": "t", "profile": "smoke", "what": "cell dropped × sl × none (seed 0)"}):
        pass
    clean_v1 = next(k for k, c in old.items() if c.job.attack.name == "clean" and c.defense.name == "none")
    at_quick = json.loads(v1.store.path(clean_v1).read_text())  # this matrix's record at another profile
    v1.store.put("feedfacefeedfacefeed", {**at_quick, "profile": "quick", "key": "feedfacefeedfacefeed"})
    matrix = tmp_path / "m.yaml"
    matrix.write_text(yaml.safe_dump({**BASE, "seeds": [0], **V2}))

    assert main(["leaderboard", str(root)]) == 0 and "noise" in (root / "LEADERBOARD.md").read_text()
    assert main(["prune", str(root), str(matrix)]) == 0  # a listing only
    out = capsys.readouterr().out
    assert "would move 4 records, 1 poisons" in out and "1 lock files" in out and "add --apply" in out
    assert "left alone: 1 records of this matrix at profile quick" in out
    assert "left alone: 2 records of this matrix name under labels no cell of this file has" in out
    assert set(_keys(root)) == set(old) | keep | {"feedfacefeedfacefeed"}

    with file_lock(v1.store.lock_path(clean_v1), holder={"matrix": "t"}):  # a live runner holds one
        assert main(["prune", str(root), str(matrix), "--apply"]) == 0
    out = capsys.readouterr().out
    assert "moved 3 records, 1 poisons" in out and "left alone: 1 records whose cell a live process holds" in out
    assert set(_keys(root)) == keep | {clean_v1, "feedfacefeedfacefeed"}
    (dest,) = (root / "pruned").iterdir()
    assert set(_keys(dest)) == replaced - {clean_v1}
    noise = next(j.key for j in v1.plan.jobs if j.attack.display == "noise")
    clean = next(j.key for j in v2.plan.jobs if j.attack.name == "clean")
    assert _keys(dest, "artifacts") == [noise] and (root / "artifacts" / clean / "data.pt").exists()
    assert "cell-0123abcd.lock" in _keys(dest, "locks") and (root / "locks" / "cell-4567cdef.lock").exists()
    assert (root / "locks" / "cell-89abcdef.lock").exists() and (root / "locks" / "cell-fedcba98.lock").exists()
    # the leaderboard is rewritten without them; a rerun of v2 computes nothing
    assert f"rewrote {root / 'LEADERBOARD.md'}" in out
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


def test_prune_apply_lists_the_records_it_moved_by_their_labels(tmp_path, capsys):
    """The listing after --apply names each moved record (read before it moved), not `None × None`."""
    root = tmp_path / "res"
    one = {"attacks": ["clean"], "defenses": ["none"], "victims": [{"name": "sl", "label": "L", "params": {"epochs": 1}}]}
    (old,) = _run(root, **one).plan.cells
    matrix = tmp_path / "m.yaml"
    matrix.write_text(yaml.safe_dump({**BASE, "seeds": [0], **one, "victims": [{"name": "sl", "label": "L", "params": {"epochs": 2}}]}))
    assert main(["prune", str(root), str(matrix), "--apply"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("moved 1 records") and f"\n  clean × L × none (seed 0)  {old.key}\n" in out, out
    assert "None" not in out and _keys(root) == []


def _quickstart_copy(tmp_path, monkeypatch, data):
    """The committed quickstart records (cifar10) in tmp_path, with $UEBENCH_DATA at ``data`` and an
    empty cache: no training, no data read unless ``data`` holds it."""
    import shutil

    from tests.conftest import REPO

    root = tmp_path / "res"
    shutil.copytree(REPO / "results" / "quickstart", root)
    monkeypatch.setenv("UEBENCH_DATA", str(data))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return root, str(REPO / "examples" / "quickstart.yaml")


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_prune_refuses_a_matrix_whose_data_is_not_here(tmp_path, capsys, monkeypatch):
    """Without its data, cifar10's identity (so every cell key) is the download's, not the records':
    every finished record would look replaced. Prune refuses, one line, moving nothing."""
    (tmp_path / "empty").mkdir()
    root, matrix = _quickstart_copy(tmp_path, monkeypatch, tmp_path / "empty")
    before = _files(root)
    for apply in ([], ["--apply"]):
        assert main(["prune", str(root), matrix, *apply]) == 2
        out, err = capsys.readouterr()
        assert not out and err.count("\n") == 1 and "Traceback" not in err, err
        assert err.startswith(f"error: not pruning: {matrix}: dataset 'cifar10-5k' is not found here, and its cells' keys "
                              "depend on the data found"), err
        assert "nothing moved" in err and "$UEBENCH_DATA" in err and str(tmp_path / "empty") in err, err
        assert _files(root) == before and not (root / "pruned").exists()


def test_prune_with_the_data_here_keeps_the_quickstart_records(tmp_path, capsys, monkeypatch):
    from tests.conftest import CIFAR_NPZ

    if not CIFAR_NPZ.exists():
        pytest.skip(f"shared CIFAR-10 data not found at {CIFAR_NPZ}")
    root, matrix = _quickstart_copy(tmp_path, monkeypatch, CIFAR_NPZ.parent)
    assert main(["prune", str(root), matrix, "--apply"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("would move 0 records, 0 poisons") and not err, (out, err)
    assert len(_keys(root)) == 6


def test_prune_refuses_records_made_with_another_copy_of_the_data(tmp_path, capsys, monkeypatch):
    """Records whose dataset differs from the plan's only in the digest of the data found were made
    from another copy of it (their keys differ for that alone): prune refuses, moving nothing."""
    from tests.conftest import CIFAR_NPZ

    if not CIFAR_NPZ.exists():
        pytest.skip(f"shared CIFAR-10 data not found at {CIFAR_NPZ}")
    root, matrix = _quickstart_copy(tmp_path, monkeypatch, CIFAR_NPZ.parent)
    for i, f in enumerate(sorted((root / "cells").glob("*.json"))):  # as if made from another copy: other keys
        rec = json.loads(f.read_text())
        rec["dataset_spec"]["content"] = "sha256:" + "ab" * 32
        f.unlink()
        (root / "cells" / f"{i:020x}.json").write_text(json.dumps(rec))
    before = _files(root)
    assert main(["prune", str(root), matrix, "--apply"]) == 2
    out, err = capsys.readouterr()
    assert not out and err.count("\n") == 1, err
    assert err.startswith(f"error: not pruning: 6 records of {matrix} (e.g. 00000000000000000000) were made with other "
                          "data than found here (sha256:abababababab... there, sha256:"), err
    assert _files(root) == before and not (root / "pruned").exists()
