"""Time the quickstart as a new user runs it: ``bench run examples/quickstart.yaml`` on this machine.

The README's quickstart line says how long its 6 cells take on 2 CPU cores. That depends on the CPU
far more than on uebench (the small CNN trains at about 1,000 img/s per core on the Intel Xeon VM
the evidence was recorded on, 4-6x slower on a 2-core AMD EPYC without AVX-512), so the time is a
measurement per machine, kept here, not an assert in a test (``tests/slow/test_quickstart.py``
checks the effect the quickstart shows, not its speed). The JSON names the CPU, the wall and CPU
seconds, the accuracies, and the CPU's slowdown against the records' machine
(``benchmarks/cost.py --slowdown``), so a figure from another machine can be put beside it:

    UEBENCH_DATA=../shared/data PYTHONPATH=$PWD python benchmarks/quickstart.py \\
        --json benchmarks/results/quickstart-<cpu>-<commit>.json

The target is 5 minutes of wall time on 2 cores (2 single-thread workers, the quickstart's
executor); the script prints whether this machine met it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import meta

TARGET_S = 5 * 60


def run_quickstart(results: Path) -> dict[str, float]:
    """Run the quickstart into ``results``; its wall and CPU seconds (the workers' included)."""
    t0, c0 = time.perf_counter(), os.times()
    p = subprocess.run([sys.executable, "-m", "benchmark", "run", "examples/quickstart.yaml", "--results", str(results), "--quiet"],
                       cwd=REPO, capture_output=True, text=True, check=False)
    wall, c1 = time.perf_counter() - t0, os.times()
    if p.returncode != 0:
        raise SystemExit(f"the quickstart failed (exit {p.returncode}):\n{p.stderr[-2000:]}")
    return {"wall_s": round(wall, 1), "cpu_s": round((c1.children_user + c1.children_system) - (c0.children_user + c0.children_system), 1)}


def accuracies(results: Path) -> dict[str, float]:
    out = {}
    for f in sorted((results / "cells").glob("*.json")):
        r = json.loads(f.read_text())
        out[f"{r['attack']}/{r['defense']}"] = round(100 * r["metrics"]["accuracy"], 2)
    return dict(sorted(out.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the result here")
    args = ap.parse_args()
    from benchmarks.cost import slowdown

    with tempfile.TemporaryDirectory(prefix="uebench-quickstart-") as tmp:
        times = run_quickstart(Path(tmp) / "results")
        acc = accuracies(Path(tmp) / "results")
    slow = round(slowdown(reps=2), 2)  # after the run: the same machine, not competing with it
    out = {"meta": meta(args), **times, "target_s": TARGET_S, "met": times["wall_s"] <= TARGET_S,
           "slowdown": slow, "accuracy": acc}
    print(f"quickstart: wall {times['wall_s']:.0f} s, CPU {times['cpu_s']:.0f} s on {out['meta']['cpu']} "
          f"({os.cpu_count()} CPUs; small-CNN training {slow:.2f}x slower than the records' machine): "
          f"the {TARGET_S // 60}-minute target is {'met' if out['met'] else 'not met'} here")
    print(json.dumps(acc))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
