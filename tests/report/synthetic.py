"""Synthetic cell records shaped like the runner's (specs, curves, provenance, metric units), for
report tests that must not train anything."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from benchmark.store import ResultStore, spec_key

DATASET_SPEC = {"name": "npz", "version": "1", "params": {}, "content": "ab" * 32, "subset": 5000, "test_subset": None,
                "holdout": "5%", "split_seed": 0}
PROVENANCE = {"uebench": "0.1.0", "torch": "2.14.1+cpu", "cuda": None, "device": "cpu", "device_name": "x86_64", "threads": 1}


def spec(name: str, version: str = "1", **params: Any) -> dict[str, Any]:
    return {"name": name, "version": version, "params": params}


def curves(final: float, epochs: int = 5, phase: str = "supervised") -> list[dict[str, Any]]:
    return [{"phase": phase, "epoch": e, "epochs": epochs, "loss": round(2.3 / e, 4),
             "accuracy": round(final * e / epochs, 4), "lr": 0.1} for e in range(1, epochs + 1)]


def record(
    attack: str,
    victim: str,
    defense: str,
    seed: int,
    acc: float | None = None,
    *,
    status: str = "ok",
    dataset: str = "toy",
    profile: str = "quick",
    extra: dict[str, float] | None = None,
    attack_spec: dict[str, Any] | None = None,
    victim_spec: dict[str, Any] | None = None,
    defense_spec: dict[str, Any] | None = None,
    provenance: dict[str, Any] | None = None,
    error: str = "RuntimeError: boom",
    with_curves: bool = True,
    plugins: list[str] | None = None,
) -> dict[str, Any]:
    a = attack_spec or spec(attack)
    v = victim_spec or spec(victim)
    d = defense_spec or spec(defense)
    poison = spec_key({"kind": "poison", "attack": a, "dataset": DATASET_SPEC})
    cell = {"kind": "cell", "poison": poison, "victim": v, "defense": d, "seed": seed}
    metrics: dict[str, float] = {}
    units: dict[str, dict[str, str]] = {}
    if status == "ok":
        metrics["accuracy"] = float(acc if acc is not None else 0.5)
        units["accuracy"] = {"metric": "accuracy", "unit": "fraction"}
        for k, x in (extra or {}).items():
            metrics[k] = x
            units[k] = {"metric": "certified-learnability" if k.startswith(("certified@", "noisy_")) else "foo",
                        "unit": "percent" if k.startswith(("certified@", "noisy_")) else "number"}
    if plugins is None:
        plugins = ["accuracy"] + sorted({u["metric"] for k, u in units.items() if k != "accuracy"})
    rec: dict[str, Any] = {
        "key": spec_key(cell), "spec": cell, "matrix": "synthetic", "profile": profile, "dataset": dataset,
        "dataset_spec": DATASET_SPEC, "dataset_sha256": "cd" * 32,
        "attack": attack, "attack_spec": a, "victim": victim, "victim_spec": v, "defense": defense, "defense_spec": d,
        "seed": seed, "status": status, "metrics": metrics, "metric_plugins": plugins,
        "provenance": {**PROVENANCE, **(provenance or {})}, "started": "2026-12-01T00:00:00+0000", "wall_s": 1.0,
        "error": None,
    }
    if status == "ok":
        rec["metric_units"] = units
        if with_curves:
            rec["curves"] = curves(acc if acc is not None else 0.5)
    elif status == "failed":
        rec["error"] = error
        rec["traceback"] = f"Traceback (most recent call last):\n  ...\n{error}\n"
    else:
        rec["error"] = f"defense {defense!r} does not apply to victim {victim!r}"
    return rec


def small_matrix() -> list[dict[str, Any]]:
    """toy/quick: clean, em, tap x sl, simclr x none, iss-jpeg, at; seeds 0 and 1. em x sl x none
    seed 1 failed (partial group); every tap cell failed; at does not apply to simclr; a
    certificate metric that abstains (NaN) for some cells and a third-party metric in [0, 1]."""
    acc = {"clean": 0.90, "em": 0.15, "tap": 0.0}
    victim_bonus = {"sl": 0.0, "simclr": 0.35}
    defense_bonus = {"none": 0.0, "iss-jpeg": 0.40, "at": 0.30}
    out = []
    plugins = ["accuracy", "certified-learnability", "foo"]
    for attack in ("clean", "em", "tap"):
        for victim in ("sl", "simclr"):
            for defense in ("none", "iss-jpeg", "at"):
                for seed in (0, 1):
                    if defense == "at" and victim == "simclr":
                        out.append(record(attack, victim, defense, seed, status="n/a", plugins=plugins))
                        continue
                    if attack == "tap" or (attack == "em" and victim == "sl" and defense == "none" and seed == 1):
                        out.append(record(attack, victim, defense, seed, status="failed", error=f"RuntimeError: {attack} crashed (seed {seed})", plugins=plugins))
                        continue
                    a = min(0.95, acc[attack] + (victim_bonus[victim] + defense_bonus[defense]) * (attack != "clean")) + 0.01 * seed
                    cert = {"certified@0.001": 100 * a - 2, "certified@0.01": math.nan if seed == 1 or attack == "clean" else 100 * a - 9}
                    out.append(record(attack, victim, defense, seed, a, extra={**cert, "foo": 0.0123 + 0.001 * seed}, plugins=plugins))
    return out


def write(root: Path, records: list[dict[str, Any]]) -> Path:
    store = ResultStore(root)
    for i, r in enumerate(records):
        store.put(r.get("key") or f"k{i}", r)
    return root
