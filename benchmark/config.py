"""``matrix.yaml``: the schema, and its validation in two stages.

Stage 1 checks the matrix's own shape (:class:`Matrix`); stage 2 (:func:`resolve`) looks every
axis entry up in the registry and validates its params with the plugin's own ``Params`` model, the
profile's settings underneath. Every mistake raises :class:`~benchmark.errors.ConfigError` naming
the file, the key path (``attacks[2].params.eps``), the bad value and what is allowed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import ErrorDetails

from benchmark.errors import ConfigError, PluginNotFound, UserError, did_you_mean, shorten
from benchmark.executor import Executor
from benchmark.interfaces import Attack, Defense, Metric, Victim
from benchmark.params import resolve_params, shown_input, union_error
from benchmark.profiles import PROFILES, Profile
from benchmark.registry import Registry
from benchmark.yaml_file import load_yaml_documents, read_text_file

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
    # for data without a test split (an image folder or npz with training images only): the test
    # split carved from the training images, class-balanced; a count or a percentage ("20%")
    test_from_train: int | str = 0
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

    @field_validator("holdout", "test_from_train", mode="before")
    @classmethod
    def _count_or_percent(cls, v: Any, info: ValidationInfo) -> int | str:
        example = "'20%'" if info.field_name == "test_from_train" else "'5%'"
        if isinstance(v, bool) or not isinstance(v, (int, str)):
            raise ValueError(f"{info.field_name} must be a count of images or a percentage like {example} (got {shorten(v)})")  # noqa: TRY004 - pydantic reports ValueErrors
        if isinstance(v, str):
            m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*%\s*", v)
            if not m or not 0 < float(m.group(1)) < 100:
                raise ValueError(f"{info.field_name} must be a count of images or a percentage like {example}")
            return f"{float(m.group(1)):g}%"
        if v < 0:
            raise ValueError(f"{info.field_name} must be >= 0")
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
        shown = "" if e["type"] == "value_error" and "(got " in msg else shown_input(e)
        raise ConfigError(f"{msg}{shown}", file=file, path=_loc(loc)) from None


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


def _check_budget(attack: Any, where: str, file: str | None) -> None:
    """A budget outside the threat model's units (an L-inf radius outside [0, 1] pixel units, a
    negative radius) is the matrix's mistake, refused naming the key, also for a third-party
    attack whose ``Params`` leave ``eps`` unbounded (the release check would let ``eps: 8`` turn
    every image white). A ``budget()`` that fails or returns no Budget is reported by the run."""
    from benchmark.interfaces import Budget
    from benchmark.params import _eps_hint

    try:
        budget = attack.budget()
    except Exception:  # noqa: BLE001 - the runner fails the attack's cells with the reason
        return
    if not isinstance(budget, Budget) or budget.norm == "none":
        return
    if isinstance(budget.eps, bool) or not isinstance(budget.eps, int | float) or math.isnan(budget.eps):
        return  # not a radius: the run's budget check fails the attack's cells with the reason
    if budget.eps < 0 or (budget.norm == "linf" and budget.eps > 1):
        key = "eps" if "eps" in type(attack.params).model_fields else None
        hint = _eps_hint({"loc": ("eps",), "type": "less_than_equal", "ctx": {"le": 1}, "input": budget.eps}) if budget.eps > 1 else ""
        raise ConfigError(f"the attack's budget {budget} is outside its threat model: the radius is in [0, 1] pixel units"
                          f"{hint.replace('; eps is in [0, 1] pixel units', '')}",
                          file=file, path=f"{where}.params.{key}" if key else where)


def _auto_labels(entries: list[AxisEntry], items: list[Any]) -> None:
    """An entry with explicit params and no label is shown in tables with its params,
    ``sl(epochs=8)``, never as the bare name a reader takes for the profile's own settings (and
    entries of one plugin are told apart: ``sl`` and ``sl(arch=resnet18)``)."""
    for item, entry in zip(items, entries):
        if item.label is None and entry.params:
            item.label = f"{entry.name}(" + ", ".join(f"{k}={v}" for k, v in entry.params.items()) + ")"


def _check_dataset_keys(d: DatasetSpec, registry: Registry, file: str | None) -> None:
    """A dataset key that is neither the matrix's (``subset``, ``holdout``...) nor the source's own
    (``root``, ``path``...) is named as the user wrote it, ``dataset.subsett``, with both lists."""
    try:
        fields = registry.get("dataset", d.name).Params.model_fields
    except Exception:  # noqa: BLE001 - an unknown or broken source: _instantiate says why
        return
    own = list(fields) + [f.alias for f in fields.values() if f.alias]
    core = [k for k in DatasetSpec.model_fields if k != "params"]
    for key in d.params:
        if key in core and key not in own:  # flat core keys stay out of params: this one was under `params:`
            raise ConfigError(f"{key!r} is a key of the matrix's dataset entry: write it beside `name`, not under `params:`",
                              file=file, path=f"dataset.params.{key}")
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
    for i, a in enumerate(axes["attacks"]):
        _check_budget(a, f"attacks[{i}]", file)
    for i, d in enumerate(axes["defenses"]):
        with _plugin_code(d, f"defenses[{i}]", file):  # the plan asks it of every victim
            for v in axes["victims"]:
                d.applies_to(v)
        if d.stage == "model" and not matrix.dataset.holdout:
            raise ConfigError(
                f"defense {d.name!r} repairs a model with clean data: set dataset.holdout (e.g. 5% of the training set)",
                file=file,
                path=f"defenses[{i}]",
            )
    ex = matrix.executor
    executor = _instantiate(registry, "executor", AxisEntry(name=ex.name, params=ex.params), prof, "executor", file)
    assert prof in PROFILES
    return Resolved(matrix, ds, axes["attacks"], axes["victims"], axes["defenses"], axes["metrics"], file, executor)
