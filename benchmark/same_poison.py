"""Poisons stored under another key that are the same poison: the key of a poison names the whole
dataset spec, but an attack only ever sees the training set. Two specs that differ only in

- ``test_subset`` (the test images the victims are scored on), or
- ``holdout`` when the dataset has a ``subset`` (the hold-out is then drawn from the images outside
  the subset, so the training set is the same: :func:`benchmark.data.split.make_splits`)

make the same poison from the same training images, bit for bit, so a matrix that changes only
those reuses the stored poison instead of generating it again (hours at the paper profile). The
keys stay as they were (every committed record names its poison's key); the runner copies the
found poison under the new key, with ``same_as`` naming where it came from. A poison made since
2026-12-07 also records ``train_sha256``, the digest of the training images and labels it was
made from: when the found one has it, it must equal the digest of the training set loaded now.
Where no data is loaded (``bench run --dry-run``, ``bench status``, a SLURM submission) that
cannot be checked, and a found poison counts as a copy: :func:`find_same_poison`. Callers that
ask about many jobs read the stored poisons once (:func:`index_poisons`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from benchmark.store import spec_key

if TYPE_CHECKING:
    from collections.abc import Callable

    import torch

    from benchmark.data.dataset import ImageDataset
    from benchmark.interfaces import Budget
    from benchmark.plan import AttackJob
    from benchmark.store import ArtifactCache

#: dataset-spec fields an attack never sees (``holdout`` only when a ``subset`` is set)
UNSEEN = ("test_subset",)


def training_view(spec: dict[str, Any]) -> dict[str, Any] | None:
    """The part of a poison spec that decides its poison: the spec without what the attack never
    sees. ``None`` for a spec that is not a poison's."""
    if spec.get("kind") != "poison" or not isinstance(spec.get("dataset"), dict):
        return None
    ds = {k: v for k, v in spec["dataset"].items() if k not in UNSEEN}
    if ds.get("subset") is not None:
        ds.pop("holdout", None)
    return {**spec, "dataset": ds}


@dataclass(frozen=True)
class Stored:
    """A stored poison as its meta.json says: its key, the digest of the training set it was made
    from (``None``: made before 2026-12-07) and the third-party package release that made it."""
    key: str
    train_sha256: str | None = None
    package: str | None = None


#: the stored poisons by the key of their :func:`training_view`, in key order (:func:`index_poisons`)
Index = dict[str, list[Stored]]


def view_key(spec: dict[str, Any]) -> str | None:
    """The content key of ``spec``'s :func:`training_view`: equal for the specs of the same poison."""
    view = training_view(spec)
    return None if view is None else spec_key(view)


def index_poisons(cache: ArtifactCache) -> Index:
    """Every poison stored in ``cache``, by training view, each meta.json read once: a caller that
    asks about many jobs (the dry-run, ``bench status``, a SLURM submission) builds it once and
    passes it to :func:`find_same_poison`. Unreadable entries are left out (loading the found one
    checks its checksum)."""
    index: Index = {}
    root = cache.root / "artifacts"
    if not root.is_dir():
        return index
    for meta_path in sorted(root.glob("*/meta.json")):
        try:
            stored = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            continue
        spec = stored.get("spec") if isinstance(stored, dict) else None
        view = view_key(spec) if isinstance(spec, dict) else None
        if view is None:
            continue
        meta = stored.get("meta") if isinstance(stored.get("meta"), dict) else {}
        index.setdefault(view, []).append(Stored(meta_path.parent.name, _text(meta.get("train_sha256")), _text(meta.get("package"))))
    return index


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def stored_as(index: Index, spec: dict[str, Any], key: str) -> Stored | None:
    """The poison stored under ``key`` itself (whose spec is ``spec``), if the index holds it."""
    return next((s for s in index.get(view_key(spec) or "", []) if s.key == key), None)


def find_same_poison(index: Index, spec: dict[str, Any], key: str, train_sha256: str | None = None) -> Stored | None:
    """A stored poison, other than ``key``, with the same :func:`training_view` as ``spec``; ``None``
    if there is none. With ``train_sha256`` (the digest of the training set, where it is loaded:
    ``bench run``) one that recorded another digest is not the same poison. Without it (the
    dry-run, ``bench status`` and a SLURM submission load no data) a found poison counts as a copy
    whatever digest it recorded: ``bench run`` generates it instead if the images changed since
    (the dry-run lists such a copy as conditional; on SLURM the first cell that needs it makes it)."""
    for stored in index.get(view_key(spec) or "", []):
        if stored.key != key and not (stored.train_sha256 and train_sha256 and stored.train_sha256 != train_sha256):
            return stored
    return None


@dataclass
class SamePoison:
    """A stored poison found for another key: its key, tensors, meta (with ``same_as`` naming it
    and this training set's ``train_sha256``) and the seconds its making took."""
    key: str
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]
    cost_s: float | None


def copy_same_poison(cache: ArtifactCache, index: Index, spec: dict[str, Any], key: str, train: ImageDataset,
                     train_sha256: str, budget: Budget) -> SamePoison | None:
    """The same poison as ``spec``'s stored under another key, loaded, if there is one made from
    the training set whose digest is ``train_sha256`` (``train``'s: its caller computed it) that
    loads and whose images are within ``budget`` of ``train``'s; else ``None``."""
    import torch

    other = find_same_poison(index, spec, key, train_sha256)
    found = cache.load(other.key) if other else None
    if other is None or found is None:
        return None
    tensors, meta = found
    x = tensors.get("x")
    if not isinstance(x, torch.Tensor) or budget.violation(train.x, x) is not None:
        return None
    return SamePoison(other.key, tensors, {**meta, "same_as": other.key, "train_sha256": train_sha256}, cache.created_s(other.key))


def same_poison_for(cache: ArtifactCache, job: AttackJob, train: ImageDataset, train_sha256: str, budget: Budget,
                    log: Callable[[str], None]) -> SamePoison | None:
    """``job``'s poison stored under another key, loaded (:func:`copy_same_poison`, the stored
    poisons read once); ``log`` says so when one was found that was made from other training images."""
    index = index_poisons(cache)
    same = copy_same_poison(cache, index, job.spec, job.key, train, train_sha256, budget)
    other = find_same_poison(index, job.spec, job.key) if same is None else None
    if other is not None and other.train_sha256 not in (None, train_sha256):
        log(f"poison {job.attack.name} ({job.key}): artifact {other.key} is the same poison but was made from other "
            "training images (its train_sha256 differs: the data changed since): not copied")
    return same
