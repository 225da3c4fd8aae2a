"""Cost before running: what a matrix will take, per device kind (``bench run M --dry-run``).

Each plugin's **work** is the number of images that go through each kind of pass (``train``,
``grad``, ``forward``, ``ssl``) on an architecture, computed from its validated params by the
formulas of ``benchmark/costs.yaml`` (or by a ``cost(ctx)`` method of the plugin, for third
parties); the **rates** of those passes per device kind and architecture are measured by
``benchmarks/`` and kept, with their sources, in the same file (with how much faster each kind runs
in another precision: a matrix's ``precision``). A job's seconds are its images
divided by the rates; the estimate sums them (device-hours) and schedules them on the executor's
parallel slots, attack jobs before the cells that need their poison (wall time).
"""

from __future__ import annotations

import ast
import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Self

import torch
import yaml

from benchmark.calibration import Calibration, calibrate
from benchmark.data.split import SplitError, carved_sizes, check_sizes, holdout_size, make_splits
from benchmark.errors import ConfigError, UserError
from benchmark.interfaces import Metric, RunContext

COSTS = Path(__file__).with_name("costs.yaml")
KINDS = ("train", "grad", "forward", "ssl")


@cache
def load_costs(path: str | None = None) -> dict[str, Any]:
    return yaml.safe_load(Path(path or COSTS).read_text())


# ------------------------------------------------------------------------------ formulas

_FUNCS: dict[str, Callable[..., Any]] = {"min": min, "max": max, "ceil": math.ceil, "floor": math.floor, "abs": abs}
_BIN = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
        ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b, ast.Pow: lambda a, b: a**b}


