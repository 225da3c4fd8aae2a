"""One plugin described: ``bench plugins NAME`` (or ``bench plugins KIND NAME``) and the params
tables of docs/ (``<!-- generated: params kind=attack -->``, :mod:`benchmark.docs`).

What a user needs to write a matrix entry: the plugin's kind, class, summary (the module's and the
class's first docstring paragraphs, which name the source paper), version, and every param with
its type (and bounds), its default (the ``paper`` profile) and what the ``quick`` and ``smoke``
profiles set it to. A param's description is its ``Field(description=...)``, else the comment on
its line in the ``Params`` class (``steps: int = 20  # PGD steps per noise update``), else the
comment lines right above it.
"""

from __future__ import annotations

import ast
import inspect
import io
import json
import textwrap
import tokenize
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from benchmark.errors import PluginNotFound, UserError
from benchmark.profiles import PROFILES
from benchmark.registry import KINDS, Entry, Registry

#: how a profile column is headed: ``paper`` is the defaults
PROFILE_COLUMNS = tuple(p for p in PROFILES if p != "paper")


@dataclass
class ParamInfo:
    """One field of a plugin's ``Params``: how ``bench plugins NAME`` and docs/ show it."""

    name: str
    type: str
    default: Any  # the paper profile's value (JSON-able)
    description: str = ""
    profiles: dict[str, Any] = field(default_factory=dict)  # profile -> the value it sets (only those that set it)


@dataclass
class PluginInfo:
    kind: str
    name: str
    cls: str  # module.qualname
    version: str
    package: str
    summary: list[str]  # paragraphs: the module's first (the paper), the class's first
    params: list[ParamInfo]
    notes: list[str] = field(default_factory=list)  # kind-specific facts: a defense's stage, what it needs
    error: str | None = None

    @property
    def profile_columns(self) -> list[str]:
        """The profiles (of ``quick``, ``smoke``) that set any param: the columns shown."""
        return [c for c in PROFILE_COLUMNS if any(c in p.profiles for p in self.params)]

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "class": self.cls, "version": self.version, "package": self.package,
                "summary": self.summary, "notes": self.notes, "error": self.error,
                "params": [{"name": p.name, "type": p.type, "default": p.default, "description": p.description,
                            "profiles": p.profiles} for p in self.params]}


# ------------------------------------------------------------------------------ lookup


def _kind_word(word: str) -> str | None:
    """``attack`` for ``attack`` or ``attacks``; None for a word that is no kind."""
    w = word.lower()
    for k in KINDS:
        if w in (k, k + "s", k + "es"):
            return k
    return None


def find(reg: Registry, words: list[str]) -> Entry:
    """The entry ``bench plugins [KIND] NAME`` names: ``NAME`` alone when one kind has it, else the
    kind first. An unknown name raises :class:`~benchmark.errors.PluginNotFound` (with "did you mean")."""
    if len(words) == 2:
        kind = _kind_word(words[0])
        if kind is None:
            raise UserError(f"unknown plugin kind {words[0]!r} (allowed: {', '.join(KINDS)}); "
                            "`bench plugins NAME` or `bench plugins KIND NAME`")
        return _with_broken(reg, kind, words[1])
    if len(words) != 1:
        raise UserError(f"`bench plugins` takes [KIND] NAME, got {len(words)} words: {' '.join(words)!r}")
    name = words[0]
    everything = reg.entries()
    hits = [e for e in everything if e.name == name]
    modules = [e for e in hits if e.kind not in KINDS]  # a plugin module that failed to load: no plugin to describe
    if modules and len(modules) == len(hits):
        m = modules[0]
        by = f" (package {m.package})" if m.package and m.package != "?" else ""
        raise UserError(f"{name!r} is a plugin module that failed to load{by}: {m.error}")
    hits = [e for e in hits if e.kind in KINDS]
    kinds = sorted({e.kind for e in hits}, key=KINDS.index)
    if len(kinds) > 1:
        raise UserError(f"{name!r} is a plugin of several kinds ({', '.join(kinds)}): name the kind, "
                        f"e.g. `bench plugins {kinds[0]} {name}`")
    if hits:
        return _with_broken(reg, kinds[0], name)
    known = sorted({e.name for e in everything if e.error is None})
    raise PluginNotFound("plugin", name, known)


def _with_broken(reg: Registry, kind: str, name: str) -> Entry:
    """The registry's entry, or a broken one of that kind and name (listed with its reason)."""
    try:
        return reg.entry(kind, name)
    except PluginNotFound:
        broken = [e for e in reg.broken() if e.kind == kind and e.name == name]
        if broken:
            return broken[0]
        elsewhere = sorted({e.kind for e in reg.entries() if e.name == name}, key=KINDS.index)
        if not elsewhere:
            raise
        raise PluginNotFound(kind, name, reg.names(kind), hint=f"; {name!r} is a plugin of kind {' and '.join(elsewhere)}: "
                             f"`bench plugins {elsewhere[0]} {name}`") from None


