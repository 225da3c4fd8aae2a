"""``bench audit RESULTS``: recompute sampled cells from scratch and compare them with their records.

Anyone can check a committed record instead of trusting it: the audit picks ``K`` cells
deterministically from a seed (``--seed-from-commit``: the git commit of the results, so a reader
reproduces the choice), skips those whose recorded cost does not fit the budget, rebuilds each
cell's one-cell matrix from its record (dataset, attack, victim, defense and metric specs, seeds,
profile, torch threads), checks that the rebuilt cell has the record's key, computes it (poison
included) in a temporary results directory and compares every metric with the recorded value.

Each metric plugin declares its tolerance per output (:attr:`benchmark.interfaces.Metric.audit_tolerance`,
display units: accuracy in points), set from measured reruns on the 2-core CPU machine
(benchmarks/README.md, "Audit tolerance"): a same-seed rerun at the same thread count is identical
there (``--strict`` asks for that); changing the thread count (1 vs 2, a proxy for another CPU's
kernels) changes float reductions, and training amplifies them. An output whose metric declares no
tolerance must be recomputed identically.

A trained poison regenerated on another CPU model (or one of the same name whose torch dispatches
to another instruction set: AVX-512 and AVX2 kernels round differently) is, in general, *another
poison*: its float reductions round otherwise, a threshold stopping test (EM, PUE: stop once the
accuracy on x+δ passes a bar) can stop one outer iteration earlier or later, and even when it stops
alike the bytes differ. Its cells can move far beyond any kernel tolerance: 5 to 9 points where the
stopping test flipped, and 20 points for PUE × ``ueraser-lite`` with the same four outer iterations on
an Intel Xeon (AVX-512) against the AMD EPYC (AVX2) record (benchmarks/README.md). The tolerances
above were measured on one poison, so such a cell cannot be checked on this CPU: when the recomputed
poison's outcomes (iterations run, stopped or not, the images' digest ``x_sha256`` where the record
has one) differ from the record's and the record was computed on another CPU model, its values are
shown as ``another poison``, neither passed nor failed, and the audit draws the next cell in its
order in their place (within what is left of the budget). The poison is regenerated before the
victim is trained, so such a cell costs its poison only (its victim's recorded cost goes back to the
budget). On the record's own CPU model, or under ``--strict``, another poison is a failure like any
other difference.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.errors import UserError, shorten
from benchmark.rebuild import data_dirs, rebuild
from benchmark.records import PERCENT_METRICS, poison_outcomes

if TYPE_CHECKING:
    from benchmark.interfaces import Metric
    from benchmark.runner import Runner


@dataclass
class Candidate:
    """A committed record the audit may recompute, with its recorded cost: seconds of poison generation and of the cell."""
    record: dict[str, Any]
    poison_s: float
    cell_s: float
    unpriced: str = ""  # what the poison's generation reused at a cost the record does not name, or ""

    @property
    def label(self) -> str:
        r = self.record
        return f"{r['attack']} × {r['victim']} × {r['defense']} (seed {r['seed']})"

    @property
    def poison(self) -> str:
        return str((self.record.get("spec") or {}).get("poison", ""))


@dataclass
class Comparison:
    """One metric value of one recomputed cell: the record's, the recomputation's, and the tolerance between them."""
    cell: str
    key: str
    metric: str
    recorded: float | None
    recomputed: float | None
    tolerance: float
    unverifiable: str = ""  # why this value cannot be checked on this machine (another poison), or ""

    @property
    def diff(self) -> float | None:
        if self.recorded is None or self.recomputed is None:
            return None
        return self.recomputed - self.recorded

    @property
    def identical(self) -> bool:
        return self.recorded == self.recomputed or (self.recorded != self.recorded and self.recomputed != self.recomputed)

    @property
    def ok(self) -> bool:
        d = self.diff
        if self.identical or self.unverifiable:
            return True
        if d is None:
            return False
        if math.isnan(d):  # NaN on both sides (an abstaining certificate) agrees
            return self.recorded != self.recorded and self.recomputed != self.recomputed
        return abs(d) <= self.tolerance + 1e-9


@dataclass
class AuditResult:
    """What ``bench audit`` did: its seed, the cells it chose or skipped (and why), every comparison and error."""
    seed: str
    chosen: list[Candidate]
    skipped: list[tuple[Candidate, str]]
    comparisons: list[Comparison] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    changes: dict[str, list[str]] = field(default_factory=dict)  # cell label -> what the recomputation did differently
    unverifiable: dict[str, str] = field(default_factory=dict)  # cell label -> why it cannot be checked here
    wall_s: float = 0.0

    @property
    def checked_nothing(self) -> bool:
        """No cell was drawn (no finished record, ``--cells 0``), or every drawn one was skipped
        (another device, over the budget): no audit. (Cells whose poison came out otherwise on this
        CPU, "another poison", are reported, and the audit draws others in their place.)"""
        drawn = bool(self.chosen) or bool(self.skipped)
        return not drawn or (bool(self.skipped) and not any(not c.unverifiable for c in self.comparisons))

    @property
    def ok(self) -> bool:
        return not self.errors and all(c.ok for c in self.comparisons) and not self.checked_nothing


def commit_seed(results: str | Path) -> str:
    """The git commit (HEAD) of the checkout holding ``results``: the audit's reproducible seed."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(results), capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError) as e:
        raise UserError(f"--seed-from-commit: cannot run git in {str(results)!r} ({e}); give --seed instead") from None
    if out.returncode != 0 or not out.stdout.strip():
        raise UserError(f"--seed-from-commit: {str(results)!r} is not inside a git checkout; give --seed instead")
    return out.stdout.strip()


