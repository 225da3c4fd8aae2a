"""Anchors: the HTML ids, table ids and file name parts a report gives its labels.

An anchor is a function of its own label only, never of which other labels exist, so adding a
dataset, a defense or a metric never moves a link to (or renames the file of) one that was there:

- a label its slug writes back exactly (lower-case letters, digits, ``_``, ``.`` and inner ``-``:
  ``cifar10-5k``, ``iss-jpeg``, ``noisy_acc_mean``) is its own anchor;
- any other label (``cifar10 5k``, ``certified@0.004``, ``sl(epochs=1)``, ``ISS-JPEG``) is its slug
  followed by ``-`` and 6 hex digits of a digest of the exact label (``certified-0.004-1a2b3c``).

Two labels that slug alike therefore never share an anchor (at most one of them writes back
exactly), whichever came first; upper case counts as lossy, so two anchors never differ in case
only (one file on a case-insensitive file system). Several parts (a section's dataset and profile)
are joined by ``-``, exact only when no part but the first has a ``-`` (the join is then undone
from the right). Over-long anchors are cut and ended by a digest of the whole (:func:`bounded`).
"""

from __future__ import annotations

import re

from benchmark.report.records import MAX_STEM, bounded, short_hash, slug

#: a part its slug writes back exactly, in one case
_EXACT = re.compile(r"[a-z0-9_.](?:[a-z0-9_.-]*[a-z0-9_.])?")


def exact(*parts: str) -> bool:
    """Whether ``parts`` joined by ``-`` can be read back: each part its own slug, in lower case,
    and no part after the first with a ``-``."""
    return bool(parts) and all(_EXACT.fullmatch(p) for p in parts) and not any("-" in p for p in parts[1:])


def anchor(*parts: str, limit: int = MAX_STEM - 40) -> str:
    """The anchor of a label (or of several parts, e.g. dataset and profile): see the module."""
    base = slug(*parts)
    if not exact(*parts):
        base = f"{base}-{short_hash(list(parts), 6)}"
    return bounded(base, limit)


def anchors(keys: list[tuple[str, ...]], limit: int = MAX_STEM - 40) -> dict[tuple[str, ...], str]:
    """Each key's :func:`anchor`. Only a label made to look like another's digest (``x-1a2b3c``
    beside ``x y``) can still share one: the inexact keys of such a pair get 16 digest digits."""
    out = {k: anchor(*k, limit=limit) for k in keys}
    seen: dict[str, int] = {}
    for a in out.values():
        seen[a] = seen.get(a, 0) + 1
    for k, a in out.items():
        if seen[a] > 1 and not exact(*k):
            out[k] = bounded(f"{slug(*k)}-{short_hash(list(k), 16)}", limit)
    return out
