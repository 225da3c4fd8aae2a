"""The table model every report format renders (markdown, HTML, CSV, JSON): one source of truth.

Per section (dataset and profile):

- ``by-defense``: for each defense, attacks x victims of the main metric, plus **Worst** (the
  highest accuracy any victim reaches: the attack's worst case);
- ``by-victim``: for each victim, attacks x defenses, plus **Worst** over defenses;
- ``best-defense``: per attack and victim, the defense that restores the most accuracy;
- ``metric``: one table per further metric output (``certified@0.004``, ...).

A table cell is a :class:`Value`: the mean and sample std over the seeds that gave a number, how
many did, and why the others did not (failed, NaN, n/a). Failed and partial groups are marked
wherever they are shown; nothing is dropped or averaged silently.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from benchmark.report.anchors import anchor
from benchmark.report.packages import table_packages
from benchmark.report.records import MAIN_METRIC, Cell, Results, Section, order, short_hash, slug

#: how each declared unit is shown: (multiplier, unit suffix)
DISPLAY = {"fraction": (100.0, "%"), "percent": (1.0, "%")}


def scale(unit: str) -> tuple[float, str]:
    return DISPLAY.get(unit, (1.0, ""))


@dataclass
class Value:
    """One table cell: a cell group's numbers, in the table's display scale."""

    mean: float | None = None
    std: float | None = None
    n: int = 0  # seeds whose value is in the mean
    total: int = 0  # seeds that should have given a value (ok + failed)
    failed: int = 0
    nan: int = 0  # finished, but the metric gave no value (NaN: e.g. a certificate that abstains)
    na: int = 0  # the defense does not apply to the victim
    href: str | None = None  # the cell group's page, relative to the site root
    note: str = ""  # best-defense: the defense; Worst: the column that reached it
    partial_row: bool = False  # Worst/best only: some cells of the row have no (full) value
    not_run: int = 0  # Worst/best only: cells of the row that apply but were never run (a lower bound, then)
    of: int = 0  # Worst/best only: the row's cells that apply (not n/a)
    seeds: list[tuple[Any, float | None, str]] = field(default_factory=list)  # (seed, value, status)
    errors: list[str] = field(default_factory=list)
    reason: str = ""  # n/a: why (the record's note: the defense does not apply to the victim...)

    @property
    def status(self) -> str:
        """``ok``, ``partial`` (some seeds failed or gave NaN), ``failed`` (every seed failed),
        ``nan`` (no seed gave a number, not all failed), ``n/a`` or ``missing`` (nothing ran)."""
        if self.total == 0:
            return "n/a" if self.na else "missing"
        if self.n == 0:
            return "failed" if self.failed == self.total else "nan"
        if self.n < self.total or self.partial_row:
            return "partial"
        return "ok"


@dataclass
class Row:
    """One row of a leaderboard table: its label and one value per column."""
    label: str
    values: list[Value]


@dataclass
class Table:
    """One leaderboard table: a metric of the records laid out by defense, by victim or as the best defense, with its unit."""
    id: str
    kind: str  # by-defense | by-victim | best-defense | metric
    title: str
    section: Section
    metric: str
    unit: str  # declared unit of the metric
    row_name: str
    columns: list[str]
    rows: list[Row]
    #: names of summary columns (Worst), shown in bold, not cell groups
    summary: tuple[str, ...] = ()
    #: the entry the table is about: the defense of a by-defense table, the victim of a by-victim one
    about: str = ""
    #: which third-party package and release made its entries, one line each (:mod:`benchmark.report.packages`)
    packages: list[str] = field(default_factory=list)

    @property
    def display_unit(self) -> str:
        return scale(self.unit)[1]

    @property
    def modal_n(self) -> int:
        """The usual number of seeds in this table's cell groups (marks show where it differs)."""
        return modal_count(v.total for r in self.rows for c, v in zip(self.columns, r.values) if c not in self.summary)

    def values(self) -> list[Value]:
        return [v for r in self.rows for v in r.values]


def group_page(section: str, attack: str, victim: str, defense: str) -> str:
    """The page of a cell group, relative to the site root."""
    return f"cells/{slug(attack, victim, defense)[:60]}-{short_hash([section, attack, victim, defense], 8)}.html"


