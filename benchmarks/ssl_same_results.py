"""Does uebench's contrastive pretraining learn what the CP repository's pipeline learns?

Issue 19 asks the fast path for the same results as the unoptimised one: "a short run's loss curve
and probe accuracy match the unoptimised path within seed noise". For each victim and seed this
pretrains the victim at its quick profile (small CNN, 5k CIFAR-10 images: ``common.load_cifar``)
once per pipeline (``--pipelines``, default uebench and reference), through uebench's ``pretrain`` (batched tensor views) and through
``reference_ssl.reference_pretrain`` (CP's per-sample PIL two-crop views and DataLoader; the same
method module, optimizer and schedule), then probes both encoders with the victim's own probe and
scores them on the full 10k test set. Each run is a fresh process at one torch thread, float32.
The two pipelines draw different random views, so even with the same seed the runs differ as two
seeds of one pipeline do: the comparison is between the pipelines' spreads, not run by run.
``--pipelines uebench-tv`` adds uebench's loop with torchvision's views (``ssl_views.py`` found
uebench's crop sampling and hue easier than torchvision's; ``common.use_torchvision_views``).

    PYTHONPATH=$PWD python benchmarks/ssl_same_results.py --victims simclr,byol --seeds 0,1 --jobs 2 \\
        --json benchmarks/results/ssl-same-results-COMMIT.json > benchmarks/results/ssl-same-results-COMMIT.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for p in (REPO, REPO / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

PIPELINES = ("uebench", "uebench-tv", "reference")


def run_task(victim: str, seed: int, pipeline: str, epochs: int | None) -> dict[str, Any]:
    """One pretraining + probe in this process; returns the per-epoch mean losses and the accuracy."""
    import torch
    from reference_ssl import reference_pretrain, ssl_method, ssl_victim

    from benchmark.interfaces import RunContext
    from benchmark.runtime import tune_cpu_allocator
    from benchmark.ssl.method import pretrain
    from benchmark.trace import EpochEvent
    from benchmark.training import accuracy

    from common import load_cifar, use_torchvision_views

    if pipeline == "uebench-tv":
        use_torchvision_views()
    torch.set_num_threads(1)
    tune_cpu_allocator()
    train, test = load_cifar(5_000)
    v = ssl_victim(victim, "quick", **({} if epochs is None else {"epochs": epochs}))
    ctx = RunContext(device=torch.device("cpu"), seed=seed, profile="quick", precision="float32")
    torch.manual_seed(seed)
    method = ssl_method(v, train, ctx)
    losses: list[float] = []
    t0 = time.perf_counter()
    if pipeline != "reference":
        def keep(e: EpochEvent) -> None:
            if e.phase == "pretrain":
                losses.append(e.loss)

        ctx.trace.subscribe(keep)
        pretrain(method, train, v.pretrain_recipe(), ctx)
    else:
        reference_pretrain(v, method, train, torch.device("cpu"), 0, on_epoch=lambda _, loss: losses.append(loss))
    pretrain_s = time.perf_counter() - t0
    model = v.probe(method.encoder, train, ctx)
    acc = 100 * accuracy(model, test, ctx)
    return {"victim": victim, "seed": seed, "pipeline": pipeline, "epochs": v.params.epochs, "losses": losses,
            "accuracy": acc, "pretrain_s": round(pretrain_s, 1), "probe": v.params.probe}


def spawn(victim: str, seed: int, pipeline: str, epochs: int | None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--task", victim, str(seed), pipeline]
    if epochs is not None:
        cmd += ["--epochs", str(epochs)]
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    if r.returncode != 0:
        raise SystemExit(f"ssl_same_results: {victim} seed {seed} {pipeline} failed\n{r.stderr[-2000:]}")
    doc: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"  {victim} seed {seed} {pipeline}: accuracy {doc['accuracy']:.2f}, final loss {doc['losses'][-1]:.4f}, "
          f"pretraining {doc['pretrain_s']:.0f} s", file=sys.stderr)
    return doc


def ms(values: list[float], digits: int) -> str:
    m = statistics.fmean(values)
    s = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def report(runs: list[dict[str, Any]]) -> str:
    """Per victim and pipeline: the mean ± std over seeds of the loss at the first, middle and last
    epoch, of the probe accuracy, and the spread of each side (max - min over seeds)."""
    seeds = sorted({r["seed"] for r in runs})
    lines = [(f"Seeds {', '.join(map(str, seeds))}; CIFAR-10 (JPEG-75 copy), 5k training images, full 10k test set; quick profile, "
             "one torch thread per run, float32. Loss: the epoch's mean pretraining loss; accuracy: the victim's own probe."), "",
             "| victim | pipeline | epochs | loss, epoch 1 | loss, middle epoch | loss, last epoch | probe accuracy | accuracy spread | pretraining s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for victim in dict.fromkeys(r["victim"] for r in runs):
        for pipeline in PIPELINES:
            rs = [r for r in runs if r["victim"] == victim and r["pipeline"] == pipeline]
            if not rs:
                continue
            e = rs[0]["epochs"]
            accs = [r["accuracy"] for r in rs]
            lines.append(f"| {victim} | {pipeline} | {e} | {ms([r['losses'][0] for r in rs], 4)} | {ms([r['losses'][e // 2 - 1] for r in rs], 4)} | "
                         f"{ms([r['losses'][-1] for r in rs], 4)} | {ms(accs, 2)} | {max(accs) - min(accs):.2f} | "
                         f"{statistics.fmean(r['pretrain_s'] for r in rs):.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--victims", default="simclr,moco,byol,simsiam,supcl")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--epochs", type=int, help="pretraining epochs (default: each victim's quick profile)")
    ap.add_argument("--pipelines", default="uebench,reference",
                    help="of uebench, uebench-tv (uebench's loop with torchvision's views: common.use_torchvision_views), reference")
    ap.add_argument("--jobs", type=int, default=2, help="runs at once (each one thread)")
    ap.add_argument("--json", type=Path, help="write every run (losses per epoch, accuracy) here")
    ap.add_argument("--task", nargs=3, metavar=("VICTIM", "SEED", "PIPELINE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.task:
        victim, seed, pipeline = args.task
        print(json.dumps(run_task(victim, int(seed), pipeline, args.epochs)))
        return 0
    unknown = set(args.pipelines.split(",")) - set(PIPELINES)
    if unknown:
        ap.error(f"--pipelines: unknown {', '.join(repr(u) for u in sorted(unknown))} (known: {', '.join(PIPELINES)})")
    tasks = [(v, int(s), p) for v in args.victims.split(",") for s in args.seeds.split(",")
             for p in args.pipelines.split(",")]
    # --json is rewritten after every run, and a rerun with the same --json skips the runs it holds
    done: list[dict[str, Any]] = json.loads(args.json.read_text())["runs"] if args.json and args.json.exists() else []
    have = {(r["victim"], r["seed"], r["pipeline"]) for r in done}
    runs = [r for r in done if (r["victim"], r["seed"], r["pipeline"]) in set(tasks)]
    lock = threading.Lock()

    def one(t: tuple[str, int, str]) -> None:
        r = spawn(*t, args.epochs)
        with lock:
            runs.append(r)
            if args.json:
                args.json.write_text(json.dumps({"command": " ".join(sys.argv), "runs": runs}, indent=2))

    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(one, [t for t in tasks if t not in have]))
    runs.sort(key=lambda r: tasks.index((r["victim"], r["seed"], r["pipeline"])))
    print(report(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
