"""The papers' qualitative claims, as data, checked against cell records (``bench claims RESULTS``).

A claims file (YAML; the project's is ``benchmark/claims.yaml``) lists claims, each with its source
(paper, table), a statement, named ``values`` (cell selectors) and a ``holds`` condition over those
names::

    defaults: {victim: sl, defense: none, metric: accuracy}
    claims:
      - id: em-collapses-sl
        source: {paper: "Huang et al., ICLR 2021", where: "Table 1"}
        statement: Sample-wise EM collapses a supervised learner.
        values: {em: {attack: em}, clean: {attack: clean}}
        holds: em <= clean - 30

A value is the seed mean of one cell (``attack``, ``victim``, ``defense``, ``metric``; missing keys
from ``defaults``) in display units (accuracy in %), or, when one of ``attack``/``victim``/``defense``
is a list, an aggregate of the cells' seed means with ``over``: ``worst`` (the highest: the
leaderboard's Worst, the best any data user does), ``best`` (the lowest), ``max``, ``min``, ``mean``. A claim whose
values are not all measured is *not measured*; otherwise it *holds* or *fails*. ``holds`` is an
arithmetic comparison (``+ - * /``, ``abs min max``, chained comparisons), or comparisons joined
with ``and or not``; anything else (a difference with no comparison, a constant) is refused, as it
would hold whenever it is not 0. The directory's records count once per cell and seed (a copied
record file is not another seed), of each label's newest spec (:func:`benchmark.records.current`).
"""

from __future__ import annotations

import ast
import keyword
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.errors import UserError, did_you_mean
from benchmark.records import cell_mean, current, groups

#: the project's claims file (package data)
DEFAULT_CLAIMS = Path(__file__).with_name("claims.yaml")
#: what the count of records :func:`benchmark.records.current` left out means
SET_ASIDE = ("records of a setting that is not current were set aside (claims compare the newest spec of each "
             "dataset, attack, victim and defense label; `bench leaderboard` shows every variant)")

HOLDS, FAILS, NOT_MEASURED = "holds", "fails", "not measured"
AXES = ("attack", "victim", "defense")
SELECTOR_KEYS = (*AXES, "metric", "over", "seeds")
CLAIM_KEYS = ("id", "source", "statement", "values", "holds", "note")
FILE_KEYS = ("schema", "scope", "defaults", "claims")
OVER: dict[str, Callable[[list[float]], float]] = {"worst": max, "best": min, "max": max, "min": min, "mean": lambda xs: sum(xs) / len(xs)}
FUNCS: dict[str, Callable[..., Any]] = {"abs": abs, "min": min, "max": max}
BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
CMPOPS = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge}


#: The longest ``holds`` condition read (the project's longest is under 100 characters).
MAX_CONDITION_CHARS = 2000
#: how deeply a condition may nest (its evaluation recurses once per level)
MAX_CONDITION_DEPTH = 100


class ClaimsError(UserError):
    """A claims file that cannot be read: the message names the file, the claim and the key."""


# ------------------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Selector:
    """Which cells one named value is made of."""

    attack: tuple[str, ...]
    victim: tuple[str, ...]
    defense: tuple[str, ...]
    metric: str
    over: str | None = None
    seeds: tuple[int, ...] | None = None

    def cells(self) -> list[tuple[str, str, str]]:
        return [(a, v, d) for a in self.attack for v in self.victim for d in self.defense]

    def describe(self) -> str:
        parts = []
        for axis in AXES:
            vals = getattr(self, axis)
            parts.append(vals[0] if len(vals) == 1 else "{" + ", ".join(vals) + "}")
        text = " × ".join(parts) + f" [{self.metric}]"
        return f"{self.over} of {text}" if self.over else text


@dataclass(frozen=True)
class Claim:
    """One claim of a claims file: the paper's statement, the values it reads from the records, and the condition that must hold."""
    id: str
    source: str
    statement: str
    values: dict[str, Selector]
    holds: str
    note: str = ""


@dataclass
class ClaimsFile:
    """A parsed claims file: its claims and the scope (dataset, profile) their records are read from."""
    path: str
    claims: list[Claim]
    scope: dict[str, str] = field(default_factory=dict)


def _err(path: str, where: str, msg: str) -> ClaimsError:
    return ClaimsError(f"{path}: {where}: {msg}" if where else f"{path}: {msg}")


