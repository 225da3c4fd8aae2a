"""``matrix.yaml``: the schema, and its validation in two stages.

Stage 1 checks the matrix's own shape (:class:`Matrix`); stage 2 (:func:`resolve`) looks every
axis entry up in the registry and validates its params with the plugin's own ``Params`` model, the
profile's settings underneath. Every mistake raises :class:`~benchmark.errors.ConfigError` naming
the file, the key path (``attacks[2].params.eps``), the bad value and what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from benchmark.errors import ConfigError, PluginNotFound, UserError, clip, did_you_mean, shorten
from benchmark.executor import Executor
from benchmark.interfaces import Attack, Defense, Metric, Victim
from benchmark.params import resolve_params, union_error
from benchmark.profiles import PROFILES, Profile
from benchmark.registry import Registry

if TYPE_CHECKING:
    from benchmark.data.source import DatasetSource


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


#: A seed: what torch, numpy and Python's ``random`` all accept (and ``seed * 1_000_003 + offset``
#: stays far inside torch's 64 bits: :meth:`RunContext.generator`).
Seed = Annotated[StrictInt, Field(ge=0, le=2**32 - 1)]
#: A count (images, threads): a true integer, not ``true`` or ``1.5``.
Count = Annotated[StrictInt, Field(gt=0)]

#: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``: the devices uebench runs on.
DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d{1,3})?")


def check_device(value: Any) -> str:
    """``value`` if it names a device uebench can run on, else ``ValueError`` saying what is allowed."""
    if not isinstance(value, str) or not DEVICE.fullmatch(value.strip()):
        raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps (got {shorten(value)})")
    return value.strip()


class AxisEntry(_Strict):
    """One entry of an axis: ``{name, params, label}`` or, in the YAML, a bare name. ``label`` is
    how tables name the entry (e.g. ``{name: simclr, label: random-init, params: {epochs: 0}}``);
    it is not part of any cache key."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    label: str | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="before")
    @classmethod
    def _bare_name(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data


class DatasetSpec(_Strict):
    """The dataset of a matrix. Keys other than the ones below are the source's own params
    (``root``, ``download``, ``path``...): ``{name: cifar10, root: ~/data, subset: 5000}``."""

    name: str
    label: str | None = None  # display name in leaderboards (default: the source name)
    subset: Count | None = None  # class-balanced training subset
    test_subset: Count | None = None
    # clean samples for model-repair defenses: a count, or a percentage of the training set ("5%");
    # drawn from outside the subset when there is one (benchmark.data.split.make_splits)
    holdout: int | str = 0
    split_seed: Seed = 0
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _flat_params(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"name": data}
        if isinstance(data, dict):
            core = set(cls.model_fields)
            extra = {k: v for k, v in data.items() if k not in core}
            if "params" in data and not isinstance(data["params"], dict):
                raise ValueError(f"params: must be a mapping of the source's params (got {shorten(data['params'])})")
            if extra:
                data = {k: v for k, v in data.items() if k in core}
                data["params"] = {**data.get("params", {}), **extra}
        return data

    @field_validator("holdout", mode="before")
    @classmethod
    def _holdout(cls, v: Any) -> int | str:
        if isinstance(v, bool) or not isinstance(v, (int, str)):
            raise ValueError(f"holdout must be a count of images or a percentage like '5%' (got {shorten(v)})")  # noqa: TRY004 - pydantic reports ValueErrors
        if isinstance(v, str):
            import re

            m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*%\s*", v)
            if not m or not 0 < float(m.group(1)) < 100:
                raise ValueError("holdout must be a count of images or a percentage like '5%'")
            return f"{float(m.group(1)):g}%"
        if v < 0:
            raise ValueError("holdout must be >= 0")
        return v

    @property
    def display(self) -> str:
        return self.label or self.name


class ExecutorSpec(_Strict):
    """How jobs run: an executor plugin's name and its params, validated by the executor's own
    ``Params`` (``bench plugins`` lists the executors: ``inline``, the default, ``local``, ``slurm``)."""

    name: str = "inline"
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _bare_name(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data


class Matrix(_Strict):
    """A benchmark: a dataset, the axes attacks x victims x defenses, metrics, seeds and a profile."""

    name: str = "matrix"
    dataset: DatasetSpec
    profile: Profile = "paper"
    seeds: list[Seed] = Field(default_factory=lambda: [0], min_length=1)
    attack_seed: Seed = 0  # poisons are generated once, with this seed, and shared by every cell
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    # torch threads of every job, whatever the executor: float reductions depend on the thread
    # count, so fixing it makes a cell's numbers the same inline, with local workers or on SLURM
    threads: StrictInt = Field(default=1, ge=1, le=256)
    # float32, or bf16 autocast around forward passes; auto: bfloat16 on CUDA, float32 elsewhere.
    # bfloat16 on a CPU with AVX512-BF16 trains the small nets ~1.7x faster but weakens EM by 4-6
    # points at the quick profile (benchmarks/README.md, "bf16 on a CPU"); records say which ran
    # (``numerics.dtype``)
    precision: Literal["auto", "float32", "bfloat16"] = "auto"
    attacks: list[AxisEntry] = Field(min_length=1)
    victims: list[AxisEntry] = Field(min_length=1)
    defenses: list[AxisEntry] = Field(default_factory=lambda: [AxisEntry(name="none")], min_length=1)
    metrics: list[AxisEntry] = Field(default_factory=lambda: [AxisEntry(name="accuracy")], min_length=1)
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        return check_device(v)

    @field_validator("seeds")
    @classmethod
    def _unique(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError("seeds must be distinct")
        return v


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel]:
    """The pydantic model that validates the mapping at ``loc`` inside a :class:`Matrix`."""
    import typing

    model: type[BaseModel] = Matrix
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            break
        ann = field.annotation
        args = typing.get_args(ann) or (ann,)
        for a in args:
            if isinstance(a, type) and issubclass(a, BaseModel):
                model = a
                break
    return model


def _first_error(err: ValidationError) -> ErrorDetails:
    """The error to show: an unknown key before anything else (a misspelled ``attaks`` is why
    ``attacks`` is missing), else the first."""
    errors = err.errors()
    return next((e for e in errors if e["type"] == "extra_forbidden"), union_error(errors))


def parse_matrix(data: Any, file: str | None = None) -> Matrix:
    """Stage 1: validate the matrix's own schema."""
    if not isinstance(data, dict):
        raise ConfigError(f"a matrix must be a mapping of keys, found {type(data).__name__}", file=file)
    try:
        return Matrix.model_validate(data)
    except ValidationError as err:
        e = _first_error(err)
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        if e["type"] == "extra_forbidden":
            key = str(loc[-1])
            model = _model_at(loc[:-1])
            allowed = list(model.model_fields)
            raise ConfigError(
                f"unknown key {shorten(key)}{did_you_mean(key, allowed)} (allowed: {', '.join(allowed)})",
                file=file, path=_loc(loc[:-1] + (shorten(key, 40).strip("'"),)),
            ) from None
        if e["type"] == "missing":
            raise ConfigError("this key is required", file=file, path=_loc(loc)) from None
        msg = e["msg"].removeprefix("Value error, ")
        shown = "" if e["type"] == "value_error" and "(got " in msg else f" (got {shorten(e.get('input'))})"
        raise ConfigError(f"{msg}{shown}", file=file, path=_loc(loc)) from None


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
            first: dict[str, int] = {}
            for k, v in n.value:
                if isinstance(k, yaml.ScalarNode) and k.tag != "tag:yaml.org,2002:merge":
                    line = k.start_mark.line + 1
                    if k.value in first:
                        raise ConfigError(f"line {line}: duplicate key {shorten(k.value)} (first at line {first[k.value]})", file=file)
                    first[k.value] = line
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
        raise UserError(f"{what} {str(p)!r} is larger than {MAX_MATRIX_BYTES // 2**20} MiB; is it a matrix?")
    nul = blob.find(b"\0")
    if nul >= 0:
        raise UserError(f"{what} {str(p)!r} is a binary file (a NUL byte at offset {nul}), not YAML")
    try:
        return blob.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{what} {str(p)!r} is not UTF-8 text (byte 0x{blob[e.start]:02x} at offset {e.start})") from None


def load_matrices(path: str | Path) -> list[Matrix]:
    """Read and validate (stage 1) a matrix file: one matrix, or several YAML documents separated by
    ``---``, each a full matrix (run in order into the same results directory). Empty documents (a
    comment block before the first ``---``) are skipped; errors name the matrix by its position
    among the others (``m.yaml, document 2: ...``)."""
    p = Path(path)
    text = read_text_file(p)
    docs = [d for d in load_yaml_documents(text, file=str(p)) if d is not None]
    if not docs:
        raise ConfigError("is empty; a matrix names at least a dataset, attacks and victims", file=str(p))
    if len(docs) == 1:
        return [parse_matrix(docs[0], file=str(p))]
    return [parse_matrix(d, file=document_name(p, i)) for i, d in enumerate(docs)]


def document_name(path: str | Path, index: int) -> str:
    """How messages name the ``index``-th (0-based) matrix of a multi-document file."""
    return f"{path}, document {index + 1}"


def load_matrix(path: str | Path) -> Matrix:
    """Read and validate (stage 1) a file holding exactly one matrix."""
    matrices = load_matrices(path)
    if len(matrices) > 1:
        raise ConfigError(f"holds {len(matrices)} matrices (YAML documents); expected one here", file=str(path))
    return matrices[0]


@dataclass
class Resolved:
    """A matrix with every plugin looked up and its params validated (stage 2)."""

    matrix: Matrix
    dataset: DatasetSource
    attacks: list[Attack]
    victims: list[Victim]
    defenses: list[Defense]
    metrics: list[Metric]
    file: str | None = None
    executor: Executor | None = None  # the matrix's executor, its params validated


def _instantiate(registry: Registry, kind: str, entry: AxisEntry, profile: str, where: str, file: str | None) -> Any:
    try:
        cls = registry.get(kind, entry.name)
    except PluginNotFound as e:
        raise ConfigError(str(e), file=file, path=f"{where}.name") from None
    except UserError as e:
        raise ConfigError(str(e), file=file, path=f"{where}.name") from None
    with _plugin_code(cls, where, file):  # a validator that raises something other than ValueError
        params = resolve_params(cls, profile, entry.params, where=f"{where}.params", file=file)
    for key in ("arch", "surrogate_arch"):  # the network a plugin builds: known before anything is built
        arch = getattr(params, key, None)
        if isinstance(arch, str):
            from benchmark.models import check_arch

            try:
                check_arch(arch, registry)
            except UserError as e:
                raise ConfigError(str(e), file=file, path=f"{where}.params.{key}") from None
    with _plugin_code(cls, where, file):
        return cls(params, label=entry.label)


@contextmanager
def _plugin_code(plugin: Any, where: str, file: str | None) -> Iterator[None]:
    """Plugin code run while a matrix is resolved (its ``Params`` validators, ``__init__``,
    ``spec()``, ``applies_to()``): a crash there is the plugin's, shown as one line naming it and
    the matrix entry, not as a traceback. A :class:`UserError` it raises passes through."""
    try:
        yield
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as e:  # noqa: BLE001 - third-party code; one_line says where it failed
        from benchmark.registry import one_line

        kind, name = getattr(plugin, "kind", "plugin"), getattr(plugin, "name", type(plugin).__name__)
        module = plugin.__module__ if isinstance(plugin, type) else type(plugin).__module__
        raise ConfigError(f"{kind} {name!r} ({module}) failed: {one_line(e)}", file=file, path=where) from None


def _auto_labels(entries: list[AxisEntry], items: list[Any]) -> None:
    """Entries of one axis that share a plugin name and have no label are told apart in tables by
    their explicit params: ``sl`` and ``sl(arch=resnet18)``."""
    for item, entry in zip(items, entries):
        if item.label is None and entry.params and sum(e.name == entry.name for e in entries) > 1:
            item.label = f"{entry.name}(" + ", ".join(f"{k}={v}" for k, v in entry.params.items()) + ")"


def _check_dataset_keys(d: DatasetSpec, registry: Registry, file: str | None) -> None:
    """A dataset key that is neither the matrix's (``subset``, ``holdout``...) nor the source's own
    (``root``, ``path``...) is named as the user wrote it, ``dataset.subsett``, with both lists."""
    try:
        own = list(registry.get("dataset", d.name).Params.model_fields)
    except Exception:  # noqa: BLE001 - an unknown or broken source: _instantiate says why
        return
    for key in d.params:
        if key not in own:
            allowed = list(dict.fromkeys([k for k in DatasetSpec.model_fields if k != "params"] + own))
            raise ConfigError(f"unknown key {shorten(key)}{did_you_mean(str(key), allowed)} (allowed: {', '.join(allowed)})",
                              file=file, path=f"dataset.{shorten(key, 40).strip(chr(39))}")


def resolve(matrix: Matrix, registry: Registry, file: str | None = None) -> Resolved:
    """Stage 2: plugins looked up, params validated, cross-checks done."""
    prof = matrix.profile
    _check_dataset_keys(matrix.dataset, registry, file)
    ds = _instantiate(registry, "dataset", AxisEntry(name=matrix.dataset.name, params=matrix.dataset.params), prof, "dataset", file)
    axes: dict[str, list[Any]] = {}
    for field, kind in (("attacks", "attack"), ("victims", "victim"), ("defenses", "defense"), ("metrics", "metric")):
        entries = getattr(matrix, field)
        items = [_instantiate(registry, kind, e, prof, f"{field}[{i}]", file) for i, e in enumerate(entries)]
        _auto_labels(entries, items)
        seen: dict[str, int] = {}
        shown: dict[str, int] = {}
        for i, item in enumerate(items):
            with _plugin_code(item, f"{field}[{i}]", file):
                sig = repr(item.spec())
            if sig in seen:
                raise ConfigError(f"duplicate of {field}[{seen[sig]}] ({item.name} with the same params)", file=file, path=f"{field}[{i}]")
            seen[sig] = i
            if item.display in shown:
                raise ConfigError(
                    f"{field}[{shown[item.display]}] and {field}[{i}] would both show as {item.display!r} in tables; give one a `label`",
                    file=file, path=f"{field}[{i}]",
                )
            shown[item.display] = i
        axes[field] = items
    for i, d in enumerate(axes["defenses"]):
        with _plugin_code(d, f"defenses[{i}]", file):  # the plan asks it of every victim
            for v in axes["victims"]:
                d.applies_to(v)
        if (d.needs_holdout or d.stage == "model") and not matrix.dataset.holdout:
            raise ConfigError(
                f"defense {d.name!r} repairs a model with clean data: set dataset.holdout (e.g. 5% of the training set)",
                file=file,
                path=f"defenses[{i}]",
            )
    ex = matrix.executor
    executor = _instantiate(registry, "executor", AxisEntry(name=ex.name, params=ex.params), prof, "executor", file)
    assert prof in PROFILES
    return Resolved(matrix, ds, axes["attacks"], axes["victims"], axes["defenses"], axes["metrics"], file, executor)