# ------------------------------------------------------------------------------ description


def _paragraph(doc: str | None) -> str:
    """The first paragraph of a docstring, on one line."""
    text = inspect.cleandoc(doc or "")
    return " ".join(text.split("\n\n", 1)[0].split()) if text else ""


def describe(entry: Entry) -> PluginInfo:
    """``entry`` as :class:`PluginInfo`."""
    obj = entry.obj
    if obj is None:
        return PluginInfo(entry.kind, entry.name, entry.source, "", entry.origin, [], [], error=entry.error)
    module = inspect.getmodule(obj)
    summary = [p for p in (_paragraph(getattr(module, "__doc__", None)), _paragraph(getattr(obj, "__doc__", None))) if p]
    summary = list(dict.fromkeys(summary))
    cls = f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"
    notes: list[str] = []
    if entry.kind == "model":
        notes.append("an architecture: name it as a plugin's `arch` param (no params of its own)")
        return PluginInfo(entry.kind, entry.name, cls, entry.version, entry.origin, summary, [], notes, entry.error)
    stage = getattr(obj, "stage", None)
    if entry.kind == "defense" and isinstance(stage, str):
        note = getattr(obj, "applies_note", "") or ""
        notes.append(f"stage: {stage}" + (f" ({note})" if note else ""))
    paradigm = getattr(obj, "paradigm", None)
    if entry.kind == "victim" and isinstance(paradigm, str):
        notes.append(f"paradigm: {paradigm}")
    requires = tuple(getattr(obj, "requires", ()) or ())
    if requires:
        missing = entry.missing
        notes.append("requires: " + ", ".join(f"{m}{' (not installed)' if m in missing else ''}" for m in requires))
    return PluginInfo(entry.kind, entry.name, cls, entry.version, entry.origin, summary, params_of(obj), notes, entry.error)


def params_of(plugin: Any) -> list[ParamInfo]:
    """Every field of ``plugin.Params``, with the values its profiles set."""
    model = getattr(plugin, "Params", None)
    fields = getattr(model, "model_fields", None)
    if not fields or not isinstance(model, type):
        return []
    profiles = getattr(plugin, "profiles", {}) or {}
    validated: dict[str, Any] = {}
    for p in PROFILE_COLUMNS:
        if profiles.get(p):
            try:
                validated[p] = model(**profiles[p]).model_dump(mode="json")
            except Exception:  # noqa: BLE001 - a broken profile is shown as written
                validated[p] = {k: _jsonable(v) for k, v in profiles[p].items()}
    comments = _comments(model)
    out = []
    for name, f in fields.items():
        default = "(required)" if f.is_required() else _jsonable(f.get_default(call_default_factory=True))
        set_by: dict[str, Any] = {p: validated[p].get(name) for p in PROFILE_COLUMNS if p in validated and name in profiles[p]}
        out.append(ParamInfo(name, type_text(f.annotation, f.metadata), default,
                             " ".join((f.description or comments.get(name, "")).split()), set_by))
    return out


def _jsonable(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        if isinstance(value, (tuple, list)):
            return [_jsonable(v) for v in value]
        return str(value)


def _comments(model: type) -> dict[str, str]:
    """Field name -> the comment on its line (else the comment lines right above it), for the
    ``Params`` class and its bases (a field an override leaves uncommented keeps its base's)."""
    out: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        own = set(inspect.get_annotations(cls)) & set(getattr(model, "model_fields", {}))
        if not own:
            continue
        try:
            source = inspect.getsource(cls)
        except (OSError, TypeError):
            continue
        out.update({k: v for k, v in _source_comments(source, own).items() if v})
    return out


def _source_comments(source: str, names: set[str]) -> dict[str, str]:
    """Comments of the fields ``names`` in a class's ``source`` (its own body only)."""
    text = textwrap.dedent(source)
    lines = text.splitlines()
    try:
        tree = ast.parse(text)
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (SyntaxError, tokenize.TokenError, IndentationError):
        return {}
    trailing = {t.start[0]: t.string for t in tokens if t.type == tokenize.COMMENT and t.line.strip() != t.string.strip()}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    found: dict[str, str] = {}
    for node in body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id in names):
            continue
        end = node.end_lineno or node.lineno
        comment = trailing.get(node.lineno) or trailing.get(end)
        if comment:
            found[node.target.id] = comment.lstrip("#").strip()
            continue
        above: list[str] = []
        j = node.lineno - 2  # index into ``lines`` of the line above the field
        while j >= 1 and lines[j].strip().startswith("#"):
            above.insert(0, lines[j].strip().lstrip("#").strip())
            j -= 1
        if above:
            found[node.target.id] = " ".join(above)
    return found