def _keys(d: Any, allowed: tuple[str, ...], path: str, where: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise _err(path, where, f"must be a mapping, found {type(d).__name__}")
    for k in d:
        if k not in allowed:
            raise _err(path, f"{where}.{k}" if where else str(k), f"unknown key {k!r}{did_you_mean(str(k), allowed)} (allowed: {', '.join(allowed)})")
    return d


def _names(expr: str, path: str, where: str) -> set[str]:
    if len(expr) > MAX_CONDITION_CHARS:
        raise _err(path, where, f"a condition of {len(expr):,} characters; a claim's condition is a line")
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as e:
        raise _err(path, where, f"not a valid condition: {expr!r} ({e.msg})") from None
    except (RecursionError, MemoryError):
        raise _err(path, where, "a condition nested too deeply to read") from None
    if _depth(tree) > MAX_CONDITION_DEPTH:
        raise _err(path, where, "a condition nested too deeply to read")
    if not _is_test(tree.body):
        raise _err(path, where, f"{expr!r} is not a comparison (it would hold whenever it is not 0): write one, "
                                "e.g. `em <= clean - 10`, or several joined with and/or")
    names = set()
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    for node in ast.walk(tree):
        ok = (ast.Expression, ast.Compare, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Call, ast.Name, ast.Constant, ast.Load,
              ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd, *BINOPS, *CMPOPS)
        if not isinstance(node, ok):
            raise _err(path, where, f"{expr!r}: {type(node).__name__} is not allowed (use + - * /, comparisons, and/or/not, {', '.join(FUNCS)})")
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float)):
            raise _err(path, where, f"{expr!r}: only numbers are allowed as constants")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCS or node.keywords:
                raise _err(path, where, f"{expr!r}: only {', '.join(FUNCS)} may be called")
            if (len(node.args) != 1) if node.func.id == "abs" else (len(node.args) < 2):
                want = "one argument" if node.func.id == "abs" else "two or more arguments (values are numbers)"
                raise _err(path, where, f"{expr!r}: {node.func.id}() takes {want}, given {len(node.args)}")
        elif isinstance(node, ast.Name) and id(node) not in called:
            if node.id in FUNCS:
                raise _err(path, where, f"{expr!r}: {node.id} is a function here: call it, {node.id}(...)")
            names.add(node.id)
    return names


def _depth(tree: ast.AST) -> int:
    """How deeply ``tree`` nests (iteratively: a deep tree must not overflow the stack here)."""
    deepest, todo = 0, [(tree, 1)]
    while todo:
        node, d = todo.pop()
        deepest = max(deepest, d)
        todo += [(child, d + 1) for child in ast.iter_child_nodes(node)]
    return deepest


def _is_test(node: ast.AST) -> bool:
    """A comparison, or comparisons joined by and/or/not: what a claim's condition must be."""
    if isinstance(node, ast.Compare):
        return True
    if isinstance(node, ast.BoolOp):
        return all(_is_test(v) for v in node.values)
    return isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not) and _is_test(node.operand)


def _selector(raw: Any, defaults: dict[str, Any], path: str, where: str) -> Selector:
    d = {**defaults, **_keys(raw, SELECTOR_KEYS, path, where)}
    axes = {}
    for axis in AXES:
        v = d.get(axis)
        if v is None:
            raise _err(path, f"{where}.{axis}", "missing (give it here or in `defaults`)")
        vals = tuple(str(x) for x in v) if isinstance(v, list) else (str(v),)
        if not vals:
            raise _err(path, f"{where}.{axis}", "an empty list")
        axes[axis] = vals
    over = d.get("over")
    many = any(len(v) > 1 for v in axes.values())
    if many and over is None:
        raise _err(path, f"{where}.over", f"a list of cells needs `over` ({', '.join(OVER)})")
    if over is not None and (not isinstance(over, str) or over not in OVER):
        raise _err(path, f"{where}.over", f"unknown aggregate {over!r}{did_you_mean(str(over), OVER)} (allowed: {', '.join(OVER)})")
    seeds = d.get("seeds")
    if seeds is not None and not (isinstance(seeds, list) and all(isinstance(s, int) for s in seeds)):
        raise _err(path, f"{where}.seeds", "must be a list of integers")
    return Selector(axes["attack"], axes["victim"], axes["defense"], str(d.get("metric", "accuracy")),
                    over if many or over else None, tuple(seeds) if seeds is not None else None)