def _damaged(r: dict[str, Any]) -> str:
    """Why a finished record's fields that the audit reads are not what the runner writes (a hand
    edit, a truncated merge), or ``""``: such a record is listed as unauditable, not a crash."""
    for k in ("spec", "timing", "poison_meta", "provenance", "numerics"):
        if r.get(k) is not None and not isinstance(r[k], dict):
            return f"its {k} is a {type(r[k]).__name__}, not a mapping"
    timing, meta = r.get("timing") or {}, r.get("poison_meta") or {}
    numbers = [("wall_s", r.get("wall_s")), ("timing.victim_s", timing.get("victim_s")), ("poison_meta.wall_s", meta.get("wall_s"))]
    for what, items in (("timing.artifacts", timing.get("artifacts")), ("poison_meta.reads", meta.get("reads"))):
        if items is not None and not (isinstance(items, list) and all(isinstance(a, dict) for a in items)):
            return f"its {what} is not a list of mappings"
        numbers += [(f"{what}[].created_s", a.get("created_s")) for a in items or []]
    for what, v in numbers:
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            return f"its {what} is not a number ({shorten(v)})"
    return ""


def candidates(records: list[dict[str, Any]]) -> tuple[list[Candidate], list[tuple[dict[str, Any], str]]]:
    """Records that can be audited (finished, with every spec the rebuild needs), and why the others cannot."""
    ok, bad = [], []
    damaged = {id(r): why for r in records if r.get("status") == "ok" and (why := _damaged(r))}
    bad += [(r, f"a damaged record: {damaged[id(r)]}") for r in records if id(r) in damaged]
    records = [r for r in records if id(r) not in damaged]
    fits = _training_costs(records)
    trained = {r["key"]: _victim_s(r) for r in records if r.get("status") == "ok" and r.get("key")}
    for r in sorted(records, key=lambda r: str(r.get("key"))):
        if r.get("status") != "ok":
            continue
        if not r.get("key"):
            bad.append((r, "the record names no cell key (a copy or a hand edit)"))
            continue
        missing = [k for k in ("dataset_spec", "dataset_source", "attack_spec", "victim_spec", "defense_spec", "metric_specs") if not r.get(k)]
        if missing:
            bad.append((r, f"the record lacks {', '.join(missing)} (written before records kept them)"))
            continue
        cell_s = float(r.get("wall_s") or 0.0)
        timing = r.get("timing") or {}
        if timing.get("victim_from") in trained:  # the audit trains the victim the cell named there trained
            cell_s += trained[timing["victim_from"]]
        elif timing.get("victim_reused"):  # a record from before victim_from: infer that cell
            cell_s += fits.get(_training_of(r), 0.0)
        # and makes again what the cell found made by others (UD's clean reference, a shared surrogate)
        cell_s += sum(float(a.get("created_s") or 0.0) for a in timing.get("artifacts", []))
        poison_s, unpriced = _poison_cost(r.get("poison_meta") or {})
        ok.append(Candidate(r, poison_s, cell_s, unpriced))
    return ok, bad