_BOUNDS = (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤"), ("min_length", "length ≥"), ("max_length", "length ≤"))


def _bounds(metadata: list[Any]) -> list[str]:
    out = []
    for m in metadata:
        for attr, sign in _BOUNDS:
            v = getattr(m, attr, None)
            if v is not None and not isinstance(v, bool):
                out.append(f"{sign} {show(v)}")
    return out


def type_text(annotation: Any, metadata: list[Any] | None = None) -> str:
    """A field's type as a matrix author reads it: ``int ≥ 1``, ``cosine | multistep``, ``float | null``."""
    bounds = _bounds(list(metadata or []))
    args = typing.get_args(annotation)
    if bounds and typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]  # the bounds are the value's, not null's: ``float > 0 | null``
        shown = " | ".join(_type_name(a) for a in rest)
        return f"{shown} {', '.join(bounds)} | null"
    base = _type_name(annotation)
    return f"{base} {', '.join(bounds)}" if bounds else base


def _type_name(a: Any) -> str:
    if a is None or a is type(None):
        return "null"
    origin = typing.get_origin(a)
    args = typing.get_args(a)
    if origin is typing.Annotated:
        inner = _type_name(args[0])
        bounds = _bounds(list(args[1:]))
        return f"{inner} {', '.join(bounds)}" if bounds else inner
    if origin is typing.Literal:
        return " | ".join(str(show(v)) for v in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(x) for x in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        shown = [("..." if x is Ellipsis else _type_name(x)) for x in args]
        return f"{name}[{', '.join(shown)}]" if shown else name
    if isinstance(a, type):
        return a.__name__
    return str(a).replace("typing.", "")


def show(value: Any) -> str:
    """A value as a matrix (YAML) writes it: ``true``, ``null``, ``8/255`` for a float that is a
    whole number of 255ths, ``[60, 75]``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        if value and abs(value) < 1 and len(repr(value)) > 8:  # 8/255, 0.8/255: as the paper and the source write it
            num = value * 255
            for digits in (0, 1, 2):
                if abs(num - round(num, digits)) < 1e-9:
                    return f"{round(num, digits):g}/255"
        return f"{value:g}"
    if isinstance(value, str):
        return value if value else "''"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {show(v)}" for k, v in value.items()) + "}"
    return str(value)


# ------------------------------------------------------------------------------ rendering


def render_text(info: PluginInfo) -> str:
    """What ``bench plugins NAME`` prints."""
    from tabulate import tabulate

    lines = [f"{info.kind} {info.name}: {info.cls}" + (f", version {info.version}" if info.version else "")
             + f" ({info.package})"]
    if info.error:
        lines.append(f"broken: {info.error}")
    lines += [f"  {p}" for p in info.summary]
    lines += [f"  {n}" for n in info.notes]
    if info.kind == "model":
        return "\n".join(lines)
    if not info.params:
        lines.append("params: none")
        return "\n".join(lines)
    lines.append("")
    cols = info.profile_columns
    if cols:
        lines.append(f"params (default: the paper profile; {' and '.join(cols)}: what those profiles set, blank = the "
                     "default; a matrix's params override both):")
    else:
        lines.append("params (no profile changes them: the defaults hold at every profile; a matrix's params override them):")
    rows = [[p.name, p.type, show(p.default), *[show(p.profiles[c]) if c in p.profiles else "" for c in cols],
             p.description] for p in info.params]
    lines.append(tabulate(rows, headers=["param", "type", "default", *cols, "description"], disable_numparse=True))
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(info: PluginInfo) -> str:
    """One plugin's params as a markdown table (docs/)."""
    head = f"**`{info.name}`** (`{info.cls}`, version {info.version})"
    if not info.params:
        return head + ": no params.\n"
    cols = info.profile_columns
    lines = [head, "", "| param | type | default | " + "".join(f"{c} | " for c in cols) + "description |",
             "| --- | --- | --- | " + "".join("--- | " for _ in cols) + "--- |"]
    for p in info.params:
        profs = "".join((f"`{_cell(show(p.profiles[c]))}`" if c in p.profiles else "") + " | " for c in cols)
        lines.append(f"| `{p.name}` | {_cell(p.type)} | `{_cell(show(p.default))}` | {profs}{_cell(p.description)} |")
    return "\n".join(lines) + "\n"


def render_kind_markdown(reg: Registry, kind: str) -> str:
    """The params tables of every built-in plugin of ``kind`` (third-party ones are left out, so the
    docs do not depend on what is installed)."""
    names = [n for n in reg.names(kind) if reg.entry(kind, n).package == "uebench"]
    parts = [render_markdown(describe(reg.entry(kind, n))) for n in names]
    tail = (f"_Generated from the plugins' `Params` and `profiles` by `bench docs`; `bench plugins {kind} NAME` prints the "
            "same for any installed plugin. Blank profile cells take the default; a matrix's params override both._\n")
    return "\n".join(parts) + "\n" + tail