def group_value(cells: list[Cell], metric: str, factor: float) -> Value:
    """The :class:`Value` of one cell group for ``metric``."""
    v = Value()
    nums = []
    for c in sorted(cells, key=lambda c: (c.seed is None, c.seed if c.seed is not None else 0)):
        if c.status == "n/a":
            v.na += 1
            v.seeds.append((c.seed, None, "n/a"))
            v.reason = v.reason or str(c.error or c.record.get("not_applicable") or "no reason recorded")
            continue
        v.total += 1
        if c.status != "ok":
            v.failed += 1
            v.seeds.append((c.seed, None, "failed"))
            if c.error:
                v.errors.append(f"seed {c.seed}: {c.error}")
            continue
        x = c.metrics.get(metric, math.nan)
        if math.isnan(x):
            v.nan += 1
            v.seeds.append((c.seed, None, "nan"))
        else:
            nums.append(x * factor)
            v.seeds.append((c.seed, x * factor, "ok"))
    v.n = len(nums)
    if nums:  # (statistics.stdev is exact but 20x slower; a report may hold 100k groups)
        v.mean = math.fsum(nums) / len(nums)
        if len(nums) > 1:
            v.std = math.sqrt(math.fsum((x - v.mean) ** 2 for x in nums) / (len(nums) - 1))
    if cells:
        c = cells[0]
        v.href = group_page(c.section, c.attack, c.victim, c.defense)
    return v


def belongs(cell: Cell, key: str, results: Results) -> bool:
    """Whether a cell counts in the tables of the metric output ``key``: an ok cell that has it; a
    failed or n/a cell that was asked for the metric that makes it (older records, which do not
    say what they were asked for, count in the main metric's tables only)."""
    if cell.status == "ok":
        return key in cell.metrics
    if cell.plugins is None:
        return key == MAIN_METRIC
    plugin = results.plugin(key)
    return plugin in cell.plugins if plugin is not None else key == MAIN_METRIC


def summary_value(values: list[Value], columns: list[str], pick: str = "max") -> Value:
    """Worst (or best) over a row: the highest mean of the cells that have one, marked partial
    when some cell of the row failed, gave NaN for some seeds, or has fewer seeds. ``not_run``
    counts the row's applicable cells that were never run: the maximum over the others is then
    only a lower bound of the row's true worst case (or best defense)."""
    have = [(c, v) for c, v in zip(columns, values) if v.mean is not None]
    relevant = [v for v in values if v.total]
    out = Value(total=len(relevant), failed=sum(1 for v in relevant if v.status == "failed"))
    out.not_run = sum(1 for v in values if v.status == "missing")
    out.of = sum(1 for v in values if v.status != "n/a")
    if not have:
        out.nan = out.total - out.failed
        if values and all(v.status == "n/a" for v in values):  # nothing applies: the row reads n/a, not "not run"
            out.na, out.reason = len(values), "no cell of the row applies"
        return out
    col, best = max(have, key=lambda cv: cv[1].mean)  # type: ignore[arg-type, return-value]  # first of ties, in column order; every mean in `have` is set
    out.mean, out.n, out.href, out.note = best.mean, len(have), best.href, col
    out.total = len(relevant)
    out.partial_row = any(v.status in ("partial", "failed", "nan") for v in relevant)
    out.failed = sum(v.failed for v in relevant)
    return out


def _pivot(
    sec: Section, cells: list[Cell], key: str, rows_axis: str, cols_axis: str, factor: float
) -> tuple[list[str], list[str], list[list[Value]]]:
    by: dict[tuple[str, str], list[Cell]] = {}
    for c in cells:
        by.setdefault((getattr(c, rows_axis), getattr(c, cols_axis)), []).append(c)
    rows = [r for r in getattr(sec, rows_axis + "s") if any((r, col) in by for col in getattr(sec, cols_axis + "s"))]
    cols = [col for col in getattr(sec, cols_axis + "s") if any((r, col) in by for r in rows)]
    grid = [[group_value(by.get((r, col), []), key, factor) for col in cols] for r in rows]
    return rows, cols, grid