def parse_claims(data: Any, path: str = "claims") -> ClaimsFile:
    """Validate a claims file's content; :class:`ClaimsError` names the claim and key at fault."""
    top = _keys(data, FILE_KEYS, path, "")
    if top.get("schema", 1) != 1:
        raise _err(path, "schema", f"claims schema {top.get('schema')!r}; this uebench reads schema 1")
    defaults = _keys(top.get("defaults", {}) or {}, SELECTOR_KEYS, path, "defaults")
    scope = _keys(top.get("scope", {}) or {}, ("dataset", "profile"), path, "scope")
    raw_claims = top.get("claims")
    if not isinstance(raw_claims, list) or not raw_claims:
        raise _err(path, "claims", "must be a non-empty list of claims")
    claims, seen = [], set()
    for i, raw in enumerate(raw_claims):
        where = f"claims[{i}]"
        c = _keys(raw, CLAIM_KEYS, path, where)
        for k in ("id", "source", "statement", "values", "holds"):
            if k not in c:
                raise _err(path, f"{where}.{k}", "this key is required")
        cid = str(c["id"])
        where = f"claims[{i}] ({cid})"
        if cid in seen:
            raise _err(path, where, "duplicate id")
        seen.add(cid)
        src = c["source"]
        if isinstance(src, dict):
            src = ", ".join(str(src[k]) for k in ("paper", "where") if src.get(k))
        if not isinstance(c["values"], dict) or not c["values"]:
            raise _err(path, f"{where}.values", "must be a mapping of names to cells")
        values = {}
        for name, sel in c["values"].items():
            if not str(name).isidentifier() or keyword.iskeyword(str(name)) or str(name) in FUNCS:
                raise _err(path, f"{where}.values.{name}", "a value name must be an identifier (letters, digits, _), not a Python keyword nor abs/min/max")
            values[str(name)] = _selector(sel, defaults, path, f"{where}.values.{name}")
        used = _names(str(c["holds"]), path, f"{where}.holds")
        unknown = sorted(used - set(values))
        if unknown:
            raise _err(path, f"{where}.holds", f"unknown value {unknown[0]!r}{did_you_mean(unknown[0], values)} (defined: {', '.join(values)})")
        claims.append(Claim(cid, str(src), str(c["statement"]).strip(), values, str(c["holds"]), str(c.get("note", "") or "").strip()))
    return ClaimsFile(path, claims, {k: str(v) for k, v in scope.items()})


def load_claims(path: str | Path | None = None) -> ClaimsFile:
    """Read a claims file with the matrix files' safeguards (a small UTF-8 text, bounded YAML, no
    key twice) and validate it."""
    from benchmark.yaml_file import load_yaml_documents, read_text_file

    p = Path(path) if path else DEFAULT_CLAIMS
    docs = load_yaml_documents(read_text_file(p, "claims file"), file=str(p))
    if not docs or docs[0] is None:
        raise ClaimsError(f"{p}: is empty; a claims file lists `claims:`")
    if len(docs) > 1:
        raise ClaimsError(f"{p}: holds {len(docs)} YAML documents; a claims file is one")
    return parse_claims(docs[0], str(p))


# ---------------------------------------------------------------------------------- evaluation


def evaluate_condition(expr: str, env: dict[str, float]) -> bool:
    """Evaluate a validated ``holds`` expression with ``env`` (no ``eval``: a walk of its syntax tree)."""

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return env[node.id]
        if isinstance(node, ast.UnaryOp):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else (+v if isinstance(node.op, ast.UAdd) else not v)
        if isinstance(node, ast.BinOp):
            return BINOPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.BoolOp):
            vals = [ev(v) for v in node.values]
            return all(vals) if isinstance(node.op, ast.And) else any(vals)
        if isinstance(node, ast.Compare):
            left = ev(node.left)
            for op, comp in zip(node.ops, node.comparators):
                right = ev(comp)
                if not CMPOPS[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.Call):
            return FUNCS[node.func.id](*[ev(a) for a in node.args])  # type: ignore[attr-defined]  # a Name: _names checked it
        raise ValueError(f"unsupported syntax {type(node).__name__}")

    return bool(ev(ast.parse(expr, mode="eval")))


@dataclass
class Measured:
    """One named value: its number (``None`` when not measured) and how it was obtained."""

    name: str
    value: float | None
    detail: str


@dataclass
class Result:
    """A claim checked on the records: it holds, fails, or is not measured (its records are missing), with the values read."""
    claim: Claim
    status: str
    measured: list[Measured]

    def measured_text(self) -> str:
        return "; ".join(f"{m.name} {m.detail}" for m in self.measured)