def _poison_cost(meta: dict[str, Any]) -> tuple[float, str]:
    """A poison's recorded cost: its generation's wall time plus what it found made by other jobs
    (``reads``: CP-C's class-wise delta, a cached reference classifier), which regenerating it alone
    makes again. A poison from before ``reads`` that says it reused something (a true ``*_cached``
    flag) has a cost nobody recorded: the flags, to name it."""
    reads = meta.get("reads")
    cost = float(meta.get("wall_s") or 0.0) + sum(float(a.get("created_s") or 0.0) for a in reads or [] if isinstance(a, dict))
    flags = [k for k, v in sorted(meta.items()) if "cached" in k and v is True]
    return cost, ", ".join(flags) if flags and reads is None else ""


def _training_of(r: dict[str, Any]) -> str:
    """What a victim's training depends on: the poison (attack, its seed, the data), the victim and the seed."""
    return json.dumps([r.get(k) for k in ("dataset_spec", "attack_spec", "attack_seed", "victim_spec", "seed")], sort_keys=True)


def _victim_s(r: dict[str, Any]) -> float:
    """The recorded seconds of a record's victim training (its whole wall time without a timing block)."""
    t = r.get("timing") or {}
    return float(t["victim_s"] if t.get("victim_s") is not None else r.get("wall_s") or 0.0)


def _training_costs(records: list[dict[str, Any]]) -> dict[str, float]:
    """For records written before ``timing.victim_from`` (the runner now names the cell whose victim
    a cell reused): recorded seconds of each victim training, from the cells that trained it rather
    than reused it (a cell that reused a sibling's victim recorded only its own repair and metrics;
    auditing it alone trains the victim again). Siblings are the cells whose defense leaves training
    alone: ``none`` and the model-stage ones (their timing has ``repair_s``); a data- or train-stage
    defense trains another victim."""
    out: dict[str, float] = {}
    for r in records:
        t = r.get("timing") or {}
        if r.get("status") != "ok" or t.get("victim_reused"):
            continue
        if (r.get("defense_spec") or {}).get("name") != "none" and "repair_s" not in t:
            continue
        k = _training_of(r)
        out[k] = max(out.get(k, 0.0), _victim_s(r))
    return out


def _device_type(rec: dict[str, Any]) -> str:
    return str((rec.get("provenance") or {}).get("device") or "cpu").split(":")[0]


def _cost(c: Candidate, poisons: set[str]) -> float:
    """A cell's recorded cost: the cell, plus its poison's generation unless ``poisons`` has paid it."""
    return c.cell_s + (0.0 if c.poison in poisons else c.poison_s)


