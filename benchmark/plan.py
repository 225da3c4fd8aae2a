"""Expand a resolved matrix into jobs: attack jobs (one per attack) and the cells that need them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from benchmark.config import Resolved
from benchmark.interfaces import Attack, Defense, Victim
from benchmark.store import spec_key


@dataclass
class AttackJob:
    """Generate one poison; shared by every cell of that attack."""

    attack: Attack
    spec: dict[str, Any]
    key: str
    cells: list[Cell] = field(default_factory=list)


@dataclass
class Cell:
    """(dataset, attack, victim, defense, seed): the unit of scheduling, caching, failure and resume."""

    job: AttackJob
    victim: Victim
    defense: Defense
    seed: int
    spec: dict[str, Any]
    key: str

    @property
    def label(self) -> str:
        return f"{self.job.attack.display} × {self.victim.display} × {self.defense.display} (seed {self.seed})"


@dataclass
class Plan:
    """A resolved matrix expanded: the attack jobs (one poison each) and the cells (attack x victim x defense x seed) to run."""
    resolved: Resolved
    dataset_spec: dict[str, Any]
    jobs: list[AttackJob]
    cells: list[Cell]


def dataset_spec(r: Resolved) -> dict[str, Any]:
    d = r.matrix.dataset
    return {
        **r.dataset.identity(),
        "subset": d.subset,
        "test_subset": d.test_subset,
        "holdout": d.holdout,
        "split_seed": d.split_seed,
        # only when set, so the keys of data with a test split stay as they were
        **({"test_from_train": d.test_from_train} if d.test_from_train else {}),
    }


def make_plan(r: Resolved) -> Plan:
    """Every attack once; every (attack, victim, defense, seed) cell, in matrix order."""
    ds = dataset_spec(r)
    jobs: list[AttackJob] = []
    cells: list[Cell] = []
    victim_specs = [v.spec() for v in r.victims]  # once each: a matrix may have thousands of seeds
    defense_specs = [d.spec() for d in r.defenses]
    for attack in r.attacks:
        spec = {"kind": "poison", "dataset": ds, "attack": attack.spec(), "attack_seed": r.matrix.attack_seed}
        job = AttackJob(attack, spec, spec_key(spec))
        jobs.append(job)
        for victim, vspec in zip(r.victims, victim_specs):
            for defense, dspec in zip(r.defenses, defense_specs):
                for seed in r.matrix.seeds:
                    cspec = {"kind": "cell", "poison": job.key, "victim": vspec, "defense": dspec, "seed": seed}
                    cell = Cell(job, victim, defense, seed, cspec, spec_key(cspec))
                    job.cells.append(cell)
                    cells.append(cell)
    return Plan(r, ds, jobs, cells)
