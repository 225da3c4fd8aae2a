"""Markdown from the table model: ``LEADERBOARD.md`` and the report's ``tables.md``."""

from __future__ import annotations

import time
from collections.abc import Callable

from benchmark.report.captions import seeds_line
from benchmark.report.packages import mixed_releases
from benchmark.report.records import MAIN_METRIC, Results, Section
from benchmark.report.tables import LEGEND, Table, nan_word, role, table_marks, value_text

#: how many of the files that are not cell records the notes name (tables.json lists every one)
MALFORMED_NAMED = 20
#: how a table's line on the third-party packages that made its entries begins
PACKAGES_LEAD = "Made by third-party packages"
#: figures to show: table id or section id -> [(alt text, path relative to the markdown file)]
Figures = dict[str, list[tuple[str, str]]]


def md_text(s: str) -> str:
    """Text from records (labels, n/a reasons, errors) as markdown shows it, as text: ``&``, ``<``
    and ``>`` as entities (a label ``<script>`` is no tag), no link (``](`` escaped), one line."""
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("](", "]\\(").replace("\n", " ")


def _esc(s: str) -> str:
    """:func:`md_text` for a table cell (``|`` escaped too)."""
    return md_text(s).replace("|", "\\|")


def md_title(s: str) -> str:
    """A title whose labels are in code spans (``defense `at`: ...``): the text outside the spans
    escaped (:func:`md_text`); a code span shows its content as text already."""
    parts = s.replace("\n", " ").split("`")
    return "`".join(p if i % 2 else md_text(p) for i, p in enumerate(parts))


def _alt(s: str) -> str:
    return md_text(s).replace("[", "\\[").replace("]", "\\]")


def table_markdown(t: Table) -> str:
    """A GitHub-flavoured markdown table: label column left-aligned, values right-aligned."""
    modal = t.modal_n
    head = [t.row_name] + [f"**{c}**" if c in t.summary and t.kind != "best-defense" else c for c in t.columns]
    lines = ["| " + " | ".join(_esc(h) for h in head) + " |", "|:--" + "|--:" * len(t.columns) + "|"]
    for r in t.rows:
        cells = [value_text(v, t.unit, modal, role=role(t, c), bold=True, nan=nan_word(t.metric)) for c, v in zip(t.columns, r.values)]
        lines.append("| " + " | ".join(_esc(x) for x in [r.label] + cells) + " |")
    return "\n".join(lines)


#: how the notes name the attacks whose poison did not reach its stopping condition
UNCONVERGED_LEAD = "Poisons that did not reach their stopping condition."


def dated(results: Results) -> str:
    """What a generated document is dated by: ``results up to <when the newest record finished>``
    (UTC), from the records, never the clock: the same records make the same file."""
    if results.newest is None:
        return "no record dated"
    try:
        return "results up to " + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(results.newest))
    except (OverflowError, OSError, ValueError):  # a record dated beyond what the C library can show
        return "no record dated"


def units_line(results: Results) -> str:
    unit = results.unit(MAIN_METRIC) if MAIN_METRIC in results.metrics else "fraction"
    main = "in %" if unit in ("fraction", "percent") else "as stored"
    return (
        f"Values are clean-test top-1 `{MAIN_METRIC}` {main} (mean ± sample std over seeds) unless a table names another "
        "metric; lower accuracy is a stronger protection. **Worst** is the attack's worst case: the highest accuracy "
        "any victim (or defense) reaches."
    )


def _warning_box(text: str, items: list[str]) -> list[str]:
    """A ⚠ block quote: ``text``, then one bullet per item, then a blank line."""
    return [f"> ⚠ {text}", ">", *(f"> - {item}" for item in items), ""]


