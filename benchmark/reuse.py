"""Finished cells a run reuses: warnings where their keys match but their records say they were
computed on other data or in another precision than this run would use, and their labels brought
up to date with the matrix (:func:`relabel`).

Neither is in a cell's key: a dataset source may not name its content (a third party's), and the
precision is an execution detail like the device (README, ``precision``). The runner reuses such
cells, as their keys say it may, and says so in one line each, so that old numbers are never
shown as the new setting's without a word.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any


def reuse_warnings(store: Any, done: Iterable[Any], dataset_sha256: str | None, dtype: str) -> list[str]:
    """One warning line per kind of mismatch between the ``done`` cells' records in ``store`` and
    this run: records of other data (``dataset_sha256``) and records of another ``numerics.dtype``."""
    other_data: list[Any] = []
    dtypes: Counter[str] = Counter()
    for cell in done:
        rec = store.get(cell.key) or {}
        if dataset_sha256 and rec.get("dataset_sha256") and rec["dataset_sha256"] != dataset_sha256:
            other_data.append(cell)
        then = (rec.get("numerics") or {}).get("dtype")
        if then and then != dtype:
            dtypes[then] += 1
    out = []
    if other_data:
        out.append(f"warning: {len(other_data)} done cells (first: {other_data[0].label}) were computed on other data "
                   "than the data loaded now (their records' dataset_sha256 differs): they are reused, and tables mix "
                   f"them with the new cells. If the data changed, delete their records ({store.path(other_data[0].key)}, "
                   "...) or use another results directory; a dataset source should name its content in content_id")
    for then, n in dtypes.items():
        out.append(f"warning: {n} done cells were computed in {then}, where this run computes in {dtype}: they are "
                   "reused (the precision is not in the cell keys) and so are their cached poisons; to compute them "
                   f"in {dtype}, use another results directory")
    return out


#: the fields of a record that only name a cell in tables (the matrix's labels), not what it computed;
#: not the matrix's name: a cell two matrices share (the PUE matrix reuses cells of the quick one) keeps its first
LABELS = ("profile", "dataset", "attack", "victim", "defense")


def relabel(store: Any, done: Iterable[Any], labels: Any) -> int:
    """Give the ``done`` cells' records the labels this run's matrix gives them (``labels(cell)``:
    a dict of :data:`LABELS`), where they differ: a label renamed, a profile whose params resolve
    to the same keys (a cell two matrices label differently takes the labels of the last run). The key says the computation is the same; the tables name it as the matrix
    last run does. Returns how many records were rewritten."""
    n = 0
    for cell in done:
        rec = store.get(cell.key)
        want = labels(cell)
        if rec and rec.get("status") in ("ok", "n/a") and any(rec.get(k) != v for k, v in want.items()):
            store.put(cell.key, {**rec, **want})
            n += 1
    return n