def choose(cands: list[Candidate], k: int, budget_s: float, seed: str, device: str = "cpu",
           poisons: set[str] | None = None) -> tuple[list[Candidate], list[tuple[Candidate, str]]]:
    """Up to ``k`` cells in an order drawn from ``seed``, each kept if its recorded cost (its poison's
    generation, once per poison, plus the cell) still fits in ``budget_s``. A cell recorded on another
    kind of device (a GPU record in a CPU audit), or whose poison reused an artifact of unrecorded
    cost (:attr:`Candidate.unpriced`), has no known cost here and is skipped. ``poisons``:
    the poisons already paid for (cells chosen earlier); the set is updated with those chosen now."""
    order = sorted(cands, key=lambda c: hashlib.sha256(f"{seed}:{c.record['key']}".encode()).hexdigest())
    chosen: list[Candidate] = []
    skipped: list[tuple[Candidate, str]] = []
    spent = 0.0
    poisons = set() if poisons is None else poisons
    here = device.split(":")[0]
    for c in order:
        if len(chosen) >= k:
            break
        if _device_type(c.record) != here:
            skipped.append((c, f"recorded on {_device_type(c.record)}: its cost on {here} is unknown (audit with --device {_device_type(c.record)})"))
            continue
        if c.unpriced and c.poison not in poisons:
            why = (f"its poison reused an artifact made by another job ({c.unpriced}) whose cost the record does not "
                   f"name (written before poisons kept their reads): audit it by hand with a larger --budget")
            skipped.append((c, why))
            continue
        cost = _cost(c, poisons)
        if spent + cost > budget_s:
            skipped.append((c, f"recorded cost {cost / 60:.1f} min does not fit the {(budget_s - spent) / 60:.1f} min left"))
            continue
        chosen.append(c)
        spent += cost
        poisons.add(c.poison)
    return chosen, skipped


def tolerance(key: str, metric: Metric | None, strict: bool = False) -> float:
    """What the audit accepts for the output ``key`` of ``metric`` (a :class:`~benchmark.interfaces.Metric`,
    or ``None`` when no installed metric made it): its declared tolerance, 0 under ``--strict``."""
    return 0.0 if strict or metric is None else float(metric.tolerance_of(key))


def _display(metric: str, v: Any) -> float | None:
    if v is None:
        return None
    return float(v) * (100.0 if metric in PERCENT_METRICS else 1.0)


def _scalars(meta: dict[str, Any]) -> dict[str, Any]:
    """A poison's discrete outcomes (iterations run, stopped or not): what a float drift can flip."""
    out = poison_outcomes(meta)
    digest = out.get("x_sha256")
    if isinstance(digest, str):
        out["x_sha256"] = digest[:12]  # enough to tell two generations apart on one line
    return out


def changes(recorded: dict[str, Any], recomputed: dict[str, Any]) -> list[str]:
    """Where a recomputation ran differently from its record: the machine and library numerics, and
    the poison's discrete outcomes (``poison_meta``'s integers, flags and strings: a trained poison
    whose stopping test flips one way on one CPU and the other way on another is another poison).
    Only fields the record has: a record that predates a field (``x_sha256``) says nothing of it."""
    out = []
    for what, a, b in (("numerics", recorded.get("numerics") or {}, recomputed.get("numerics") or {}),
                       ("poison", _scalars(recorded.get("poison_meta") or {}), _scalars(recomputed.get("poison_meta") or {}))):
        out += [f"{what} {k}: {a[k]!r} -> {b.get(k)!r}" for k in sorted(a) if a[k] != b.get(k)]
    return out


def _machine(rec: dict[str, Any]) -> str:
    """The CPU or GPU model a record was computed on, with the instruction set torch dispatched its CPU
    kernels to (``AMD EPYC (AVX512)``): two EPYC generations share a name, but AVX-512 and AVX2 kernels
    round differently, which is what flips a stopping test. ``""`` for a record without a ``numerics``
    block (older ones name only the architecture, ``x86_64``: not enough to call a machine another)."""
    numerics = rec.get("numerics") or {}
    name, isa = str(numerics.get("device_name") or ""), numerics.get("cpu_capability")
    return f"{name} ({isa})" if name and isa else name