def measure(sel: Selector, records: list[dict[str, Any]], name: str, why_none: str = "") -> Measured:
    """The selector's value in ``records`` (already :func:`~benchmark.records.current`);
    ``why_none``: why no record is in scope, said of a value not measured (see :func:`scope_note`)."""
    seeds = list(sel.seeds) if sel.seeds is not None else None
    means = {}
    for a, v, d in sel.cells():
        m = cell_mean(records, a, v, d, sel.metric, seeds)
        if m is None:
            why = f"; {why_none}" if why_none else _absent(records, a, v, d, sel.metric, seeds)
            return Measured(name, None, f"not measured ({a} × {v} × {d}, {sel.metric}{why})")
        means[(a, v, d)] = m
    if sel.over is None:
        m = next(iter(means.values()))
        return Measured(name, m.mean, f"{m.mean:.1f} ({m.n} seed{'s' if m.n != 1 else ''})")
    value = OVER[sel.over]([m.mean for m in means.values()])
    n = min(m.n for m in means.values())
    which = ""
    if sel.over != "mean":
        at = next(k for k, m in means.items() if m.mean == value)
        varying = [i for i, axis in enumerate(AXES) if len(getattr(sel, axis)) > 1]
        which = " at " + "/".join(at[i] for i in varying)
    return Measured(name, value, f"{value:.1f} ({sel.over} of {len(means)} cells{which}; ≥{n} seed{'s' if n != 1 else ''} each)")


def _absent(records: list[dict[str, Any]], attack: str, victim: str, defense: str, metric: str, seeds: list[int] | None) -> str:
    """Why a cell has no value, where the records in scope say more than "no record yet": a label
    or metric no record has (a typo?), or seeds none of its records has."""
    for axis, want in (("attack", attack), ("victim", victim), ("defense", defense)):
        have = sorted({str(r.get(axis)) for r in records})
        if want not in have:
            return f"; no record here has {axis} {want!r}{did_you_mean(want, have)}"
    metrics = sorted({k for r in records for k in (r.get("metrics") or {})})
    if metric not in metrics:
        return f"; no record here has metric {metric!r}{did_you_mean(metric, metrics)}"
    if seeds is not None:
        return f"; seeds {', '.join(map(str, seeds))} asked for"
    return ""


def check(claim: Claim, records: list[dict[str, Any]], why_none: str = "") -> Result:
    measured = [measure(sel, records, name, why_none) for name, sel in claim.values.items()]
    if any(m.value is None or (isinstance(m.value, float) and math.isnan(m.value)) for m in measured):
        return Result(claim, NOT_MEASURED, measured)
    env = {m.name: float(m.value) for m in measured}  # type: ignore[arg-type]
    try:
        ok = evaluate_condition(claim.holds, env)
    except ArithmeticError as e:  # a / b with b measured as 0: the claim's own arithmetic, not a failure
        values = ", ".join(f"{k} = {v:g}" for k, v in env.items())
        raise ClaimsError(f"claim {claim.id!r}: `{claim.holds}` cannot be evaluated with {values}: {e}") from None
    return Result(claim, HOLDS if ok else FAILS, measured)


@dataclass
class Report:
    """Every claim checked on each (dataset, profile) group of the records in scope."""

    sections: list[tuple[tuple[str, str], str, list[Result]]]  # ((dataset, profile), data caption, results)
    superseded: int = 0
    #: why no record is in scope, when none is and the directory holds records of another scope
    note: str = ""

    def counts(self) -> dict[str, int]:
        out = {HOLDS: 0, FAILS: 0, NOT_MEASURED: 0}
        for _, _, results in self.sections:
            for r in results:
                out[r.status] += 1
        return out


#: how a section with no record in scope names the scope's missing dataset or profile
ANY_DATASET, ANY_PROFILE = "any dataset", "any"


def scope_note(scope: dict[str, str], records: list[dict[str, Any]]) -> str:
    """Why no finished record of ``records`` (the directory's, already :func:`~benchmark.records.current`)
    is in ``scope``: ``no finished record here at profile quick (this directory holds profile smoke)``."""
    if not records:
        return "no finished record here"
    if not scope:
        return ""
    want = ", ".join(f"{k} {v}" for k, v in scope.items())
    held = []
    for k in scope:
        vals = sorted({str(r.get(k)) for r in records})
        held.append(f"{k}{'s' if len(vals) > 1 else ''} {', '.join(vals)}")
    return f"no finished record here at {want} (this directory holds {'; '.join(held)})"


