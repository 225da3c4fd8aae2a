"""Small YAML files read safely: a bounded, regular UTF-8 text (:func:`read_text_file`) parsed into
documents without alias bombs, unbounded nesting or a key given twice (:func:`load_yaml_documents`).
Matrix files, claims files and ``-E`` values are read this way. No torch: commands that only read
records and claims start fast."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from benchmark.errors import ConfigError, UserError, clip, shorten

#: The largest matrix file read (a matrix of thousands of cells is a few kB).
MAX_MATRIX_BYTES = 8 * 1024 * 1024
#: How many values YAML aliases may add to a document (``&a [*b, *b, ...]`` nests exponentially:
#: a 1 kB "alias bomb" expands to billions of values).
MAX_ALIAS_VALUES = 100_000
#: How deeply a document may nest (a matrix nests 4 levels).
MAX_DEPTH = 64

try:  # libyaml's parser: about 7x faster than PyYAML's pure-Python one on a large matrix
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader


def _check_events(text: str, file: str | None) -> None:
    """Refuse, before anything is built, a YAML text whose aliases expand a document by more than
    :data:`MAX_ALIAS_VALUES` values, that refers to itself, or that nests deeper than
    :data:`MAX_DEPTH` (libyaml's composer recurses per level: a 100k-deep ``[[[...]]]`` would
    overflow the C stack). One pass over the parser's events, constant work per event."""
    anchors: dict[str, int] = {}  # anchor -> expanded values of the node it names
    open_: list[list[Any]] = []  # per open collection: [anchor, expanded values so far]
    written = expanded = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            if len(open_) >= MAX_DEPTH:
                raise ConfigError(f"nested more than {MAX_DEPTH} levels deep; a matrix nests a few", file=file)
            open_.append([event.anchor, 1])
            written += 1
            continue
        if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, n = open_.pop()
        elif isinstance(event, yaml.ScalarEvent):
            anchor, n = event.anchor, 1
            written += 1
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor not in anchors:  # unknown, or a collection still open: recursive
                if any(a == event.anchor for a, _ in open_):
                    raise ConfigError("a YAML alias refers to a value that contains it (a recursive document)", file=file)
                continue  # an undefined alias: the composer reports it with its line
            anchor, n = None, anchors[event.anchor]
        elif isinstance(event, yaml.DocumentEndEvent):
            written = expanded = 0
            continue
        else:
            continue
        if anchor is not None:
            anchors[anchor] = n
        if open_:
            open_[-1][1] += n
        else:
            expanded += n
        if open_ and open_[-1][1] - written > MAX_ALIAS_VALUES or expanded - written > MAX_ALIAS_VALUES:
            raise ConfigError(
                f"YAML aliases expand this document by more than {MAX_ALIAS_VALUES:,} values; "
                "refusing it (an alias bomb?)", file=file)


def _check_duplicate_keys(node: yaml.Node, file: str | None) -> None:
    """Refuse a mapping that names a key twice (PyYAML keeps the last silently: a second
    ``defenses:`` would drop the first without a word). Iterative; shared alias nodes once."""
    todo, seen = [node], set()
    while todo:
        n = todo.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if isinstance(n, yaml.MappingNode):
            first: dict[tuple[str, str], int] = {}
            for k, v in n.value:
                if isinstance(k, yaml.ScalarNode) and k.tag != "tag:yaml.org,2002:merge":
                    line = k.start_mark.line + 1
                    # the key as YAML reads it: 1 and '1' differ, ~ and null do not
                    same = (k.tag, "" if k.tag.endswith(":null") else k.value.lower() if k.tag.endswith(":bool") else k.value)
                    if same in first:
                        raise ConfigError(f"line {line}: duplicate key {shorten(k.value)} (first at line {first[same]})", file=file)
                    first[same] = line
                todo += [k, v]
        elif isinstance(n, yaml.SequenceNode):
            todo += n.value


def load_yaml_documents(text: str, file: str | None = None) -> list[Any]:
    """Every document of ``text``, parsed safely and within bounds (no alias bomb, no recursion,
    bounded nesting, no key twice in a mapping); a YAML error becomes one :class:`ConfigError` with
    its line and column."""
    loader = None
    try:
        _check_events(text, file)
        loader = _Loader(text)
        docs = []
        while loader.check_node():
            node = loader.get_node()
            _check_duplicate_keys(node, file)
            docs.append(loader.construct_document(node))
        return docs
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"not valid YAML{where}: {clip(str(getattr(e, 'problem', None) or e))}", file=file) from None
    except ValueError as e:  # a value Python refuses to build (an integer of more than 4,300 digits)
        raise ConfigError(f"not a usable YAML value: {clip(str(e))}", file=file) from None
    finally:
        if loader is not None:
            loader.dispose()


def read_text_file(path: str | Path, what: str = "matrix file") -> str:
    """The text of a small regular UTF-8 file, or a :class:`UserError` saying why it is not one
    (missing, a directory, a device or pipe, too large, binary)."""
    p = Path(path)
    try:
        if not p.exists():
            raise UserError(f"{what} {str(p)!r} does not exist")
        if p.is_dir():
            raise UserError(f"{what} {str(p)!r} is a directory; give the YAML file inside it")
        if not p.is_file():
            raise UserError(f"{what} {str(p)!r} is not a regular file")
        with open(p, "rb") as f:
            blob = f.read(MAX_MATRIX_BYTES + 1)
    except OSError as e:
        raise UserError(f"cannot read {what} {str(p)!r}: {e.strerror or e}") from None
    if len(blob) > MAX_MATRIX_BYTES:
        raise UserError(f"{what} {str(p)!r} is larger than {MAX_MATRIX_BYTES // 2**20} MiB; is it a {what}?")
    nul = blob.find(b"\0")
    if nul >= 0:
        raise UserError(f"{what} {str(p)!r} is a binary file (a NUL byte at offset {nul}), not YAML")
    try:
        return blob.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{what} {str(p)!r} is not UTF-8 text (byte 0x{blob[e.start]:02x} at offset {e.start})") from None
