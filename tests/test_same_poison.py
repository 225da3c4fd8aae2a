"""A matrix that changes only what an attack never sees (the test subset; the hold-out when a
subset is set) copies the stored poison instead of generating it again (benchmark.same_poison)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmark.config import parse_matrix, resolve
from benchmark.registry import get_registry
from benchmark.runner import Runner
from benchmark.same_poison import training_view
from benchmark.store import spec_key

BASE = {"name": "t", "profile": "smoke", "attacks": ["random-noise"], "victims": ["sl"], "defenses": ["none"]}


def runner(tmp_path, dataset, logs):
    m = parse_matrix({**BASE, "dataset": {"name": "digits", **dataset}})
    return Runner(resolve(m, get_registry()), tmp_path / "res", log=logs.append, progress=False)


def poison_meta(r: Runner) -> dict:
    (rec,) = [x for x in r.store.records() if x["key"] in {c.key for c in r.plan.cells}]
    return rec["poison_meta"]


def test_training_view_drops_what_the_attack_never_sees():
    spec = {"kind": "poison", "attack": {"name": "em"}, "dataset": {"name": "d", "subset": 100, "test_subset": 50, "holdout": 10}}
    assert training_view(spec) == {"kind": "poison", "attack": {"name": "em"}, "dataset": {"name": "d", "subset": 100}}
    whole = {**spec, "dataset": {"name": "d", "subset": None, "test_subset": None, "holdout": 10}}
    assert training_view(whole)["dataset"] == {"name": "d", "subset": None, "holdout": 10}  # carved from the training set
    assert training_view({"kind": "cell", "dataset": {}}) is None


def test_a_new_test_subset_or_holdout_copies_the_poison(tmp_path):
    logs: list[str] = []
    first = runner(tmp_path, {"subset": 200}, logs)
    assert first.run().ok == 1
    made = poison_meta(first)
    assert len(made["train_sha256"]) == 64 and "same_as" not in made
    logs.clear()
    second = runner(tmp_path, {"subset": 200, "test_subset": 100, "holdout": 20}, logs)
    assert second.plan.jobs[0].key != first.plan.jobs[0].key  # the keys stay as they were
    assert second.poisons_to_generate() == set()  # nothing to generate: the dry-run and SLURM price none
    assert second.run().ok == 1
    assert not any(s.startswith("generating poison") for s in logs)
    assert any("copied, not generated" in s for s in logs)
    copied = poison_meta(second)
    assert copied["same_as"] == first.plan.jobs[0].key and copied["x_sha256"] == made["x_sha256"]
    assert copied["train_sha256"] == made["train_sha256"]


def test_another_training_set_generates_its_own_poison(tmp_path):
    logs: list[str] = []
    assert runner(tmp_path, {"subset": 200}, logs).run().ok == 1
    other = runner(tmp_path, {"subset": 200, "split_seed": 1}, logs)  # another subset: another poison
    assert other.poisons_to_generate() == {other.plan.jobs[0].key}
    # without a subset a hold-out is carved out of the training set: another training set
    assert runner(tmp_path, {}, logs).run().ok == 1
    carved = runner(tmp_path, {"holdout": 20}, logs)
    assert carved.poisons_to_generate() == {carved.plan.jobs[0].key}


def test_a_poison_made_from_other_images_is_not_copied(tmp_path):
    """A found poison that recorded another training digest (the source's files changed on disk
    under the same identity) is not the same poison: generated anew."""
    logs: list[str] = []
    first = runner(tmp_path, {"subset": 200}, logs)
    assert first.run().ok == 1
    meta_path = tmp_path / "res" / "artifacts" / first.plan.jobs[0].key / "meta.json"
    stored = json.loads(meta_path.read_text())
    stored["meta"]["train_sha256"] = "0" * 64
    meta_path.write_text(json.dumps(stored))
    logs.clear()
    second = runner(tmp_path, {"subset": 200, "test_subset": 100}, logs)
    assert second.run().ok == 1
    assert any(s.startswith("generating poison") for s in logs) and "same_as" not in poison_meta(second)


def test_an_audit_of_a_copied_poison_sees_no_change():
    """``same_as`` says where a copy came from, not how the poison came out: an audit that
    regenerates the poison (no copy in its fresh cache) must not call it another poison."""
    from benchmark.audit import changes

    made = {"x_sha256": "ab" * 32, "train_sha256": "cd" * 32, "outer_iterations": 3}
    assert changes({"poison_meta": {**made, "same_as": "k" * 20}}, {"poison_meta": made}) == []
    assert changes({"poison_meta": made}, {"poison_meta": {**made, "outer_iterations": 4}}) == ["poison outer_iterations: 3 -> 4"]


def test_dry_run_and_status_say_the_poison_will_be_copied(tmp_path):
    """What `bench run` will do (copy, not generate) is what `--dry-run` and `bench status` say."""
    from benchmark.dry_run import describe
    from benchmark.status import Survey

    logs: list[str] = []
    first = runner(tmp_path, {"subset": 200}, logs)
    assert first.run().ok == 1
    second = runner(tmp_path, {"subset": 200, "test_subset": 100}, logs)
    text = describe(second, cost=False)
    assert "(poisons: 0 cached, 1 to copy, 0 to generate;" in text
    assert f"to copy from {first.plan.jobs[0].key}" in text
    assert Survey(tmp_path / "res").of_matrix(second.r).poisons == {"to copy": 1}


def test_a_runner_that_loaded_the_data_compares_the_training_digest(tmp_path):
    """Where the training set is loaded its digest decides, as in `bench run`; before, a found
    poison counts as a copy (the dry-run says unless the images changed)."""
    logs: list[str] = []
    first = runner(tmp_path, {"subset": 200}, logs)
    assert first.run().ok == 1
    second = runner(tmp_path, {"subset": 200, "test_subset": 100}, logs)
    second.splits()
    assert second.poisons_to_generate() == set()  # the same images: copied
    meta_path = tmp_path / "res" / "artifacts" / first.plan.jobs[0].key / "meta.json"
    stored = json.loads(meta_path.read_text())
    stored["meta"]["train_sha256"] = "0" * 64
    meta_path.write_text(json.dumps(stored))
    third = runner(tmp_path, {"subset": 200, "test_subset": 100}, logs)
    assert third.poisons_to_generate() == set()  # the data not loaded: a copy unless the images changed
    third.splits()
    assert third.poisons_to_generate() == {third.plan.jobs[0].key}  # they did: generated, as run() does
    logs.clear()
    assert third.run().ok == 1
    assert any(s.startswith("generating poison") for s in logs)
    assert any(f"artifact {first.plan.jobs[0].key} is the same poison but was made from other training images" in s for s in logs)


def test_a_cache_miss_digests_the_training_set_once_before_generating(tmp_path, monkeypatch):
    """Once for the lookup of the same poison and the poison's `train_sha256`, once after
    `generate` (did the attack change its input in place?)."""
    import benchmark.data.dataset
    import benchmark.plugin_failure
    import benchmark.runner
    from benchmark.data.dataset import data_checksum

    digested: list[object] = []

    def counting(*parts):
        digested.append(parts[0])
        return data_checksum(*parts)

    monkeypatch.setattr(benchmark.data.dataset, "data_checksum", counting)
    monkeypatch.setattr(benchmark.runner, "data_checksum", counting)
    monkeypatch.setattr(benchmark.plugin_failure, "data_checksum", counting)
    r = runner(tmp_path, {"subset": 200}, [])
    assert r.run().ok == 1
    assert sum(1 for d in digested if d is r.splits().train) == 2


def test_slurm_submits_no_attack_job_for_a_poison_the_dry_run_lists_as_a_copy(tmp_path, monkeypatch):
    """SLURM submission decides as the dry-run lists (one index of the stored poisons, read once)."""
    from contextlib import nullcontext
    from types import SimpleNamespace

    from benchmark.executor import RunOptions
    from benchmark.executors.slurm import SlurmParams, Submission

    m = parse_matrix({**BASE, "attacks": ["em", "em-class"], "dataset": {"name": "digits", "subset": 200, "test_subset": 100}})
    sub = Submission(SlurmParams(), resolve(m, get_registry()), tmp_path / "res", RunOptions(log=lambda s: None))
    em, em_class = sub.plan.jobs
    stored = {**em.spec, "dataset": {**em.spec["dataset"], "test_subset": 50}}
    sub.cache.dir(spec_key(stored)).mkdir(parents=True)
    (sub.cache.dir(spec_key(stored)) / "meta.json").write_text(json.dumps({"spec": stored, "meta": {"train_sha256": "0" * 64}}))
    submitted: list[tuple[str, str]] = []

    class Executor:
        def update_parameters(self, **kw):
            pass

        def batch(self):
            return nullcontext()

        def submit(self, task):
            submitted.append((task.kind, task.poison))
            return SimpleNamespace(job_id=str(len(submitted)), paths=SimpleNamespace(stderr="log"))

    sub._executor = Executor  # type: ignore[method-assign]
    read_text = Path.read_text
    reads: list[Path] = []
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: reads.append(self) or read_text(self, *a, **k))
    sub._submit_all({j.key: j.cells for j in sub.plan.jobs}, {}, "t", [], [])
    monkeypatch.undo()
    assert ("attack", em_class.key) in submitted and ("attack", em.key) not in submitted  # em's: a copy
    assert [p.parent.name for p in reads if p.name == "meta.json"] == [spec_key(stored)]  # read once for both jobs
    from benchmark.dry_run import describe

    assert "(poisons: 0 cached, 1 to copy, 1 to generate;" in describe(Runner(sub.r, tmp_path / "res", progress=False), cost=False)