def check_all(cf: ClaimsFile, records: list[dict[str, Any]]) -> Report:
    from benchmark.data.describe import data_caption

    cur = current(records)
    recs = [r for r in cur.records if all(str(r.get(k)) == v for k, v in cf.scope.items())]
    found = groups(recs)
    if not found:  # nothing in scope: every claim is not measured, and says where the records are
        label = (cf.scope.get("dataset", ANY_DATASET), cf.scope.get("profile", ANY_PROFILE))
        why = scope_note(cf.scope, cur.records)
        note = f"{why}; a claims file with another `scope` (`--claims FILE`) checks those" if cf.scope and cur.records else ""
        return Report([(label, "_Data: none in scope._", [check(c, [], why) for c in cf.claims])], cur.superseded, note)
    sections = [(g, data_caption(rs, *g), [check(c, rs) for c in cf.claims]) for g, rs in found.items()]
    return Report(sections, cur.superseded)


# ----------------------------------------------------------------------------------- output


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_text(report: Report) -> str:
    lines = []
    for (dataset, profile), caption, results in report.sections:
        lines.append(f"{dataset} — profile {profile} ({caption.strip('_').removeprefix('Data: ').rstrip('.')})")
        for r in results:
            lines.append(f"  {r.status.upper():<12} {r.claim.id}: {r.claim.holds}")
            lines.append(f"  {'':<12} measured: {r.measured_text()}")
    c = report.counts()
    lines.append(f"{c[HOLDS]} hold, {c[FAILS]} fail, {c[NOT_MEASURED]} not measured")
    if report.note:
        lines.append(f"note: {report.note}")
    if report.superseded:
        lines.append(f"({report.superseded} {SET_ASIDE})")
    return "\n".join(lines)


def render_markdown(report: Report, source: str, claims_path: str) -> str:
    c = report.counts()
    out = [
        "# Claims",
        "",
        f"_Generated by `bench claims` from `{source}` and `{claims_path}`. Do not edit by hand._",
        "",
        ("Each claim is a paper's qualitative finding, checked on the seed means of the cells named in "
         "its condition (accuracy in %). **holds** / **fails** / **not measured** (a cell it needs has no record yet). "
         f"A failing claim is kept and reported, not deleted. Summary: {c[HOLDS]} hold, {c[FAILS]} fail, "
         f"{c[NOT_MEASURED]} not measured."),
        "",
    ]
    if report.note:
        out += [f"> Note: {_cell(report.note)}.", ""]
    for (dataset, profile), caption, results in report.sections:
        out += [f"## {dataset} — profile `{profile}`", "", caption, "",
                "| claim | source | condition | measured | result |", "| --- | --- | --- | --- | --- |"]
        for r in results:
            claim = f"**{r.claim.id}**: {_cell(r.claim.statement)}" + (f" _{_cell(r.claim.note)}_" if r.claim.note else "")
            status = {HOLDS: "holds", FAILS: "**fails**", NOT_MEASURED: "not measured"}[r.status]
            out.append(f"| {claim} | {_cell(r.claim.source)} | `{_cell(r.claim.holds)}` | {_cell(r.measured_text())} | {status} |")
        out.append("")
    if report.superseded:
        out += [f"_{report.superseded} {SET_ASIDE}._", ""]
    return "\n".join(out)


def claim_lines(report: Report) -> list[str]:
    """``id | source | statement | condition | measured | holds?``: the lead's reporting format."""
    out = []
    for _, _, results in report.sections:
        for r in results:
            out.append(" | ".join([r.claim.id, r.claim.source, _cell(r.claim.statement), r.claim.holds, r.measured_text(), r.status]))
    return out


def write_claims(results: str | Path, claims: str | Path | None = None, out: str | Path | None = None) -> tuple[Path, Report]:
    """Check the claims on ``results`` and write ``CLAIMS.md`` (default: beside its LEADERBOARD.md).
    A :class:`UserError`, writing nothing, when no claim is measured there but subdirectories of
    ``results`` hold results: a folder of results directories (``results/``) given for one."""
    from benchmark.records import load_records, pass_a_subdir, record_subdirs
    from benchmark.store import atomic_write_bytes

    cf = load_claims(claims)
    records = load_records(results)
    report = check_all(cf, records)
    counts = report.counts()
    if not counts[HOLDS] and not counts[FAILS] and (subdirs := record_subdirs(Path(results))):  # a folder of results directories
        n = len(records)
        raise pass_a_subdir(Path(results), f"{n} result {'record' if n == 1 else 'records'}, none of which a claim measures", subdirs)
    path = Path(out) if out else Path(results) / "CLAIMS.md"
    shown = str(DEFAULT_CLAIMS.relative_to(DEFAULT_CLAIMS.parents[1])) if claims is None else str(claims)
    atomic_write_bytes(path, render_markdown(report, str(results), shown).encode())
    return path, report