def notes(results: Results, esc: Callable[[str], str] = md_text) -> list[str]:
    """What a reader must know before trusting the numbers: mixed environments, superseded and
    unreadable records. ``esc``: how text from records is written (:func:`md_text` in markdown;
    the HTML escapes it itself)."""
    out: list[str] = []
    why: dict[str, set[str]] = {}  # n/a note -> defenses
    for c in results.cells:
        if c.status == "n/a":
            why.setdefault(str(c.record.get("not_applicable") or "no reason recorded"), set()).add(c.defense)
    if why:
        out += ["n/a: the defense does not apply to the victim. "
                + "; ".join(f"{', '.join(f'`{d}`' for d in sorted(ds))}: {esc(note)}" for note, ds in sorted(why.items())) + ".", ""]
    if len(results.environments) > 1:
        out += [
            (f"> ⚠ **Mixed numeric environments.** These results were computed in {len(results.environments)} environments "
             "(device, dtype, threads, library versions); the same cell can give slightly different numbers in each. "
             "Each cell's page shows its own."),
            ">",
        ]
        out += [f"> - `{env}`: {n} cells" for env, n in results.environments.most_common()]
        if results.numerics_partial:
            out += [">", (f"> {results.numerics_partial} records predate the full `numerics` fields; compared on "
                     f"{', '.join(results.numerics_compared)} only (a poison's fields among the records that have them).")]
        out.append("")
    if results.poison_generations:
        out += _warning_box(
            ("**One poison spec, several poisons.** These attacks' cells were computed from more than one generation "
             "of the same poison spec (another machine or a cleared cache), and the generations differ: compare a row's "
             "cells knowing which poison each saw. Each cell's page shows its `poison_meta`."),
            [f"{esc(attack)}: " + "; ".join(f"{n} cells with `{g}`" for g, n in gens.most_common())
             for attack, gens in results.poison_generations.items()])
    if results.unconverged:
        out += _warning_box(
            (f"**{UNCONVERGED_LEAD}** These attacks' poisons ended at their iteration limit (`max_outer`) before the "
             "accuracy that ends their generation was reached (`poison_meta.stopped` false): a converged poison may "
             "protect more. Raise the limit, or read their rows as a lower bound on the attack's strength."),
            [f"{esc(k)}: {v}" for k, v in results.unconverged.items()])
    if mixed := mixed_releases(results):
        out += _warning_box(
            ("**Mixed releases of third-party plugins.** The cells of these entries were made by different releases of "
             "their package; a release that changes numbers without bumping the plugin's `version` keeps the cells of the "
             "one before, so a row (or a mean) may hold both. Each table names its entries' releases under it."),
            [md_title(m) if esc is md_text else m for m in mixed])
    if results.superseded:
        per: dict[str, int] = {}
        for c in results.superseded:
            r = c.record
            specs = [r.get("attack_spec"), r.get("victim_spec"), r.get("defense_spec")]
            name = ", ".join(f"{s.get('name')} v{s.get('version')}" for s in specs if isinstance(s, dict))
            per[name] = per.get(name, 0) + 1
        out += [
            f"> {len(results.superseded)} records made by older plugin versions are not in the tables (a newer version of "
            "the same entry has records): " + "; ".join(f"{esc(k)} ({n})" for k, n in sorted(per.items())),
            "",
        ]
    if results.malformed:
        shown = "; ".join(esc(m) for m in results.malformed[:MALFORMED_NAMED])
        more = f"; and {len(results.malformed) - MALFORMED_NAMED} more (tables.json lists all)" if len(results.malformed) > MALFORMED_NAMED else ""
        out += [f"> {len(results.malformed)} files are not cell records and are left out: {shown}{more}", ""]
    return out


def failures(sec: Section, limit: int = 300) -> list[str]:
    """One line per failed cell of a section, with the first line of its error."""
    lines = []
    for c in sorted((c for c in sec.cells if c.status == "failed"), key=lambda c: (c.attack, c.victim, c.defense, str(c.seed))):
        err = (c.error or "no error recorded").strip().splitlines()[0] if (c.error or "").strip() else "no error recorded"
        lines.append(f"- {_esc(c.attack)} × {_esc(c.victim)} × {_esc(c.defense)} (seed {c.seed}): {_esc(err[:limit])}")
    return lines


def section_markdown(results: Results, sec: Section, tables: list[Table], figures: Figures, level: int = 2) -> list[str]:
    h = "#" * level
    out = [f"{h} {md_title(sec.title)}", ""]
    if len(sec.environments) > 1:
        out += [f"_⚠ This section mixes {len(sec.environments)} numeric environments (see above)._", ""]
    for t in tables:
        out += [f"{h}# {md_title(t.title)}", "", f"_Dataset: {md_text(sec.description)}_", ""]
        if seeds := seeds_line(t):
            out += [f"_{seeds}_", ""]
        out += [table_markdown(t), ""]
        if table_marks(t):
            out += ["_Marks: see the legend at the top._", ""]
        if t.packages:
            out += [f"_{PACKAGES_LEAD}: {'; '.join(md_title(p) for p in t.packages)}._", ""]
        for alt, path in figures.get(t.id, []):
            out += [f"![{_alt(alt)}]({path})", ""]
    for alt, path in figures.get(sec.id, []):
        out += [f"![{_alt(alt)}]({path})", ""]
    fails = failures(sec)
    if fails:
        out += [f"{h}# Failures ({len(fails)} cells)", ""] + fails + [""]
    return out


def render_markdown(results: Results, tables: dict[str, list[Table]], figures: Figures | None = None, *, tool: str = "bench leaderboard") -> str:
    figures = figures or {}
    counts = results.status_counts
    out = [
        "# uebench leaderboard",
        "",
        (f"_Generated by `{tool}` from `{results.source}`, {dated(results)}: "
         f"{results.n_records} cells ({counts.get('failed', 0)} failed, {counts.get('n/a', 0)} n/a). Do not edit by hand._"),
        "",
        *notes(results),
        units_line(results),
        "",
        f"_Legend: {LEGEND}_",
        "",
    ]
    if not results.sections:
        return "\n".join(out + [md_text(results.empty or "No finished cells yet."), ""])
    for sec in results.sections:
        out += section_markdown(results, sec, tables[sec.id], figures)
    return "\n".join(out)