def evaluate(expr: str, names: dict[str, Any]) -> float:
    """``expr`` (arithmetic on ``names``, ``min``/``max``/``ceil``/``floor``, ``get(name,
    default)``, ``a if c else b``, ``a or b``, ``a == b``, ``a != b``) evaluated safely: no
    attribute, no other call."""

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, bool, str, type(None))):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in names:
                raise KeyError(node.id)
            return names[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
            return _BIN[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in (ast.Eq, ast.NotEq):
            same = ev(node.left) == ev(node.comparators[0])
            return same if isinstance(node.ops[0], ast.Eq) else not same
        if isinstance(node, ast.IfExp):
            return ev(node.body) if ev(node.test) else ev(node.orelse)
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            for v in node.values:
                out = ev(v)
                if out:
                    return out
            return out
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            args = [ev(a) for a in node.args]
            if node.func.id == "get":  # a param set to None (unset) takes the default too
                got = names.get(args[0])
                return got if got is not None else (args[1] if len(args) > 1 else None)
            if node.func.id in _FUNCS:
                return _FUNCS[node.func.id](*args)
        raise ValueError(f"not allowed in a cost formula: {ast.dump(node)[:80]}")

    return float(ev(ast.parse(expr, mode="eval")))


@dataclass
class Work:
    """Images through each (architecture, kind of pass)."""

    passes: dict[tuple[str, str], float] = field(default_factory=dict)

    def add(self, arch: str, kind: str, images: float) -> None:
        if images:
            self.passes[(arch, kind)] = self.passes.get((arch, kind), 0.0) + images

    def __iadd__(self, other: Work) -> Self:
        for (arch, kind), n in other.passes.items():
            self.add(arch, kind, n)
        return self

    def images(self, kind: str) -> float:
        return sum(n for (_, k), n in self.passes.items() if k == kind)


@dataclass
class Sizes:
    """The images a matrix's cells see (training, test, hold-out) and one image's shape: what the per-image rates multiply."""
    n: int  # training images
    n_test: int
    n_holdout: int
    shape: tuple[int, ...] = (3, 32, 32)  # one image, C x H x W: the rates are CIFAR's


def effective_precision(device: str, precision: str) -> str:
    """What a matrix's ``precision`` runs in on a device kind of ``costs.yaml`` (``cuda-…`` or
    ``cpu``): the rule of :attr:`~benchmark.interfaces.RunContext.amp`, not a copy of it."""
    kind = torch.device("cuda" if device.startswith("cuda") else "cpu")
    return "bfloat16" if RunContext(device=kind, precision=precision).amp else "float32"


class CostModel:
    """Work of plugins and seconds of work on a device kind, from ``costs.yaml``."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data = data or load_costs()
        self.assumptions = {k: v["value"] for k, v in self.data.get("assumptions", {}).items()}
        self.unknown: set[str] = set()  # plugins without a cost model
        self.extrapolated: set[str] = set()  # rates used that were not measured

    def work(self, plugin: Any, sizes: Sizes, victim: Any = None, victim_train: float = 0.0) -> Work:
        """The images ``plugin`` (an attack, victim, defense or metric instance) puts through each
        kind of pass; ``victim`` and ``victim_train`` for defenses and metrics (whose passes run
        on the victim's architecture, and multiply its training)."""
        out = Work()
        own = getattr(plugin, "cost", None)
        if callable(own):  # a plugin's own model: {(arch, kind): images}
            for (arch, kind), n in own(sizes).items():
                out.add(arch, kind, n)
            return out
        key = f"{plugin.kind}/{plugin.name}"
        entries = self.data.get("plugins", {}).get(key)
        if entries is None:
            self.unknown.add(key)
            return out
        params = plugin.params.model_dump()
        names = {**self.assumptions, **{k: v for k, v in params.items()}, "n": sizes.n, "n_test": sizes.n_test,
                 "n_holdout": sizes.n_holdout, "victim_train": victim_train}
        if victim is not None and isinstance(getattr(victim.params, "epochs", None), int):
            names["victim_epochs"] = victim.params.epochs
        for e in entries:
            arch = e["arch"]
            arch = (victim.params.arch if victim is not None and hasattr(victim.params, "arch") else "small-cnn") \
                if arch == "victim" else str(params.get(arch, arch))
            try:
                out.add(arch, e["kind"], evaluate(e["images"], names))
            except (ArithmeticError, KeyError, TypeError, ValueError) as err:
                # a formula these params break is reported with the estimate, never a traceback
                self.unknown.add(f"{key} ({e['images']!r}: {type(err).__name__}: {err})")
                return Work()
        return out

    def rate(self, device: str, arch: str, kind: str, threads: int = 1, precision: str = "auto") -> float:
        """Images per second of a ``kind`` pass on ``arch``; ``precision`` is the matrix's (``auto``:
        bf16 autocast on CUDA devices, float32 elsewhere, as :class:`~benchmark.interfaces.RunContext`)."""
        rates = self.data["rates"][device]
        base = arch
        factor = 1.0
        if arch not in rates:  # priced as resnet18 scaled by its relative cost (1 if unknown: timm/...)
            base = "resnet18"
            factor = 1.0 / float(self.data.get("relative_cost", {}).get(arch, 1.0))
            self.extrapolated.add(f"{device}: {arch} = resnet18 / {1 / factor:.2f}")
        entry = rates[base][kind]
        if "measured" not in entry:
            self.extrapolated.add(f"{device}: {base} {kind}")
        scale = threads / rates.get("threads", threads) if device == "cpu" else 1.0
        if scale != 1.0:
            self.extrapolated.add(f"{device}: {threads} threads = {scale:g} x the 1-thread rates")
        return float(entry["rate"]) * factor * scale * self.precision_factor(device, kind, precision)

    def precision_factor(self, device: str, kind: str, precision: str) -> float:
        """How much faster a ``kind`` pass runs in ``precision`` than in the precision the device's
        rates were measured in (``precision_factors`` in costs.yaml); 1 (and noted as extrapolated)
        where that was not measured."""
        rates = self.data["rates"][device]
        want = effective_precision(device, precision)
        have = rates.get("precision", "float32")
        if want == have:
            return 1.0
        factors = rates.get("precision_factors", {}).get(want, {})
        if kind in factors:
            return float(factors[kind])
        self.extrapolated.add(f"{device}: {kind} in {want} priced at its {have} rate (not measured)")
        return 1.0

    def seconds(self, work: Work, device: str, threads: int = 1, precision: str = "auto") -> float:
        return sum(n / self.rate(device, arch, kind, threads, precision) for (arch, kind), n in work.passes.items())


# ------------------------------------------------------------------------------ a plan's cost


@dataclass
class Estimate:
    """Seconds of every pending job per device kind, and what the model could not price."""

    devices: list[str]
    attack_s: dict[str, list[tuple[str, float]]]  # device -> [(poison key, seconds)] of poisons to make
    cell_s: dict[str, list[tuple[str, float]]]  # device -> [(poison key, seconds)] of cells to compute
    unknown: list[str]
    extrapolated: list[str]
    slots: int
    sizes: Sizes
    precision: str = "auto"  # the matrix's

    def poison_hours(self, device: str) -> float:
        return sum(s for _, s in self.attack_s[device]) / 3600

    def cell_hours(self, device: str) -> float:
        return sum(s for _, s in self.cell_s[device]) / 3600

    def device_hours(self, device: str) -> float:
        return self.poison_hours(device) + self.cell_hours(device)

    def wall_hours(self, device: str, slots: int | None = None) -> float:
        """List scheduling on ``slots`` devices: attack jobs first (longest first), each cell once
        its poison exists."""
        slots = max(1, slots or self.slots)
        ready_at = {key: 0.0 for key, _ in self.cell_s[device]}
        free = [0.0] * slots
        heapq.heapify(free)
        for key, s in sorted(self.attack_s[device], key=lambda t: -t[1]):
            start = heapq.heappop(free)
            ready_at[key] = start + s
            heapq.heappush(free, start + s)
        end = max(free) if self.attack_s[device] else 0.0
        for key, s in sorted(self.cell_s[device], key=lambda t: ready_at.get(t[0], 0.0)):
            start = max(heapq.heappop(free), ready_at.get(key, 0.0))
            heapq.heappush(free, start + s)
            end = max(end, start + s)
        return end / 3600


def dataset_sizes(resolved: Any, model: CostModel) -> Sizes:
    """Training, test and hold-out sizes: from ``costs.yaml`` for known datasets, else by loading it."""
    d = resolved.matrix.dataset
    known = model.data.get("datasets", {}).get(resolved.dataset.name)
    shape: tuple[int, ...] = (3, 32, 32)
    if known:
        train, test = int(known["train"]), int(known["test"])
        shape = tuple(known.get("shape", shape))
    else:
        tr, te = resolved.dataset.load()
        train, test, shape = len(tr), len(te), tuple(tr.x.shape[1:])
    try:  # what the run would refuse, the dry-run refuses (costs.yaml sizes need no loading; loaded data, class balance too)
        check_sizes(train, test, subset=d.subset, test_subset=d.test_subset, holdout=d.holdout, test_from_train=d.test_from_train,
                    classes=int(known.get("classes", 0)) if known else 0)
        if not known:
            make_splits(tr, te, subset=d.subset, test_subset=d.test_subset, holdout=d.holdout,
                        test_from_train=d.test_from_train, seed=d.split_seed)
    except SplitError as e:
        raise ConfigError(f"dataset {d.display!r}: {e}", file=resolved.file, path=f"dataset.{e.key}") from None
    train, test = carved_sizes(train, test, d.test_from_train)
    # as benchmark.data.split.make_splits: a percentage is of the subset when there is one (the
    # hold-out is then drawn outside it), else of the training set, which it leaves
    if d.subset:
        n = d.subset
        holdout = holdout_size(d.holdout, n)
    else:
        holdout = holdout_size(d.holdout, train)
        n = train - holdout
    return Sizes(n=n, n_test=d.test_subset or test, n_holdout=holdout, shape=shape)


def longest_poison_first(resolved: Any, jobs: list[Any]) -> list[int]:
    """Indices of ``jobs`` (a plan's attack jobs), the most expensive poison first by this model
    (CPU rates: a ranking, not a time); attacks it cannot price keep their matrix order after those
    it can, and so does everything when it cannot load. The local executor's workers start on it
    (:meth:`benchmark.runner.Runner.pending`): each ranks alike, from the same model and plan."""
    try:
        model = CostModel()
        sizes = dataset_sizes(resolved, model)
        cost = [model.seconds(model.work(job.attack, sizes), "cpu") for job in jobs]
    except Exception:  # noqa: BLE001 - an order, never a reason to fail a run
        return list(range(len(jobs)))
    unknown = {j for j, job in enumerate(jobs) if f"{job.attack.kind}/{job.attack.name}" in model.unknown}
    return sorted(range(len(jobs)), key=lambda j: (j in unknown, -cost[j], j))


def estimate(plan: Any, pending_cells: list[Any], pending_poisons: set[str], *, slots: int = 1,
             devices: tuple[str, ...] | None = None, model: CostModel | None = None) -> Estimate:
    """The cost of the poisons in ``pending_poisons`` and of ``pending_cells`` (n/a cells cost
    nothing) on each device kind. Pending cells that differ only in defenses that leave the
    victim's training alone (``none``, the model-stage ones) pay for one training of it, as the
    runner trains it once; every cell pays again when a metric observes the training."""
    model = model or CostModel()
    r = plan.resolved
    sizes = dataset_sizes(r, model)
    devices = devices or tuple(model.data["rates"])
    threads, precision = r.matrix.threads, r.matrix.precision
    attack_work = {job.key: model.work(job.attack, sizes) for job in plan.jobs if job.key in pending_poisons}
    victim_work: dict[int, Work] = {}
    cell_work: list[tuple[str, Work]] = []
    observed = any(type(m).observer is not Metric.observer for m in r.metrics)  # no reuse then (see the runner)
    trained: set[tuple[str, int, int]] = set()  # victims trained once for cells that differ only in such defenses
    for cell in pending_cells:
        if not cell.defense.applies_to(cell.victim):
            continue
        vid = id(cell.victim)
        if vid not in victim_work:
            victim_work[vid] = model.work(cell.victim, sizes)
        w = Work()
        shared = (cell.job.key, vid, cell.seed)
        reusable = not observed and cell.defense.leaves_training_alone()
        if not (reusable and shared in trained):
            w += victim_work[vid]
        if reusable:
            trained.add(shared)
        vtrain = victim_work[vid].images("train")
        w += model.work(cell.defense, sizes, victim=cell.victim, victim_train=vtrain)
        for m in r.metrics:
            w += model.work(m, sizes, victim=cell.victim, victim_train=vtrain)
        cell_work.append((cell.job.key, w))
    attack_s = {dev: [(k, model.seconds(w, dev, threads, precision)) for k, w in attack_work.items()] for dev in devices}
    cell_s = {dev: [(k, model.seconds(w, dev, threads, precision)) for k, w in cell_work] for dev in devices}
    return Estimate(list(devices), attack_s, cell_s, sorted(model.unknown), sorted(model.extrapolated), slots, sizes, precision)


def priced(plan: Any, pending_cells: list[Any], pending_poisons: set[str], *, slots: int = 1, here: bool = False) -> str:
    """The dry-run's cost table of what is pending; ``here``: the jobs run on this machine's CPU, so
    a ``cpu (here)`` row scales the ``cpu`` row by this CPU's probe (:mod:`benchmark.calibration`;
    no probe when nothing is left to price)."""
    model = CostModel()
    est = estimate(plan, pending_cells, pending_poisons, slots=slots, model=model)
    work = any(est.device_hours(dev) for dev in est.devices)
    return render(est, model, calibrate(model.data) if here and work else None)


def _hours(h: float) -> str:
    if h < 1 / 60:
        return f"{h * 3600:.0f} s"
    if h < 1:
        return f"{h * 60:.1f} min"
    return f"{h:,.1f} h" if h < 100 else f"{h:,.0f} h"


def render(est: Estimate, model: CostModel | None = None, here: Calibration | None = None) -> str:
    """The estimate as a table, a row per device kind; ``here`` adds a ``cpu (here)`` row: the
    ``cpu`` row times this CPU's :class:`~benchmark.calibration.Calibration` factor."""
    model = model or CostModel()
    rates = model.data["rates"]
    lines = [f"cost estimate (benchmark/costs.yaml; {est.sizes.n:,} training / {est.sizes.n_test:,} test images):"]
    if est.sizes.shape != (3, 32, 32):  # the rates do not scale with the image: say so, not a guess
        size = "x".join(map(str, est.sizes.shape))
        less = math.prod(est.sizes.shape) < 3 * 32 * 32
        lines[0] = (lines[0][:-1] + f", each priced as a 3x32x32 image (the rates are CIFAR's); these are {size}: "
                    f"expect {'less' if less else 'more'} time than priced:")
    head = f"  {'device':<11} {'poisons':>10} {'cells':>10} {'device-hours':>13} {'wall, 1 device':>15}"
    if est.slots > 1:
        head += f"  {f'wall, {est.slots} in parallel':>20}"
    lines.append(head)
    rows = [(dev, dev, 1.0) for dev in est.devices]
    if here is not None and "cpu" in est.devices:
        rows.insert(est.devices.index("cpu") + 1, ("cpu (here)", "cpu", here.factor))
    for name, dev, k in rows:
        a, c = k * est.poison_hours(dev), k * est.cell_hours(dev)
        row = f"  {name:<11} {_hours(a):>10} {_hours(c):>10} {_hours(a + c):>13} {_hours(k * est.wall_hours(dev, 1)):>15}"
        if est.slots > 1:
            row += f"  {_hours(k * est.wall_hours(dev)):>20}"
        lines.append(row)
    for dev in est.devices:
        lines.append(f"  {dev}: {rates[dev].get('device', '')}; priced in {effective_precision(dev, est.precision)}")
        if dev == "cpu" and here is not None:
            lines.append(f"  {here.describe()}")
    if est.extrapolated:
        lines.append("  extrapolated rates (the rest measured): " + "; ".join(est.extrapolated))
    if est.unknown:
        lines.append(f"  no cost model (left out of the totals): {', '.join(est.unknown)}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ a matrix file's cost


@dataclass
class FileEstimate:
    """Every document of a matrix file priced from scratch: poisons shared between documents (same
    key, or the same poison under another key, :mod:`benchmark.same_poison`: copied) are counted once."""

    documents: int
    jobs: int
    cells: int
    na_cells: int
    estimate: Estimate
    poison_by_attack: dict[str, dict[str, float]]  # attack label -> device -> seconds


def estimate_file(path: str | Path, model: CostModel | None = None) -> FileEstimate:
    """The cost of running the matrix file ``path`` into an empty results directory."""
    from benchmark.config import load_matrices, resolve
    from benchmark.plan import make_plan
    from benchmark.registry import get_registry
    from benchmark.same_poison import view_key

    model = model or CostModel()
    parts: list[Estimate] = []
    seen: set[str] = set()
    jobs = cells = na = 0
    by_attack: dict[str, dict[str, float]] = {}
    matrices = load_matrices(path)
    for i, matrix in enumerate(matrices):
        plan = make_plan(resolve(matrix, get_registry(), file=f"{path} (document {i + 1})"))
        live = [c for c in plan.cells if c.defense.applies_to(c.victim)]
        views = {c.job.key: view_key(c.job.spec) or c.job.key for c in live}  # a copy is not made again
        need = {k for k, v in views.items() if v not in seen}
        seen |= set(views.values())
        jobs += len(need)
        cells += len(plan.cells)
        na += len(plan.cells) - len(live)
        est = estimate(plan, live, need, model=model)
        parts.append(est)
        label = {j.key: j.attack.display for j in plan.jobs}
        for dev in est.devices:
            for key, s in est.attack_s[dev]:
                by_attack.setdefault(label[key], {})[dev] = s
    first = parts[0]
    merged = Estimate(first.devices, {d: [x for p in parts for x in p.attack_s[d]] for d in first.devices},
                      {d: [x for p in parts for x in p.cell_s[d]] for d in first.devices},
                      sorted(model.unknown), sorted(model.extrapolated), 1, first.sizes)
    return FileEstimate(len(matrices), jobs, cells, na, merged, by_attack)


def render_markdown(fe: FileEstimate, anchor: str | None = None, model: CostModel | None = None) -> str:
    """Markdown tables of :func:`estimate_file`: totals per device kind, then generation time per
    attack next to ``anchor`` (an entry of ``anchors:`` in ``costs.yaml``: published figures)."""
    model = model or CostModel()
    est = fe.estimate
    rates = model.data["rates"]
    lines = ["| device | poisons | cells | device-hours |", "| --- | ---: | ---: | ---: |"]
    for dev in est.devices:
        a, c = est.poison_hours(dev), est.cell_hours(dev)
        lines.append(f"| {dev} | {_hours(a)} | {_hours(c)} | {_hours(a + c)} |")
    lines += ["", f"_{fe.documents} {'matrix' if fe.documents == 1 else 'matrices'}, {fe.jobs} poisons, {fe.cells:,} cells"
              + (f" ({fe.na_cells:,} n/a, free)" if fe.na_cells else "") + "; "
              f"{est.sizes.n:,} training / {est.sizes.n_test:,} test images. "
              + " ".join(f"{dev}: {rates[dev].get('device', '')}." for dev in est.devices) + "_"]
    if anchor:
        a = model.data.get("anchors", {}).get(anchor)
        if a is None:
            raise UserError(f"no anchor {anchor!r} in benchmark/costs.yaml (anchors: {', '.join(model.data.get('anchors', {}))})")
        devs = est.devices
        lines += ["", "| attack | " + " | ".join(f"uebench, {d}" for d in devs) + f" | {a['label']} |",
                  "| --- | " + " | ".join("---:" for _ in devs) + " | ---: |"]
        for attack, hours in a["hours"].items():
            name = attack.split(" ")[0]
            ours = fe.poison_by_attack.get(name, {})
            cells_ = [_hours(ours[d] / 3600) if d in ours else "–" for d in devs]
            lines.append(f"| {attack} | " + " | ".join(cells_) + f" | {_hours(float(hours))} |")
        lines += ["", f"_{a['source']}_"]
    notes = []
    if est.extrapolated:
        notes.append("extrapolated rates (the rest measured): " + "; ".join(est.extrapolated))
    if est.unknown:
        notes.append("no cost model (left out of the totals): " + ", ".join(est.unknown))
    if notes:
        lines += ["", "_" + ". ".join(notes) + "._"]
    return "\n".join(lines) + "\n"