def another_poison(recorded: dict[str, Any], recomputed: dict[str, Any]) -> str:
    """Why ``recomputed`` cannot check ``recorded`` (``""`` when it can): its poison came out otherwise
    (a stopping test flipped, or only its bytes differ) on another CPU model than the record's."""
    a, b = _scalars(recorded.get("poison_meta") or {}), _scalars(recomputed.get("poison_meta") or {})
    flipped = [f"{k} {a[k]!r} -> {b.get(k)!r}" for k in sorted(a) if a[k] != b.get(k)]
    there, here = _machine(recorded), _machine(recomputed)
    if not flipped or not there or there == here:
        return ""
    return (f"another poison: its generation ran otherwise on this {here} ({', '.join(flipped)}) than on the "
            f"record's {there}; audit it on a {there}")


def regenerated_poison(runner: Runner, rec: dict[str, Any]) -> dict[str, Any]:
    """Regenerate (or read from ``runner``'s cache) the poison of ``rec``'s cell, before its victim is
    trained: what :func:`changes` and :func:`another_poison` compare, shaped as a record (``poison_meta``
    and the ``numerics`` of the machine that made it)."""
    key = (rec.get("spec") or {}).get("poison")
    job = next((j for j in runner.plan.jobs if j.key == key), None)
    if job is None:
        raise RuntimeError(f"the rebuilt matrix does not make poison {key!r}")
    from benchmark.provenance import numerics

    meta = runner.poison(job).meta  # a poison cached by older code (``--keep``) names no numerics: this machine's
    return {"poison_meta": meta, "numerics": meta.get("numerics") or numerics(runner.device, runner.r.matrix.precision)}


def audit(results: str | Path, *, cells: int, budget_min: float, seed: str, threads: int | None = None,
          device: str = "cpu", keep: str | Path | None = None, data: str | None = None, strict: bool = False,
          log: Callable[[str], None] = print) -> AuditResult:
    """Recompute up to ``cells`` records of ``results`` within ``budget_min`` minutes of recorded cost."""
    from benchmark.records import load_records
    from benchmark.runner import Runner

    cands, unusable = candidates(load_records(results))
    paid: set[str] = set()
    chosen, skipped = choose(cands, cells, budget_min * 60, seed, device, paid)
    res = AuditResult(seed, list(chosen), skipped)
    spent, seen_poisons = 0.0, set[str]()
    for c in chosen:
        spent += _cost(c, seen_poisons)
        seen_poisons.add(c.poison)
    for r, why in unusable:  # read by tables and claims, checkable by no audit: the audit does not pass over them
        res.errors.append(f"{r.get('attack')} × {r.get('victim')} × {r.get('defense')} (seed {r.get('seed')}) "
                          f"[{r.get('key')}]: cannot be audited: {why}")
        log(f"cannot audit {r.get('key')}: {why}")
    t0 = time.perf_counter()
    queue = list(chosen)
    with tempfile.TemporaryDirectory(prefix="uebench-audit-") as tmp:
        root = Path(keep) if keep else Path(tmp)
        while queue:
            c = queue.pop(0)
            rec = c.record
            try:
                resolved = rebuild(rec, threads=threads, device=device, data=data_dirs(data))
            except UserError as e:
                res.errors.append(f"{c.label} [{rec['key']}]: {e}")
                log(f"cannot rebuild {c.label}: {e}")
                continue
            log(f"recomputing {c.label} [{rec['key']}] (recorded: poison {c.poison_s:.0f} s + cell {c.cell_s:.0f} s)")
            runner = Runner(resolved, root, progress=False, log=log)
            try:  # the poison first: another CPU's poison makes the victim's training pointless
                made = regenerated_poison(runner, rec)
            except Exception as e:  # noqa: BLE001 - a broken attack plugin: an audit error, as a failed cell would be
                res.errors.append(f"{c.label} [{rec['key']}]: its poison could not be regenerated: {e}")
                continue
            if diffs := changes(rec, made):
                res.changes[c.label] = diffs
            why = "" if strict else another_poison(rec, made)
            if why:  # not checkable here: skip its victim, draw the next cell in the order in its place, if it fits
                res.unverifiable[c.label] = why
                log(f"{c.label}: {why}; its victim not trained, drawing another cell")
                spent -= c.cell_s  # not spent
                seen = {x.record["key"] for x in res.chosen} | {x.record["key"] for x, _ in res.skipped}
                before = set(paid)
                more, _ = choose([x for x in cands if x.record["key"] not in seen], 1, budget_min * 60 - spent, seed, device, paid)
                for m in more:
                    spent += _cost(m, before)
                res.chosen += more
                queue += more
                new: dict[str, Any] = {}
            else:
                runner.run()
                new = runner.store.get(rec["key"]) or {}
                if new.get("status") != "ok":
                    res.errors.append(f"{c.label} [{rec['key']}]: recomputation {new.get('status', 'missing')}: {new.get('error')}")
                    continue
            plugins = {m.name: m for m in resolved.metrics}
            units = {**(rec.get("metric_units") or {}), **(new.get("metric_units") or {})}
            for metric, v in rec.get("metrics", {}).items():
                made_by = plugins.get((units.get(metric) or {}).get("metric", ""))
                res.comparisons.append(Comparison(c.label, rec["key"], metric, _display(metric, v),
                                                  _display(metric, new.get("metrics", {}).get(metric)), tolerance(metric, made_by, strict), why))
    res.wall_s = time.perf_counter() - t0
    return res


