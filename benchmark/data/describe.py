"""One line naming the data a table was computed on, from a record's dataset spec.

Every leaderboard and doc table says what its numbers were measured on ("CIFAR-10 (JPEG-75 copy),
5k subset, full test set"): the data's name comes from the content when the file is a known one
(:data:`KNOWN_CONTENT`, by sha256), else from the dataset source's own ``describe``; the part of it
from the spec's ``subset``/``test_subset``. Works on any record that kept ``dataset_spec``.
"""

from __future__ import annotations

import json
from typing import Any

#: Files whose content is known, by the ``content`` id of their dataset identity.
KNOWN_CONTENT: dict[str, str] = {
    # shared/data/cifar10-jpeg.npz: CIFAR-10 decoded from JPEG files (IJG quality 75, 4:2:0); see its README
    "sha256:6fbe29a0662f13fe6ef4524a17b67b03745b74e2097af723af52f162714b08eb": "CIFAR-10 (JPEG-75 copy)",
}


def _count(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else f"{n:,}"


def data_name(identity: dict[str, Any]) -> str:
    """What the data is: a known file's name, else the source's description, else its plugin name."""
    content = identity.get("content")
    if content in KNOWN_CONTENT:
        return KNOWN_CONTENT[content]
    name = str(identity.get("name", "?"))
    try:
        from benchmark.registry import get_registry

        cls = get_registry().get("dataset", name)
    except Exception:  # noqa: BLE001 - a source not installed here: its name is all we know
        return name
    return cls.describe(identity)


def describe_data(spec: dict[str, Any] | None) -> str:
    """``"CIFAR-10 (JPEG-75 copy), 5k subset, full test set"`` for a plan's dataset spec (the
    ``dataset_spec`` of a record); ``"unknown data"`` for a record without one."""
    if not spec:
        return "unknown data"
    parts = [data_name(spec)]
    subset, test_subset = spec.get("subset"), spec.get("test_subset")
    parts.append(f"{_count(subset)} subset" if subset else "full training set")
    carved = spec.get("test_from_train")
    if carved:  # the data had no test split: it was carved from the training images
        parts.append(f"test split of {_count(carved) if isinstance(carved, int) else carved} carved from the training images"
                     + (f", {_count(test_subset)} of it" if test_subset else ""))
    else:
        parts.append(f"{_count(test_subset)} test images" if test_subset else "full test set")
    return ", ".join(parts)


def data_caption(records: list[dict[str, Any]], dataset: str, profile: str) -> str:
    """``_Data: CIFAR-10 (JPEG-75 copy), 5k subset, full test set._`` for the finished records of one
    (dataset label, profile) group of a leaderboard: what its numbers were measured on."""
    specs = {json.dumps(r.get("dataset_spec"), sort_keys=True): r.get("dataset_spec") for r in records
             if r.get("status") == "ok" and r.get("dataset") == dataset and r.get("profile") == profile}
    return "_Data: " + "; ".join(sorted(describe_data(s) for s in specs.values())) + "._"
