"""Calibrate the SSL victims' quick profiles: clean probe accuracy against the random-init floor.

For each victim (at its ``quick`` profile, with ``--set`` overrides) this pretrains the encoder once
and evaluates, on the same frozen encoder, the linear probe of the profile and the kNN probe
(:func:`benchmark.ssl.probe.knn_scores`, k 200, T 0.1); the floor is ``simclr`` with ``epochs: 0``
under the same probes. ``--every N`` also reports the kNN accuracy after every N-th pretraining
epoch (from the trace; the time it takes is not counted in the cell's wall time). Data: the
class-balanced ``--n``-image subset of the shared CIFAR-10 npz (the JPEG-75 copy), full 10k test set.
``delta`` is the victim's probe accuracy minus the floor's (list ``floor`` first); ``plain kNN`` is
the uncentered k-200 kNN on the same features, whatever the victim's own probe. ``wall s`` is the
victim's ``fit`` (pretraining and probe) on ``--threads`` threads.

    /work/bin/heavy env PYTHONPATH=$PWD python3 benchmarks/ssl_quick.py --victims simclr,moco --seeds 0
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import RunContext, TrainHooks
from benchmark.registry import get_registry
from benchmark.ssl.probe import extract_features, knn_scores
from benchmark.trace import EpochEvent
from benchmarks.common import load_cifar


def accuracy_from_scores(scores: torch.Tensor, y: torch.Tensor) -> float:
    return float((scores.argmax(1) == y).float().mean()) * 100


def parse_value(v: str) -> object:
    import yaml

    return yaml.safe_load(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--victims", default="floor,simclr,supcl,moco,byol,simsiam")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--every", type=int, default=0, help="kNN accuracy every N pretraining epochs (0: off)")
    ap.add_argument("--set", action="append", default=[], help="key=value override of the quick profile (all victims)")
    ap.add_argument("--k", type=int, default=200)
    ap.add_argument("--t", type=float, default=0.1)
    ap.add_argument("--save", default="", help="directory: save each cell's train/test features there (for offline probes)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    overrides = {kv.split("=", 1)[0]: parse_value(kv.split("=", 1)[1]) for kv in args.set}
    reg = get_registry()
    print(f"# CIFAR-10 JPEG-75 copy, {args.n}-image class-balanced subset, full 10k test; {args.threads} thread(s); overrides {overrides}")
    print("| victim | seed | epochs | probe | probe acc % | floor % | delta | plain kNN acc % | wall s (fit) | plain kNN by epoch |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---|")
    for seed in [int(s) for s in args.seeds.split(",")]:
        train, test = load_cifar(args.n, seed)
        floor: float | None = None
        for name in args.victims.split(","):
            vname = "simclr" if name == "floor" else name
            cls = reg.get("victim", vname)
            params = {**cls.profiles["quick"], **overrides}
            if name == "floor":
                params["epochs"] = 0
            victim = cls(cls.Params(**params))
            ctx = RunContext(seed=seed, profile="quick")
            curve: list[str] = []
            spent = [0.0]

            def monitor(
                ev: EpochEvent, curve: list[str] = curve, spent: list[float] = spent, ctx: RunContext = ctx, train: ImageDataset = train, test: ImageDataset = test
            ) -> None:
                if ev.phase != "pretrain" or not args.every or ev.epoch % args.every:
                    return
                t0 = time.perf_counter()
                enc = ev.model
                bank = extract_features(enc, train, ctx)
                q = extract_features(enc, test, ctx)
                curve.append(f"{ev.epoch}:{accuracy_from_scores(knn_scores(q, bank, train.y, train.num_classes, args.k, args.t), test.y):.1f}")
                enc.train()
                spent[0] += time.perf_counter() - t0

            ctx.trace.subscribe(monitor)
            torch.manual_seed(seed)  # as the runner does before a victim's fit (the encoder's init)
            t0 = time.perf_counter()
            model = victim.fit(train, ctx, TrainHooks())
            wall = time.perf_counter() - t0 - spent[0]
            with torch.no_grad():
                q = extract_features(model, test, ctx)
                probe_acc = accuracy_from_scores(model.head(q), test.y)
                bank = extract_features(model, train, ctx)
                knn_acc = accuracy_from_scores(knn_scores(q, bank, train.y, train.num_classes, args.k, args.t), test.y)
                if args.save:
                    Path(args.save).mkdir(parents=True, exist_ok=True)
                    torch.save({"train": bank, "ytrain": train.y, "test": q, "ytest": test.y, "encoder": model.state_dict()},
                               Path(args.save) / f"{name}-{seed}.pt")
            p = victim.params
            probe = p.probe + (" centered" if p.probe_center else "")
            if name == "floor":
                floor = probe_acc
            fl, delta = ("-", "-") if floor is None else (f"{floor:.2f}", f"{probe_acc - floor:+.2f}")
            print(
                f"| {name} | {seed} | {params['epochs']} | {probe} | {probe_acc:.2f} | {fl} | {delta} | {knn_acc:.2f} | {wall:.0f} "
                f"| {' '.join(curve)} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
