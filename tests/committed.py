"""The committed results as the evidence tests read them: each results directory's current records
loaded once per session, the seed mean of one cell, an attack's worst case over the six victims, and
a doc's text with its line breaks folded (prose is checked as one string)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from benchmark.records import cell_mean, current, load_records

REPO = Path(__file__).resolve().parents[1]
SIX_VICTIMS = ("sl", "simclr", "supcl", "moco", "byol", "simsiam")


@functools.cache
def committed(name: str) -> list[dict[str, Any]]:
    """The current records of ``results/<name>`` (cached: the tests only read them)."""
    return current(load_records(REPO / "results" / name)).records


def accuracy(recs: list, attack: str, victim: str) -> float:
    """The seed mean of one undefended cell's accuracy (the test fails when the cell is missing)."""
    cell = cell_mean(recs, attack, victim, "none", "accuracy")
    assert cell, (attack, victim)
    return cell.mean


def defended(recs: list, attack: str, defense: str) -> float:
    """The seed mean of one `sl` cell's accuracy under ``defense`` (fails unless both seeds are in)."""
    cell = cell_mean(recs, attack, "sl", defense, "accuracy")
    assert cell and len(cell.seeds) == 2, (attack, defense, cell)
    return cell.mean


def worst_at(recs: list, attack: str) -> str:
    """The victim where ``attack`` leaves the highest undefended accuracy (its Worst's column)."""
    return max(SIX_VICTIMS, key=lambda v: accuracy(recs, attack, v))


def worst(recs: list, attack: str) -> float:
    """``attack``'s worst case over the six victims, as the leaderboard's **Worst**."""
    return accuracy(recs, attack, worst_at(recs, attack))


def doc(path: str) -> str:
    """``docs/…`` or README.md with whitespace folded to single spaces."""
    return " ".join((REPO / path).read_text().split())
