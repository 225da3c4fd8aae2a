"""bf16 autocast on a CPU (the matrix's ``precision: bfloat16``) against the float32 evidence.

Reads the cell records of a results directory computed with ``precision: bfloat16`` (the matrix
``benchmarks/precision.yaml``: clean, random noise and EM, ``sl`` quick, seeds 0 and 1) and the
committed float32 records with the same cell keys (``results/cifar10-quick``), and prints a Markdown
table: accuracy in each precision and their difference beside the float32 seed-to-seed spread of
the same cell. (Speed is ``bench.py --precision bfloat16``'s figure, measured in one run: the
records' wall times come from other moments, machines and loads.)

    bench run benchmarks/precision.yaml --results /tmp/bf16 --workers 2
    PYTHONPATH=$PWD python benchmarks/precision.py /tmp/bf16 [--fp32 results/cifar10-quick]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmark.records import load_records


def compare(bf16: list[dict], fp32: list[dict]) -> list[dict]:
    """One row per bf16 record with a float32 record of the same key."""
    by_key = {r["key"]: r for r in fp32 if r.get("status") == "ok"}
    by_cell = {(r["attack"], r["victim"], r["defense"], r["seed"]): r for r in by_key.values()}
    rows = []
    for b in sorted(bf16, key=lambda r: (r["attack"], r["seed"])):
        f = by_key.get(b["key"])
        if b.get("status") != "ok" or f is None:
            continue
        other = by_cell.get((b["attack"], b["victim"], b["defense"], 1 - b["seed"]))
        acc_b, acc_f = 100 * b["metrics"]["accuracy"], 100 * f["metrics"]["accuracy"]
        rows.append({
            "cell": f"{b['attack']} × {b['victim']} × {b['defense']} (seed {b['seed']})",
            "dtype": (b.get("numerics") or {}).get("dtype"),
            "fp32": acc_f, "bf16": acc_b, "diff": acc_b - acc_f,
            "seed_spread": None if other is None else abs(100 * other["metrics"]["accuracy"] - acc_f),
        })
    return rows


def markdown(rows: list[dict]) -> str:
    out = ["| cell | float32 | bf16 autocast | bf16 − float32 | float32 seed-to-seed |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        spread = "–" if r["seed_spread"] is None else f"{r['seed_spread']:.2f}"
        out.append(f"| {r['cell']} | {r['fp32']:.2f} | {r['bf16']:.2f} | {r['diff']:+.2f} | {spread} |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bf16", type=Path, help="results directory computed with precision: bfloat16")
    ap.add_argument("--fp32", type=Path, default=REPO / "results" / "cifar10-quick")
    a = ap.parse_args()
    rows = compare(load_records(a.bf16), load_records(a.fp32))
    if not rows:
        print(f"precision: no record of {a.bf16} has a float32 twin in {a.fp32}", file=sys.stderr)
        return 1
    bad = [r["cell"] for r in rows if r["dtype"] != "bfloat16-autocast"]
    if bad:
        print(f"precision: not bf16 records: {', '.join(bad)}", file=sys.stderr)
        return 1
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
