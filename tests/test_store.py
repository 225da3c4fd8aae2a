from __future__ import annotations

import json
import os
import threading

import pytest
import torch

from benchmark.store import ArtifactCache, ResultStore, atomic_write_json, file_lock, record_problem, spec_key


def test_spec_key_canonical():
    assert spec_key({"a": 1, "b": [1, 2]}) == spec_key({"b": [1, 2], "a": 1})
    assert spec_key({"a": 1}) != spec_key({"a": 2})


def test_atomic_write_leaves_no_temp(tmp_path):
    atomic_write_json(tmp_path / "x.json", {"a": 1})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_artifact_roundtrip_and_get_or_create(tmp_path):
    cache = ArtifactCache(tmp_path, warn=lambda m: None)
    calls = []

    def create():
        calls.append(1)
        return {"x": torch.arange(6, dtype=torch.uint8)}, {"note": "hi"}

    _t1, _m1, c1 = cache.get_or_create({"k": 1}, create)
    t2, m2, c2 = cache.get_or_create({"k": 1}, create)
    assert (c1, c2) == (False, True) and len(calls) == 1
    assert torch.equal(t2["x"], torch.arange(6, dtype=torch.uint8)) and m2 == {"note": "hi"}
    # the making's seconds are stored beside it; a found artifact is noted in reads with them
    key = spec_key({"k": 1})
    made = cache.created_s(key)
    assert made is not None and made >= 0 and cache.reads == [{"kind": None, "key": key, "created_s": made}]
    cache.get_or_create({"kind": "ref", "k": 3}, create, cost_s=42.0)  # work done before create(): its cost given
    assert cache.created_s(spec_key({"kind": "ref", "k": 3})) == 42.0 and len(cache.reads) == 1
    cache.get_or_create({"kind": "ref", "k": 3}, create)
    assert cache.reads[-1] == {"kind": "ref", "key": spec_key({"kind": "ref", "k": 3}), "created_s": 42.0}


def test_corrupt_artifact_is_quarantined_and_recomputed(tmp_path):
    warnings = []
    cache = ArtifactCache(tmp_path, warn=warnings.append)
    cache.get_or_create({"k": 2}, lambda: ({"x": torch.ones(3)}, {}))
    key = spec_key({"k": 2})
    data = cache.dir(key) / "data.pt"
    data.write_bytes(data.read_bytes()[:-7] + b"garbage")
    assert cache.load(key) is None
    assert "corrupt" in warnings[0] and (cache.dir(key) / "data.pt.corrupt").exists()
    t, _, cached = cache.get_or_create({"k": 2}, lambda: ({"x": torch.zeros(3)}, {}))
    assert not cached and torch.equal(t["x"], torch.zeros(3))


def test_cached_model_trains_once(tmp_path):
    cache = ArtifactCache(tmp_path)
    trained = []

    def train(m):
        trained.append(1)
        with torch.no_grad():
            m.weight.fill_(3.0)

    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    assert cache.model({"arch": "lin"}, a, train) is False
    assert cache.model({"arch": "lin"}, b, train) is True
    assert len(trained) == 1 and torch.equal(b.weight, torch.full((2, 2), 3.0))


RECORD = {"key": "abc", "status": "ok", "dataset": "toy", "profile": "smoke", "attack": "em", "victim": "sl",
          "defense": "none", "seed": 0, "metrics": {"accuracy": 0.5}}


def test_result_store_corrupt_json(tmp_path):
    warnings = []
    store = ResultStore(tmp_path, warn=warnings.append)
    store.put("abc", RECORD)
    assert store.get("abc") == RECORD and store.records() == [RECORD]
    store.path("abc").write_text("{not json")
    assert store.get("abc") is None and warnings
    assert store.records() == []


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("[1, 2]", "a JSON list, not an object"),
        ("42", "a JSON int, not an object"),
        ('"ok"', "a JSON str, not an object"),
        (json.dumps({**RECORD, "status": "done"}), "status 'done' is not one of ok, n/a, failed"),
        (json.dumps({**RECORD, "key": "other"}), "it names cell 'other'"),
        (json.dumps({k: v for k, v in RECORD.items() if k != "attack"}), "'attack' is missing or not a string"),
        (json.dumps({**RECORD, "seed": "0"}), "'seed' is missing or not an integer"),
        (json.dumps({**RECORD, "metrics": {"accuracy": "high"}}), "'metrics' is not a mapping of names to numbers"),
        (json.dumps({**RECORD, "metrics": [0.5]}), "'metrics' is not a mapping of names to numbers"),
        (json.dumps({k: v for k, v in RECORD.items() if k != "metrics"}), "'metrics' is missing"),  # not a done cell without numbers
        (json.dumps({**RECORD, "metrics": {}}), "an 'ok' record with no metrics"),  # it was done, and dropped out of every table
    ],
)
def test_a_record_that_is_json_but_not_a_record_is_moved_aside(tmp_path, content, why):
    assert record_problem(json.loads(content), "abc") == why
    warnings = []
    store = ResultStore(tmp_path, warn=warnings.append)
    store.put("abc", RECORD)
    store.path("abc").write_text(content)
    assert store.get("abc") is None
    assert warnings == [f"result {store.path('abc')} is not a valid record ({why}); moving it aside and recomputing the cell"]
    assert not store.path("abc").exists() and store.path("abc").with_suffix(".json.corrupt").read_text() == content
    store.path("abc").write_text(content)  # the leaderboard skips it too, and moves it aside
    assert store.records() == [] and not store.path("abc").exists()


