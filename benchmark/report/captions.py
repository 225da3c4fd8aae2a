"""What a reader needs beside a table's numbers, in every format: how many seeds each mean is
over (:func:`seeds_line`) and why its ``n/a`` cells are n/a (:func:`na_reasons`). Both are read from
the table's values (the records), never typed."""

from __future__ import annotations

from benchmark.report.tables import Table, Value


def _cells(t: Table) -> list[Value]:
    """The values of ``t`` that are cell groups (not a Worst or best-defense summary)."""
    return [v for r in t.rows for c, v in zip(t.columns, r.values) if c not in t.summary]


def seeds_line(t: Table) -> str:
    """One sentence: each value is the mean ± sample std over how many seeds (the table's usual
    count, :attr:`Table.modal_n`; which seeds when every cell has the same ones), and how many
    cells have another count (marked ``[n=k]``). Empty when no cell of ``t`` ran."""
    if t.kind == "best-defense":
        return "Each value: the best defense's mean, over the seeds of its cell in the victim's table above."
    cells = [v for v in _cells(t) if v.total]
    n = t.modal_n
    if not cells or not n:
        return ""
    seeds = {s for v in cells for s, _, st in v.seeds if st != "n/a"}
    same = len(seeds) == n and all(v.total == n for v in cells)
    order = sorted(seeds, key=lambda s: (s is None, s if isinstance(s, int) else 0, str(s)))
    named = f" (seed{'s' if n > 1 else ''} {', '.join(str(s) for s in order)})" if same and len(seeds) <= 8 else ""
    text = (f"Each cell: mean ± sample std over n = {n} seeds{named}" if n > 1
            else f"Each cell: the value of n = 1 seed{named}; no std")
    other = sum(1 for v in cells if v.total != n)
    if other:
        text += f"; {another_count(other)}"
    return text + "."


def another_count(k: int) -> str:
    """What a caption says of the ``k`` cells marked ``[n=k]`` (:func:`~benchmark.report.tables.count_mark`);
    the leaderboard and ``bench docs`` share it."""
    return f"{k} {'cell has' if k == 1 else 'cells have'} another count, marked [n=k]"


def na_reasons(t: Table) -> list[tuple[str, int]]:
    """Why the ``n/a`` values of ``t`` are n/a: (reason, how many values), in order of first
    appearance (row by row). The index of a reason, from 1, is the footnote its cells carry."""
    out: dict[str, int] = {}
    for r in t.rows:
        for v in r.values:
            if v.status == "n/a":
                out[v.reason or "no reason recorded"] = out.get(v.reason or "no reason recorded", 0) + 1
    return list(out.items())