def render(res: AuditResult) -> str:
    from tabulate import tabulate

    only = f", {len(res.unverifiable)} poisons regenerated only (another poison)" if res.unverifiable else ""
    lines = [f"audit seed {res.seed}: {len(res.chosen) - len(res.unverifiable)} cells recomputed{only} in {res.wall_s / 60:.1f} min"]
    for c, why in res.skipped:
        lines.append(f"  skipped {c.label}: {why}")
    if res.comparisons:
        rows = [[c.cell, c.metric, "–" if c.recorded is None else f"{c.recorded:.4g}", "–" if c.recomputed is None else f"{c.recomputed:.4g}",
                 "–" if c.diff is None else f"{c.diff:+.3g}", f"±{c.tolerance:g}",
                 "another poison" if c.unverifiable else "identical" if c.identical else ("within" if c.ok else "DIFFERS")]
                for c in res.comparisons]
        lines.append(tabulate(rows, headers=["cell", "metric", "recorded", "recomputed", "diff", "tolerance", ""]))
    for cell, diffs in res.changes.items():
        lines.append(f"  {cell} ran differently from its record: " + "; ".join(diffs))
    for cell, why in res.unverifiable.items():
        lines.append(f"  {cell} not checked here, {why}")
    lines += [f"  ERROR {e}" for e in res.errors]
    bad = sum(not c.ok for c in res.comparisons)
    checked = [c for c in res.comparisons if not c.unverifiable]
    same = sum(c.identical for c in checked)
    lines.append(f"{same} of {len(checked)} values identical to the record"
                 + (f" ({len(res.unverifiable)} cells not checkable on this CPU: another poison)" if res.unverifiable else ""))
    if res.checked_nothing and not res.errors:
        lines.append("audit FAILED: it checked nothing (every drawn cell was skipped, see above)" if res.skipped
                     else "audit FAILED: it checked nothing (no finished record to draw, or --cells 0)")
    else:
        lines.append("audit passed" if res.ok else f"audit FAILED: {bad} values beyond tolerance, {len(res.errors)} cells not recomputed")
    return "\n".join(lines)


def to_json(res: AuditResult) -> str:
    return json.dumps({
        "seed": res.seed, "wall_s": round(res.wall_s, 1), "ok": res.ok, "errors": res.errors, "changes": res.changes, "unverifiable": res.unverifiable,
        "comparisons": [{k: None if isinstance(v, float) and math.isnan(v) else v  # strict JSON: NaN (an abstaining certificate) as null
                         for k, v in {**c.__dict__, "diff": c.diff, "identical": c.identical, "ok": c.ok}.items()} for c in res.comparisons],
        "chosen": [{"key": c.record["key"], "cell": c.label, "recorded_cost_s": c.poison_s + c.cell_s} for c in res.chosen],
    }, indent=2)