def section_tables(results: Results, sec: Section) -> list[Table]:
    """Every table of one section, in reading order."""
    tables: list[Table] = []
    unit = results.unit(MAIN_METRIC) if MAIN_METRIC in results.metrics else "fraction"
    factor = scale(unit)[0]
    main = [c for c in sec.cells if belongs(c, MAIN_METRIC, results)]
    if main:
        def worst_table(about: str, by: str, cells: list[Cell]) -> Table:
            """Attacks × ``by`` (victim or defense) for the cells of one ``about``, with a Worst column."""
            rows, cols, grid = _pivot(sec, cells, MAIN_METRIC, "attack", by, factor)
            kind, other = ("by-defense", "defense") if by == "victim" else ("by-victim", "victim")
            return Table(
                id=f"{sec.slug}--{other}-{anchor(about)}",
                kind=kind,
                title=f"{other} `{about}`: attacks × {by}s",
                section=sec,
                metric=MAIN_METRIC,
                unit=unit,
                row_name="attack",
                columns=cols + ["Worst"],
                rows=[Row(r, vals + [summary_value(vals, cols)]) for r, vals in zip(rows, grid)],
                summary=("Worst",),
                about=about,
                packages=table_packages(cells, results.plugin(MAIN_METRIC)),
            )

        for defense in sec.defenses:
            if cells := [c for c in main if c.defense == defense]:
                tables.append(worst_table(defense, "victim", cells))
        best_rows: dict[str, dict[str, Value]] = {}
        best_cols: list[str] = []
        for victim in sec.victims:
            if not (cells := [c for c in main if c.victim == victim]):
                continue
            tables.append(table := worst_table(victim, "defense", cells))
            if len(table.columns) > 2:  # more than one defense besides Worst
                best_cols.append(victim)
                for row in table.rows:
                    best_rows.setdefault(row.label, {})[victim] = row.values[-1]
        if best_cols:
            attacks = [a for a in sec.attacks if a in best_rows]
            tables.append(
                Table(
                    id=f"{sec.slug}--best-defense",
                    kind="best-defense",
                    title="best defense per attack: the highest accuracy any defense restores (victims as columns)",
                    section=sec,
                    metric=MAIN_METRIC,
                    unit=unit,
                    row_name="attack",
                    columns=best_cols,
                    rows=[Row(a, [best_rows[a].get(v, Value()) for v in best_cols]) for a in attacks],
                    summary=tuple(best_cols),
                    packages=table_packages([c for c in main if c.victim in best_cols], results.plugin(MAIN_METRIC)),
                )
            )
    for key in sorted(k for k in results.metrics if k != MAIN_METRIC):
        cells = [c for c in sec.cells if belongs(c, key, results)]
        if not any(c.status == "ok" for c in cells):
            continue
        k_unit = results.unit(key)
        k_factor = scale(k_unit)[0]
        pairs = {(c.victim, c.defense) for c in cells}
        victims = order({v for v, _ in pairs}, ())
        defenses = order({d for _, d in pairs}, ())
        if len(defenses) == 1:
            rows, cols, grid = _pivot(sec, cells, key, "attack", "victim", k_factor)
            title = f"`{key}` (defense `{defenses[0]}`): attacks × victims"
        elif len(victims) == 1:
            rows, cols, grid = _pivot(sec, cells, key, "attack", "defense", k_factor)
            title = f"`{key}` (victim `{victims[0]}`): attacks × defenses"
        else:
            by: dict[tuple[str, str], list[Cell]] = {}
            for c in cells:
                by.setdefault((c.attack, f"{c.victim} / {c.defense}"), []).append(c)
            combos = [f"{v} / {d}" for v in sec.victims for d in sec.defenses if (v, d) in pairs]
            rows = [a for a in sec.attacks if any((a, col) in by for col in combos)]
            cols = combos
            grid = [[group_value(by.get((r, col), []), key, k_factor) for col in cols] for r in rows]
            title = f"`{key}`: attacks × (victim / defense)"
        tables.append(
            Table(
                id=f"{sec.slug}--metric-{anchor(key)}",
                kind="metric",
                title=title,
                section=sec,
                metric=key,
                unit=k_unit,
                row_name="attack",
                columns=cols,
                rows=[Row(r, vals) for r, vals in zip(rows, grid)],
                packages=table_packages(cells, results.plugin(key)),
            )
        )
    return tables


def build_tables(results: Results) -> dict[str, list[Table]]:
    """Section id -> its tables."""
    return {sec.id: section_tables(results, sec) for sec in results.sections}


# ------------------------------------------------------------------------------------ formatting


