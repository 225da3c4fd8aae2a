"""Poisons stored under another key that are the same poison: the key of a poison names the whole
dataset spec, but an attack only ever sees the training set. Two specs that differ only in

- ``test_subset`` (the test images the victims are scored on), or
- ``holdout`` when the dataset has a ``subset`` (the hold-out is then drawn from the images outside
  the subset, so the training set is the same: :func:`benchmark.data.split.make_splits`)

make the same poison from the same training images, bit for bit, so a matrix that changes only
those reuses the stored poison instead of generating it again (hours at the paper profile). The
keys stay as they were (every committed record names its poison's key); the runner copies the
found poison under the new key, with ``same_as`` naming where it came from. A poison made since
2026-12-08 also records ``train_sha256``, the digest of the training images and labels it was
made from: when the found one has it, it must equal the digest of the training set loaded now.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from benchmark.data.dataset import ImageDataset
    from benchmark.interfaces import Budget
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


def find_same_poison(cache: ArtifactCache, spec: dict[str, Any], key: str, train_sha256: str | None = None) -> str | None:
    """The key of a stored poison, other than ``key``, whose spec has the same :func:`training_view`
    as ``spec`` (and, when both are known, the same ``train_sha256``); ``None`` if there is none.
    Unreadable entries are skipped (loading the found one checks its checksum)."""
    want = training_view(spec)
    if want is None:
        return None
    root = cache.root / "artifacts"
    if not root.is_dir():
        return None
    for meta_path in sorted(root.glob("*/meta.json")):
        other = meta_path.parent.name
        if other == key:
            continue
        try:
            stored = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(stored, dict) or training_view(stored.get("spec") or {}) != want:
            continue
        then = (stored.get("meta") or {}).get("train_sha256")
        if then and train_sha256 and then != train_sha256:
            continue
        return other
    return None


@dataclass
class SamePoison:
    """A stored poison found for another key: its key, tensors, meta (with ``same_as`` naming it
    and this training set's ``train_sha256``) and the seconds its making took."""
    key: str
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]
    cost_s: float | None


def copy_same_poison(cache: ArtifactCache, spec: dict[str, Any], key: str, train: ImageDataset, budget: Budget) -> SamePoison | None:
    """The same poison as ``spec``'s stored under another key, loaded, if there is one that loads
    and whose images are within ``budget`` of ``train``'s; else ``None``."""
    import torch

    from benchmark.data.dataset import data_checksum

    digest = data_checksum(train)
    other = find_same_poison(cache, spec, key, digest)
    found = cache.load(other) if other else None
    if other is None or found is None:
        return None
    tensors, meta = found
    x = tensors.get("x")
    if not isinstance(x, torch.Tensor) or budget.violation(train.x, x) is not None:
        return None
    return SamePoison(other, tensors, {**meta, "same_as": other, "train_sha256": digest}, cache.created_s(other))
