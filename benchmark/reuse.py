"""The finished cells a run reuses: their keys say they are the same computation, but a record can
say what the key does not. Read once per run, each such record gets

- a warning when it was computed on other data than the data loaded now (its ``dataset_sha256``:
  a source whose identity does not name its content, changed on disk), in another precision
  (``numerics.dtype``: the precision is an execution detail like the device, not in the keys), or
  with another release of a third-party plugin's package (``plugin_packages``: the class's
  ``version`` and the package's name are in the keys, the package's release is not);
- this matrix's labels when the matrix renamed an entry or its profile (:data:`LABELS`), so that
  tables name one setting once. Only the records this matrix made (their ``matrix`` is its name):
  a cell two matrices share and label differently keeps the labels of the matrix that made it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from benchmark.packages import another_release, plugin_packages

if TYPE_CHECKING:
    from benchmark.interfaces import Metric
    from benchmark.plan import Cell
    from benchmark.store import ResultStore

#: the fields of a record that only name a cell in tables (the matrix's labels), not what it computed
LABELS = ("profile", "dataset", "attack", "victim", "defense")


def review_reuse(store: ResultStore, done: Iterable[Cell], *, matrix: str, labels: Callable[[Cell], dict[str, Any]],
                 dataset_sha256: str | None, dtype: str, metrics: list[Metric]) -> list[str]:
    """Relabel the ``done`` cells' records that ``matrix`` made and now labels otherwise, and return
    the lines to tell the user: how many were renamed, and one warning per kind of mismatch among
    the finished (``ok``) ones: other data (``dataset_sha256``, when this run loaded the data),
    another ``dtype``, another release of a plugin's package (one line per plugin and change)."""
    other_data: list[Cell] = []
    dtypes: Counter[str] = Counter()
    releases: Counter[tuple[str, str]] = Counter()
    renamed = 0
    for cell in done:
        rec = store.get(cell.key)
        if not rec or rec.get("status") not in ("ok", "n/a"):
            continue
        then_packages = rec.get("plugin_packages") or {}
        for plugin, origin in plugin_packages(cell, metrics).items():
            if another_release(then_packages.get(plugin, origin), origin):
                releases[(plugin, f"{then_packages[plugin]} -> {origin}")] += 1
        want = labels(cell)
        if rec.get("matrix") == matrix and any(rec.get(k) != v for k, v in want.items()):
            store.put(cell.key, {**rec, **want})
            renamed += 1
        if rec["status"] != "ok":  # n/a: nothing was computed
            continue
        if dataset_sha256 and rec.get("dataset_sha256") and rec["dataset_sha256"] != dataset_sha256:
            other_data.append(cell)
        then = (rec.get("numerics") or {}).get("dtype")
        if then and then != dtype:
            dtypes[then] += 1
    out = [f"warning: {n} done cells of {plugin} were computed with another release of its package ({how}); "
           "they are reused: if the new release changes numbers, bump the plugin class's `version`"
           for (plugin, how), n in releases.items()]
    out += [f"{renamed} done cells renamed as this matrix now names them (a label or the profile's name changed)"] if renamed else []
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
