"""Fit the cost model's rates to the wall times result records measured, and check each plugin's formula.

``benchmarks/cost.py`` measures the rates of ``benchmark/costs.yaml`` with short, isolated loops;
this script reads them off real runs instead. Every finished record keeps three timings of work the
cost model prices: its poison's generation (``poison_meta.wall_s``), its victim's training with a
data- or train-stage defense (``timing.victim_s``) and a model-stage defense's repair
(``timing.repair_s``). For each, the cost model gives the images through each kind of pass
(``train``, ``grad``, ``ssl``, ``forward``). The rates are fitted by least squares on the relative
error of the predicted seconds, over the work that defines the kinds (the victims' own training,
adversarial training, EM's generation), per architecture and machine (records name their CPU model;
only 1-thread float32 CPU records count), with one trim of observations off by more than 2x.
Then every timing is predicted with the fitted rates, and the measured/predicted ratio per plugin
shows which work formulas are off (the cp/tue/tp ones are derived from their loops, not measured).

    PYTHONPATH=$PWD python benchmarks/fit_rates.py results/cifar10-quick
    PYTHONPATH=$PWD python benchmarks/fit_rates.py results/cifar10-quick --machine all --json out.json

Rebuilding a record's plugins needs its data (``UEBENCH_DATA`` or ``../shared/data``); records
whose cell cannot be rebuilt here are counted and left out.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmark.audit import _poison_cost
from benchmark.config import parse_matrix, resolve
from benchmark.cost import CostModel, Sizes, Work, dataset_sizes
from benchmark.errors import UserError
from benchmark.rebuild import data_dirs, rebuild_matrix
from benchmark.records import load_records
from benchmark.registry import get_registry


@dataclass
class Observation:
    """One measured piece of work: what ran (``label``), on which CPU, its images per pass kind, its seconds."""

    label: str
    machine: str
    work: Work
    seconds: float


def _cpu_1thread(numerics: dict[str, Any] | None) -> str:
    """The CPU model of a 1-thread float32 CPU run, or ``""`` for anything else."""
    n = numerics or {}
    if n.get("device_kind") != "cpu" or n.get("threads") != 1 or n.get("dtype", "float32") != "float32":
        return ""
    return str(n.get("device_name") or "")


def observations(records: list[dict[str, Any]], model: CostModel) -> tuple[list[Observation], Counter[str]]:
    """The timed pieces of work in ``records``, and why the others were left out (reason -> count)."""
    out: list[Observation] = []
    left: Counter[str] = Counter()
    built: dict[str, Any] = {}
    counted: dict[str, Sizes] = {}  # per dataset: counting an npz's images loads it
    poisons: set[tuple[str, float]] = set()
    registry = get_registry()

    def resolved(rec: dict[str, Any]) -> tuple[Any, Sizes] | None:
        key = json.dumps([rec.get(k) for k in ("dataset_spec", "attack_spec", "victim_spec", "defense_spec", "profile")], sort_keys=True)
        if key not in built:
            try:
                r = resolve(parse_matrix(rebuild_matrix(rec, data=data_dirs(None)), file="record"), registry, file="record")
                d = json.dumps(rec.get("dataset_spec"), sort_keys=True)
                if d not in counted:
                    counted[d] = dataset_sizes(r, model)
                built[key] = (r, counted[d])
            except (UserError, KeyError):
                built[key] = None
        return built[key]

    for rec in records:
        if rec.get("status") != "ok":
            continue
        got = resolved(rec)
        if got is None:
            left["cannot be rebuilt here"] += 1
            continue
        r, sizes = got
        attack, victim, defense = r.attacks[0], r.victims[0], r.defenses[0]
        meta = rec.get("poison_meta") or {}
        cost, unpriced = _poison_cost(meta)
        pkey = (str(rec.get("spec", {}).get("poison", "")), cost)  # one poison made on several machines: each once
        if pkey not in poisons and meta.get("wall_s") is not None:
            poisons.add(pkey)
            machine = _cpu_1thread(meta.get("numerics"))
            if not machine:
                left["poison: not a 1-thread float32 CPU run"] += 1
            elif unpriced or meta.get("reads"):
                left["poison: reused work of another job"] += 1
            else:
                w = model.work(attack, sizes)
                if w.passes:
                    out.append(Observation(f"attack/{attack.name}", machine, w, cost))
        t = rec.get("timing") or {}
        machine = _cpu_1thread(rec.get("numerics"))
        if not machine:
            left["cell: not a 1-thread float32 CPU run"] += 1
            continue
        vtrain = model.work(victim, sizes)
        if t.get("victim_s") and not t.get("victim_reused"):
            w = Work()
            w += vtrain
            label = f"victim/{victim.name}"
            if defense.stage in ("data", "train"):
                w += model.work(defense, sizes, victim=victim, victim_train=vtrain.images("train"))
                label += f" + defense/{defense.name}" if defense.name != "none" else ""
            out.append(Observation(label, machine, w, float(t["victim_s"])))
        if t.get("repair_s"):
            w = model.work(defense, sizes, victim=victim, victim_train=vtrain.images("train"))
            if w.passes:
                out.append(Observation(f"defense/{defense.name}", machine, w, float(t["repair_s"])))
    return out, left


def _seconds(work: Work, rates: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
    return {k: n / rates[k] for k, n in work.passes.items() if k in rates}


# The pieces of work that define the kinds of passes (costs.yaml's comment): a victim's own training,
# PGD adversarial training, EM's generation. The rates are fitted on these; every other formula is
# checked against the fitted rates, not fitted into them.
DEFINING = re.compile(r"victim/[\w-]+|victim/sl \+ defense/at|attack/em|attack/em-class")


@dataclass
class Fit:
    rates: dict[tuple[str, str], float]  # every kind: fitted where it could be, else costs.yaml's
    fitted: dict[tuple[str, str], int]  # the fitted kinds -> observations in which each makes >= 30% of the time
    used: int  # observations in the fit
    trimmed: int  # defining observations left out as outliers (measured / predicted outside [1/2, 2])


def fit(obs: list[Observation], rates0: dict[tuple[str, str], float], min_share: float = 0.3, min_obs: int = 3) -> Fit:
    """Seconds per image of each (architecture, kind) by least squares on the relative error of the
    defining observations' predicted times. A kind is fitted where at least ``min_obs`` of them
    spend ``min_share`` of their (costs.yaml-predicted) time in it; the others keep costs.yaml's
    rate. One trim: observations the first fit predicts off by more than 2x are left out."""
    base = [o for o in obs if DEFINING.fullmatch(o.label) and all(k in rates0 for k in o.work.passes)]
    support: Counter[tuple[str, str]] = Counter()
    for o in base:
        s = _seconds(o.work, rates0)
        support.update(k for k, v in s.items() if v >= min_share * sum(s.values()))
    kinds = sorted(k for k, c in support.items() if c >= min_obs)
    rates = dict(rates0)
    used, trimmed = base, 0
    for _ in range(2):
        if not kinds or not used:
            break
        a = np.array([[o.work.passes.get(k, 0.0) / o.seconds for k in kinds] for o in used])
        b = np.array([1.0 - sum(n / rates0[k] for k, n in o.work.passes.items() if k not in kinds) / o.seconds for o in used])
        sol, *_ = np.linalg.lstsq(a, b, rcond=None)
        rates = {**rates0, **{k: 1.0 / x for k, x in zip(kinds, sol, strict=True) if x > 0}}
        keep = [o for o in base if 0.5 <= o.seconds / sum(_seconds(o.work, rates).values()) <= 2.0]
        trimmed = len(base) - len(keep)
        if len(keep) == len(used):
            break
        used = keep
    return Fit(rates, {k: support[k] for k in kinds if rates[k] != rates0[k]}, len(used), trimmed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", help="a results directory (its cells/*.json)")
    ap.add_argument("--machine", default=None, help="CPU model as records name it (default: the one with most observations; 'all': each)")
    ap.add_argument("--json", default=None, help="also write the fit here")
    a = ap.parse_args()

    model = CostModel()
    cpu = model.data["rates"]["cpu"]
    rates0 = {(arch, kind): float(e["rate"]) for arch, kinds in cpu.items() if isinstance(kinds, dict)
              for kind, e in kinds.items() if isinstance(e, dict) and "rate" in e}
    obs, left = observations(load_records(a.results), model)
    machines = Counter(o.machine for o in obs)
    if not machines:
        sys.exit("no timed 1-thread CPU work in these records")
    names = list(machines) if a.machine == "all" else [a.machine or machines.most_common(1)[0][0]]
    print(f"{len(obs)} timed pieces of work from {a.results}; left out: {dict(left) or 'none'}")
    report: dict[str, Any] = {}
    for name in names:
        mine = [o for o in obs if o.machine == name]
        f = fit(mine, rates0)
        rates = f.rates
        print(f"\n## {name}: {len(mine)} observations, {f.used} in the fit ({f.trimmed} left out as off by more than 2x)\n")
        print("| arch | kind | costs.yaml rate (img/s) | fitted rate | observations spending >= 30% in it | fitted / costs.yaml |")
        print("| --- | --- | ---: | ---: | ---: | ---: |")
        for k in sorted(rates0):
            if k in f.fitted:
                print(f"| {k[0]} | {k[1]} | {rates0[k]:.0f} | {rates[k]:.0f} | {f.fitted[k]} | {rates[k] / rates0[k]:.2f} |")
            else:
                print(f"| {k[0]} | {k[1]} | {rates0[k]:.0f} | – | – | – |")
        ratios: dict[str, list[float]] = defaultdict(list)
        for o in mine:
            s = _seconds(o.work, rates)
            if len(s) == len(o.work.passes) and sum(s.values()) > 0:
                ratios[o.label].append(o.seconds / sum(s.values()))
        print("\nMeasured / predicted with the fitted rates, per piece of work (1.00: the formula and rates agree):\n")
        print("| work | observations | median measured / predicted | min–max |")
        print("| --- | ---: | ---: | --- |")
        for label in sorted(ratios):
            v = ratios[label]
            print(f"| {label} | {len(v)} | {statistics.median(v):.2f} | {min(v):.2f}–{max(v):.2f} |")
        report[name] = {
            "observations": len(mine),
            "in_fit": f.used, "trimmed": f.trimmed,
            "rates": {f"{k[0]}/{k[1]}": {"costs_yaml": rates0[k], "fitted": rates[k] if k in f.fitted else None,
                                          "support": f.fitted.get(k, 0)} for k in sorted(rates0)},
            "ratios": {label: {"n": len(v), "median": statistics.median(v), "min": min(v), "max": max(v)} for label, v in sorted(ratios.items())},
        }
    if a.json:
        Path(a.json).write_text(json.dumps({"results": a.results, "left_out": dict(left), "machines": report}, indent=2) + "\n")


if __name__ == "__main__":
    main()
