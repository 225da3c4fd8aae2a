"""`bench run --dry-run` says what `bench run` will do with the poisons: a later document's copy of
an earlier document's poison, each stored poison read once, and the warnings the run would print."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from benchmark.cli import main
from benchmark.config import parse_matrix, resolve
from benchmark.dry_run import describe
from benchmark.registry import get_registry
from benchmark.runner import Runner
from benchmark.status import Survey
from benchmark.store import ArtifactCache, spec_key

BASE = {"name": "t", "profile": "smoke", "attacks": ["random-noise"], "victims": ["sl"], "defenses": ["none"],
        "dataset": {"name": "digits", "subset": 200}}


def runner(tmp_path: Path, logs: list[str] | None = None, **over: Any) -> Runner:
    m = parse_matrix({**BASE, **over})
    return Runner(resolve(m, get_registry()), tmp_path / "res", log=(logs if logs is not None else []).append, progress=False)


def store_poison_meta(cache: ArtifactCache, spec: dict[str, Any], **meta: Any) -> str:
    """A stored poison's meta.json (all that the listing reads of it) under the key of ``spec``."""
    key = spec_key(spec)
    cache.dir(key).mkdir(parents=True)
    (cache.dir(key) / "meta.json").write_text(json.dumps({"sha256": "0" * 64, "spec": spec, "meta": meta}))
    return key


def with_dataset(spec: dict[str, Any], **dataset: Any) -> dict[str, Any]:
    return {**spec, "dataset": {**spec["dataset"], **dataset}}


def test_a_later_document_that_would_copy_an_earlier_documents_poison_is_listed_as_a_copy(tmp_path, capsys):
    """Document 2 changes only the test subset: `bench run` copies the poison document 1 generates,
    so the dry-run prices it once, in document 1."""
    doc = "dataset: {{name: digits, subset: 200{more}}}\nprofile: smoke\nattacks: [em]\nvictims: [sl]\n"
    m = tmp_path / "m.yaml"
    m.write_text("name: a\n" + doc.format(more="") + "---\nname: b\n" + doc.format(more=", test_subset: 100"))
    assert main(["run", str(m), "--dry-run", "--results", str(tmp_path / "res")]) == 0
    first, second = capsys.readouterr().out.split("document 2 of 2: ")
    made = re.search(r"attack em +(\w+)  to generate\n", first)
    assert made is not None
    assert "(poisons: 0 cached, 1 from an earlier document, 0 to generate;" in second
    assert re.search(rf"attack em +\w+  to copy from document 1's {made.group(1)}\n", second)
    assert re.search(r"\n  cpu +0 s +\d", second)  # no poison priced in document 2


def test_the_dry_run_and_status_read_each_stored_poison_once(tmp_path, monkeypatch):
    r = runner(tmp_path, attacks=["em", "em-class", "random-noise", "clean"], defenses=["none", "iss-jpeg"])
    for job in r.plan.jobs:  # the same poison for another test subset (copied), another poison for another split
        store_poison_meta(r.cache, with_dataset(job.spec, test_subset=50))
        store_poison_meta(r.cache, with_dataset(job.spec, split_seed=9))
    reads: Counter[str] = Counter()
    read_text = Path.read_text

    def counting(self: Path, *args: Any, **kwargs: Any) -> str:
        if self.name == "meta.json":
            reads[self.parent.name] += 1
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counting)
    assert "(poisons: 0 cached, 4 to copy, 0 to generate;" in describe(r, cost=False)
    assert len(reads) == 8 and set(reads.values()) == {1}, reads
    reads.clear()
    assert Survey(r.root).of_matrix(r.r).poisons == {"to copy": 4}
    assert len(reads) == 8 and set(reads.values()) == {1}, reads


@pytest.mark.parametrize("recorded", [True, False])
def test_a_copy_the_dry_run_cannot_verify_is_listed_as_conditional(tmp_path, recorded):
    """The dry-run loads no data, so it cannot compare a found poison's training digest with this
    training set's: it lists the copy as `bench run` will make it unless the images changed."""
    r = runner(tmp_path)
    (job,) = r.plan.jobs
    meta = {"train_sha256": "0" * 64} if recorded else {}  # a poison made before 2026-12-07 records none
    other = store_poison_meta(r.cache, with_dataset(job.spec, test_subset=50), **meta)
    line = next(s for s in describe(r, cost=False).splitlines() if s.startswith("  attack"))
    unless = " (unless the training images changed since it was made)"
    assert line.endswith(f"to copy from {other}{unless if recorded else ''}")


def test_the_dry_run_warns_of_a_cached_poison_made_by_another_release_as_the_run_does(tmp_path, monkeypatch):
    first = runner(tmp_path)
    assert first.run().ok == 1
    (job,) = first.plan.jobs
    meta_path = first.cache.dir(job.key) / "meta.json"
    stored = json.loads(meta_path.read_text())
    stored["meta"]["package"] = "uebench-noise 0.1"  # data.pt's checksum is unchanged
    meta_path.write_text(json.dumps(stored))
    monkeypatch.setattr("benchmark.runner.package_of", lambda plugin: "uebench-noise 0.2")
    monkeypatch.setattr("benchmark.packages.package_of", lambda plugin: "uebench-noise 0.2")  # package_warning's
    logs: list[str] = []
    second = runner(tmp_path, logs, defenses=["none", "iss-jpeg"])  # a new cell on the cached poison
    describe(second, cost=False)
    warned = [s for s in logs if s.startswith("warning: the cached poison of attack 'random-noise'")]
    assert len(warned) == 1 and "(uebench-noise 0.1 -> uebench-noise 0.2)" in warned[0]
    logs.clear()
    assert second.run().ok == 1
    assert [s for s in logs if s.startswith("warning: the cached poison")] == warned  # the same line, once


def test_a_stored_poison_an_earlier_document_copies_is_not_copied_again(tmp_path, capsys):
    """Document 1 copies a stored poison under its own key K; document 2 needs K: `bench run` finds K
    stored by then, so the dry-run says document 1 copied it (not a second "to copy")."""
    doc = "dataset: {{name: digits, subset: 200}}\nprofile: smoke\nattacks: [em]\nvictims: [sl]\ndefenses: [{d}]\n"
    m = tmp_path / "m.yaml"
    m.write_text("name: a\n" + doc.format(d="none") + "---\nname: b\n" + doc.format(d="iss-jpeg"))
    r = runner(tmp_path, attacks=["em"])
    (job,) = r.plan.jobs
    store_poison_meta(r.cache, with_dataset(job.spec, test_subset=50))  # the same poison, stored under another key
    assert main(["run", str(m), "--dry-run", "--results", str(tmp_path / "res")]) == 0
    first, second = capsys.readouterr().out.split("document 2 of 2: ")
    assert re.search(rf"attack em +{job.key[:8]}\w*  to copy from ", first), first
    assert "to copy" not in second, second
    assert re.search(rf"attack em +{job.key[:8]}\w*  copied by document 1\n", second), second
