"""Calibrate the cost model: throughput of the four kinds of passes per architecture, here.

``bench run M --dry-run`` estimates a matrix's wall time and device-hours from each plugin's work
(images x passes of each kind, ``benchmark/costs.yaml``) and these rates. This script measures
them on this machine with uebench's own loops and prints a YAML block for ``costs.yaml``:

- ``train``: one supervised training pass (``training.train_supervised``, batch 128, crop+flip);
- ``grad``: one input-gradient pass of PGD on a frozen model with BatchNorm folded (batch 512:
  what EM, TAP, AAP and AUE run);
- ``forward``: inference (``training.predict_logits``, the accuracy and certification passes);
- ``ssl``: one image of SimCLR pretraining (two augmented views, batch 256 here; 512 in the paper).

    PYTHONPATH=$PWD python benchmarks/cost.py                      # small-cnn and resnet18, this CPU
    PYTHONPATH=$PWD python benchmarks/cost.py --archs small-cnn --device cuda --images 8192
    PYTHONPATH=$PWD python benchmarks/cost.py --slowdown            # one number: see below

``--slowdown`` prints how many times slower this CPU trains the quick profile's small CNN (1 thread,
the dry-run's probe, `benchmark/calibration.py`: the ``train`` loop above on random images) than the rate ``costs.yaml`` prices the CPU records at (fitted to the evidence
records' timings). ``.ci/run`` divides the minutes it has left by it to get the audit's budget in
*recorded* minutes, so the audit fits its real time on a slower CPU (the audit's own budget stays in
recorded minutes: the cells it picks must be reproducible from the commit, not from the machine).
That loop reads 1.4x below (731 vs 1,029, `cpu_probe`) and up to 1.6x below the records' fitted rate on the records' own Intel machine
(costs.yaml's note), so the factor errs on the slow side: the audit picks fewer cells, never more.

Each rate is the best of ``--reps`` runs (shared machines are noisy); torch runs the given
``--threads`` (default 1: what every job runs unless the matrix says otherwise).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmark.folding import fold_batchnorm
from benchmark.interfaces import RunContext
from benchmark.models import build_classifier
from benchmark.training import SGDRecipe, autocast, pgd, predict_logits, to_model, train_supervised
from benchmarks.common import load_cifar, sync


def best(fn, reps: int, device: torch.device) -> float:
    times = []
    for _ in range(reps):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return min(times)


def train_rate(model: torch.nn.Module, data: Any, ctx: RunContext, reps: int) -> float:
    """Images per second of ``train_supervised`` (batch 128, crop+flip) after one warm-up epoch."""
    recipe = SGDRecipe(epochs=1, batch_size=128)
    train_supervised(model, data, recipe, ctx)  # warm-up (allocator, kernels)
    return (len(data) // 128) * 128 / best(lambda: train_supervised(model, data, recipe, ctx), reps, ctx.device)


def measure(arch: str, n: int, device: torch.device, reps: int) -> dict[str, float]:
    import torch.nn.functional as F

    from benchmark.data.dataset import ImageDataset
    from benchmark.params import resolve_params
    from benchmark.ssl.method import pretrain
    from plugins.victims.simclr import SimCLR

    train, _ = load_cifar(max(n, 1000))
    data = ImageDataset(train.x[:n], train.y[:n], train.classes)
    ctx = RunContext(device=device)
    mean, std = data.mean_std()
    model = build_classifier(arch, 3, 10, mean, std, device)
    out: dict[str, float] = {"train": train_rate(model, data, ctx, reps)}

    fm = fold_batchnorm(model.eval())
    x_all = data.x[:n].to(device).float() / 255
    y_all = data.y[:n].to(device)
    steps = 4

    def grad_pass() -> None:
        for s in range(0, n, 512):
            x, y = x_all[s:s + 512], y_all[s:s + 512]

            def loss(xa: torch.Tensor, y: torch.Tensor = y) -> torch.Tensor:
                with autocast(ctx):
                    return F.cross_entropy(fm(to_model(xa)).float(), y)

            pgd(loss, x, torch.zeros_like(x), eps=8 / 255, alpha=0.8 / 255, steps=steps)

    grad_pass()
    out["grad"] = steps * n / best(grad_pass, reps, device)
    predict_logits(model, data, ctx)
    out["forward"] = n / best(lambda: predict_logits(model, data, ctx), reps, device)

    bs = 256 if device.type == "cpu" else 512
    victim = SimCLR(resolve_params(SimCLR, "paper", {"arch": arch, "epochs": 1, "batch_size": bs, "warmup_epochs": 0}))
    method = victim.build_method(build_classifier(arch, 3, 10, mean, std, device), ctx).to(device)
    rec = victim.pretrain_recipe()
    pretrain(method, data, rec, ctx)
    out["ssl"] = (n // bs) * bs / best(lambda: pretrain(method, data, rec, ctx), reps, device)
    return out


def slowdown() -> float:
    """``costs.yaml``'s CPU small-CNN ``train`` rate over this CPU's, at 1 thread (see the module doc):
    this CPU's rate is the dry-run's probe (``benchmark.calibration.probe_rate``, the same loop)."""
    from benchmark.calibration import probe_rate
    from benchmark.cost import CostModel

    return CostModel().rate("cpu", "small-cnn", "train") / probe_rate()[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", default="small-cnn,resnet18")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--images", type=int, default=0, help="images per measurement (default: 2048 small-cnn, 512 others on CPU)")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--slowdown", action="store_true", help="print only costs.yaml's CPU small-cnn train rate / this CPU's (1 thread)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.slowdown:
        torch.set_num_threads(1)
        print(f"{slowdown():.2f}")
        return
    device = torch.device(args.device)
    from benchmark.provenance import cpu_model, device_name

    print(f"# {device_name(device) if device.type != 'cpu' else cpu_model()}, {args.threads} torch threads, "
          f"torch {torch.__version__}, {time.strftime('%Y-%m-%d')}")
    for arch in args.archs.split(","):
        n = args.images or (2048 if arch == "small-cnn" or device.type != "cpu" else 512)
        r = measure(arch, n, device, args.reps)
        print(f"{arch}: {{" + ", ".join(f"{k}: {v:.0f}" for k, v in r.items()) + f"}}  # images {n}", flush=True)


if __name__ == "__main__":
    main()