def modal_count(counts: Iterable[int]) -> int:
    """The usual number of seeds among a table's cells (``counts``, one a cell; zeros, cells with
    none, left out; ties: the larger count): the count its caption states, where :func:`count_mark`
    marks the cells that have another. 0 when no cell has any. The leaderboard and ``bench docs``
    share it."""
    c = Counter(n for n in counts if n)
    return max(c, key=lambda n: (c[n], n)) if c else 0


def count_mark(n: int, modal: int) -> str:
    """`` [n=k]`` after a cell's value when its ``n`` seeds are not the table's usual ``modal``
    count (:func:`modal_count`), else nothing."""
    return f" [n={n}]" if n != modal else ""


def fmt_number(x: float, unit: str) -> str:
    if unit in DISPLAY:
        return f"{x:.1f}"
    return f"{x:.3g}"


def nan_word(metric: str) -> str:
    """What a value-less cell of ``metric`` reads as: ``abstain`` for a certificate (a certified
    learnability that abstains is no number, never 0), ``NaN`` otherwise."""
    return "abstain" if metric.removeprefix("online_").startswith("certified@") else "NaN"


def value_text(v: Value, unit: str, modal_n: int, *, role: str = "cell", bold: bool = False, nan: str = "NaN") -> str:
    """How a :class:`Value` reads in a table (markdown and HTML share it).

    ``61.2 ± 1.0``; ``61.2 ± 1.0 ⚠1/2`` (one of two seeds failed); ``61.2 ⚠1/3 (1 failed, 1
    NaN)`` (one failed, one finished without a value); ``61.2 [1/2]`` (one of two gave NaN);
    ``61.2 [n=3]`` (3 seeds where the table's cells usually have another count); ``✗ failed``;
    ``NaN``; ``n/a``; ``–`` (not run). ``role`` ``worst`` (the number alone, bold in markdown) and
    ``best`` (the number and the defense) add ``⚠`` when some cell of their row has no full value,
    and read ``≥61.2 (2 of 7)`` when only 2 of the row's 7 applicable cells were run (the maximum
    of those is a lower bound of the row's).
    """
    s = v.status
    if s == "missing":
        return "–"
    if s == "n/a":
        return "n/a"
    if s == "failed":
        return "✗ failed"
    if s == "nan":
        return nan + (f" ⚠{v.failed} failed" if v.failed else "")
    assert v.mean is not None
    num = fmt_number(v.mean, unit)
    if role != "cell":
        if v.not_run:
            num = "≥" + num
        text = f"**{num}**" if bold and role == "worst" else num
        if role == "best" and v.note:
            text += f" ({v.note})"
        if v.not_run:
            text += f" ({v.of - v.not_run} of {v.of})"
        return text + (" ⚠" if v.partial_row else "")
    text = num
    if v.std is not None:
        text += f" ± {fmt_number(v.std, unit)}"
    if v.failed:  # a NaN seed finished (its metric has no value): said apart from the failed ones
        text += f" ⚠{v.n}/{v.total}" + (f" ({v.failed} failed, {v.nan} {nan})" if v.nan else "")
    elif v.n < v.total:
        text += f" [{v.n}/{v.total}]"
    else:
        text += count_mark(v.total, modal_n)
    return text


def role(t: Table, column: str) -> str:
    """``cell``, ``worst`` or ``best``: how a column of ``t`` is formatted."""
    if column not in t.summary:
        return "cell"
    return "best" if t.kind == "best-defense" else "worst"


LEGEND = (
    "⚠k/n: the mean of the k seeds that gave a value out of n; the others failed "
    "(⚠k/n (f failed, m NaN): f failed and m finished without a value). "
    "[k/n]: k of n seeds gave a value (the others NaN). [n=k]: k seeds, where this table's cells usually have another count. "
    "✗ failed: every seed failed (the error is on the cell's page and under Failures). "
    "NaN: the metric gave no value (abstain: a certificate that abstains). n/a: the defense does not apply to the victim. "
    "–: not run. ⚠ after a Worst or best value: taken over the cells of the row that finished; some did not. "
    "≥x (k of m) as a Worst or best value: only k of the row's m applicable cells were run, so the row's true value "
    "can only be higher than x."
)


def table_marks(t: Table) -> bool:
    """Whether any cell of ``t`` carries a mark the legend explains."""
    modal = t.modal_n
    for r in t.rows:
        for col, v in zip(t.columns, r.values):
            if v.status not in ("ok", "missing") or (col not in t.summary and v.total != modal) or v.not_run:
                return True
    return False