def test_files_honour_the_umask(tmp_path):
    """Records, artifacts and reports get 0o666 less the umask, like any file the user creates
    (mkstemp alone would leave them 0o600: unreadable to the group sharing a results directory)."""
    old = os.umask(0o002)
    try:
        atomic_write_json(tmp_path / "group.json", {})
        os.umask(0o077)
        atomic_write_json(tmp_path / "private.json", {})
    finally:
        os.umask(old)
    assert (tmp_path / "group.json").stat().st_mode & 0o777 == 0o664
    assert (tmp_path / "private.json").stat().st_mode & 0o777 == 0o600


def test_an_artifact_failing_its_check_is_moved_aside_and_made_again_once(tmp_path):
    """A stored artifact whose checksum holds but which fails the caller's check (a poison edited
    and re-checksummed so that it breaks its budget) is set aside and recomputed, not retried forever."""
    warnings = []
    cache = ArtifactCache(tmp_path, warn=warnings.append)
    spec = {"k": 3}
    cache.get_or_create(spec, lambda: ({"x": torch.full((2,), 200, dtype=torch.uint8)}, {}))
    key = spec_key(spec)
    made = []

    def create():
        made.append(1)
        return {"x": torch.full((2,), 7, dtype=torch.uint8)}, {}

    def check(tensors, meta):
        return "too far" if int(tensors["x"].max()) > 100 else None

    t, _, cached = cache.get_or_create(spec, create, check=check)
    assert not cached and made == [1] and int(t["x"].max()) == 7
    assert warnings == [f"artifact {key} fails its check (too far); moving it aside and recomputing"]
    assert (cache.dir(key) / "data.pt.corrupt").exists()
    t, _, cached = cache.get_or_create(spec, create, check=check)
    assert cached and made == [1]


def test_file_lock_excludes(tmp_path):
    path = tmp_path / "l.lock"
    got = []
    with file_lock(path) as first:
        assert first

        def other():
            with file_lock(path, blocking=False) as ok:
                got.append(ok)

        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert got == [False]
    with file_lock(path, blocking=False) as ok:
        assert ok


def test_records_carry_their_schema_and_other_schemas_fail_naming_both(tmp_path):
    import pytest

    from benchmark.store import SCHEMA_VERSION, SchemaError, upgrade_record

    store = ResultStore(tmp_path)
    cell = {"status": "ok", "dataset": "d", "profile": "quick", "attack": "clean", "victim": "sl", "defense": "none", "seed": 0, "metrics": {"accuracy": 0.5}}
    store.put("old", {"key": "old", **cell})  # written before records had a schema field: schema 1
    store.put("now", {"schema": SCHEMA_VERSION, "key": "now", **cell})
    assert [r["key"] for r in store.records()] == ["now", "old"]
    store.put("new", {"schema": SCHEMA_VERSION + 1, "key": "new"})  # fields unknown: a newer format
    assert (tmp_path / "cells" / "new.json").exists()
    with pytest.raises(SchemaError) as e:
        store.records()
    msg = str(e.value)
    assert "new.json was written with record schema 2; this uebench reads schema 1: upgrade uebench" in msg
    with pytest.raises(SchemaError, match="new.json was written with record schema 2"):
        store.get("new")  # a run meets it before any work, not at the leaderboard after it
    with pytest.raises(SchemaError, match="record schema 0; this uebench reads schema 1.*recompute"):
        upgrade_record({"schema": 0}, "x.json")
