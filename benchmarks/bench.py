"""uebench performance harness: throughput and memory of the hot paths, against a reference
pipeline written the way the papers' official code does the same work.

Cells (each timed for uebench and, where one exists here, for the reference; the sides alternate
``--reps`` times, every repetition in a fresh process; both sides tune the allocator as the runner
does, and the reference side runs uebench's network in channels_last: the official loops as a
careful user runs them, so a speed-up comes from the loops and not from settings anyone can copy):

- ``sl-small-cnn`` / ``sl-resnet18``: one supervised training epoch (crop + flip, SGD, batch 128);
- ``em``: one outer iteration of sample-wise EM generation (quick profile: 10 model steps of 512,
  then 10 PGD steps per batch of 512 over the whole set, then the 99%-accuracy stop check);
- ``at``: AT training steps (10 PGD iterations + 1 training pass per batch of 128);
- ``simclr``: one pretraining epoch and a one-epoch probe (paper profile on CUDA: ResNet-18, batch
  512; smoke profile on a CPU), only when ``plugins/victims/simclr.py`` exists (no reference);
- ``ssl-simclr``, ``ssl-moco``, ``ssl-byol``, ``ssl-simsiam``, ``ssl-supcl``: one pretraining epoch
  of that victim (no probe; the quick profile on a CPU, the paper profile on CUDA), against the CP
  repository's two-crop PIL pipeline with a DataLoader (``reference_ssl.ssl_reference``: the same
  method module, optimizer and schedule, so the gain is the input pipeline's and the loop's);
- ``certify``: certification draws of the ``certified-learnability`` metric (sigma 0.01 on every
  parameter of a small CNN, then the test split), against ``certify.py``'s loop.
- ``cp`` / ``cp-noanomaly``: one CP-S epoch of the ``cp`` plugin (SimCLR, small CNN, batch 512: a
  model epoch, then 5 sign steps per batch over the data), against kaiwenzha/contrastive-poisoning's
  loop (``reference_contrastive.cp_reference``; ``cp`` keeps ``main.py``'s anomaly detection on,
  ``cp-noanomaly`` turns it off);
- ``tp``: one epoch of the ``tp`` plugin (TP's Algorithm 1: contrastive model and PGD phases,
  supervised model and PGD phases, 5 + 5 steps), against the same loop in TransPoison's idiom
  (``reference_contrastive.tp_reference``); the reference side keeps its DataLoader, kornia
  augmentations and per-sample Python. On CUDA both sides run there (uebench's after a warm-up on
  512 images; the reference as the official scripts run on a GPU: see reference_contrastive.py).

The reference pipeline keeps the images as HWC uint8 numpy arrays, turns each sample into a PIL
image in ``__getitem__`` (torchvision's CIFAR10), applies torchvision transforms per sample and
batches with a torch ``DataLoader``; its loops follow HanxunH/Unlearnable-Examples
(``perturbation.py``, ``toolbox.PerturbationTool.min_min_attack``, ``madrys.py``): per-sample Python
loops to add the noise, the parameters frozen during the noise PGD (as the official code freezes
them), fp32. The ``sl``, ``em``, ``at`` and ``certify`` figures in ``benchmarks/results/`` files
written before 2026-12-02's change (``cpu-quick-24854df``, ``cpu-quick-idle-6a35883``,
``cuda-h100-full-1204f19``) had a reference with glibc's allocator, a contiguous model, a reordered
small CNN and, for EM, parameter gradients during the PGD: they overstate the gain.

Memory: peak RSS of each CPU cell (``/proc/self/status`` VmHWM, reset before the cell through
``/proc/self/clear_refs``), ``torch.cuda.max_memory_allocated`` on CUDA; and, in child processes,
the peak RSS of an ``sl`` epoch and an ``em`` outer iteration at 5k, 20k and 50k images.

Usage (from the repository root)::

    PYTHONPATH=$PWD python benchmarks/bench.py              # --quick (default), CPU (+ CUDA if present)
    PYTHONPATH=$PWD python benchmarks/bench.py --full --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import typing
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench_rss import rss_scaling, rss_table

from benchmark.config import Matrix
from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import RunContext, TrainHooks
from benchmark.models import build_classifier
from benchmark.runtime import tune_cpu_allocator
from benchmark.training import SGDRecipe, accuracy, train_supervised

from common import NPZ, Result, load_cifar, meta, timed
from reference import at_reference, certify_reference, em_reference, sl_reference


def sl_uebench(arch: str, train: ImageDataset, test: ImageDataset | None, ctx: RunContext, epochs: int = 1) -> Result:
    """uebench's SL loop (``train_supervised``: uint8 batches -> float on the device -> batched crop+flip)."""
    device = ctx.device
    torch.manual_seed(0)
    mean, std = train.mean_std()
    model = build_classifier(arch, 3, train.num_classes, mean, std, device)
    warm = SGDRecipe(epochs=1, batch_size=128)
    train_supervised(build_classifier(arch, 3, train.num_classes, mean, std, device), train.select(torch.arange(128)), warm, ctx)
    recipe = SGDRecipe(epochs=epochs, batch_size=128, nesterov=True)
    _, dt, peak = timed(device, lambda: train_supervised(model, train, recipe, ctx))
    n = (len(train) // 128) * 128 * epochs
    acc = accuracy(model, test, ctx) if test is not None else None
    return Result(f"sl-{arch}", device.type, "uebench", n, dt, peak, accuracy=acc, note="test acc after the timed epoch(s)" if acc is not None else "")


def em_uebench(train: ImageDataset, ctx: RunContext, steps: int = 10, arch: str = "small-cnn") -> Result:
    """uebench's EM plugin, one outer iteration (``max_outer=1``): quick profile (small CNN, 10 PGD
    steps), or the paper's (ResNet-18, 20 steps) for the ``em-resnet18`` cell."""
    from plugins.attacks.em import EM

    em = EM(EM.Params(arch=arch, steps=steps, max_outer=1))
    device = ctx.device
    if device.type == "cuda":  # first-use kernel set-up (bf16, channels_last) is not an outer iteration's cost
        EM(EM.Params(arch=arch, steps=1, train_steps=1, max_outer=1)).generate(train.select(torch.arange(512)), ctx)
    torch.manual_seed(0)
    poison, dt, peak = timed(device, lambda: em.generate(train, ctx))
    p = em.params
    work = p.train_steps * p.batch_size + len(train) * (p.steps + 1)  # forward(+backward) passes
    return Result("em" if arch == "small-cnn" else f"em-{arch}", device.type, "uebench", len(train), dt, peak, unit="img/s (outer it.)",
                  accuracy=poison.meta["train_accuracy"][-1], note="train acc on x+delta after 1 outer it.",
                  extra={"sample_passes_per_s": work / dt})


def at_uebench(train: ImageDataset, ctx: RunContext, batches: int, steps: int = 10) -> Result:
    """AT training steps through uebench's ``train_supervised`` with the ``at`` defense's hooks."""
    from plugins.defenses.at import AT

    device = ctx.device
    torch.manual_seed(0)
    mean, std = train.mean_std()
    data = train.select(torch.arange(batches * 128))
    model = build_classifier("small-cnn", 3, 10, mean, std, device)
    hooks = AT(AT.Params(steps=steps)).train_hooks(ctx)
    train_supervised(build_classifier("small-cnn", 3, 10, mean, std, device), train.select(torch.arange(128)),
                     SGDRecipe(epochs=1), ctx, hooks=hooks)
    recipe = SGDRecipe(epochs=1, batch_size=128, grad_clip=5.0)
    _, dt, peak = timed(device, lambda: train_supervised(model, data, recipe, ctx, hooks=hooks))
    return Result("at", device.type, "uebench", len(data), dt, peak, unit=f"img/s ({steps} PGD + 1 train)")


def simclr_victim(device_type: str) -> Any:
    """The ``simclr`` victim the cell times: paper profile (ResNet-18, batch 512) on CUDA, smoke
    profile (small CNN, batch 16) on a CPU; one pretraining epoch and a one-epoch probe."""
    from benchmark.params import resolve_params
    from benchmark.registry import get_registry

    cls = get_registry().get("victim", "simclr")
    over: dict[str, int] = {k: 1 for k in ("epochs", "probe_epochs") if k in cls.Params.model_fields}
    if device_type == "cuda":
        over["warmup_epochs"] = 0
    return cls(resolve_params(cls, "paper" if device_type == "cuda" else "smoke", over))


def simclr_uebench(train: ImageDataset, ctx: RunContext) -> Result | None:
    """One SimCLR pretraining epoch and a one-epoch probe (:func:`simclr_victim`); on CUDA after a
    warm-up on 1,024 images. The CPU's smoke rate says nothing about ResNet-18 (the cost model's GPU
    ``ssl`` rate once took it for one)."""
    if not (REPO / "plugins" / "victims" / "simclr.py").exists():
        return None
    device = ctx.device
    if device.type == "cuda":
        simclr_victim("cuda").fit(train.select(torch.arange(1024)), ctx, TrainHooks())
    victim = simclr_victim(device.type)
    torch.manual_seed(0)
    _, dt, peak = timed(device, lambda: victim.fit(train, ctx, TrainHooks()))
    p = victim.params
    return Result("simclr", device.type, "uebench", len(train), dt, peak,
                  note=f"{'paper' if device.type == 'cuda' else 'smoke'} profile ({p.arch}, batch {p.batch_size}), one epoch: pretraining + probe")


def ssl_uebench(name: str, train: ImageDataset, ctx: RunContext) -> Result:
    """One pretraining epoch of the contrastive victim ``name`` through uebench's ``pretrain``
    (no probe): the quick profile on a CPU, the paper profile on CUDA (after a warm-up on 1,024
    images); the reference is ``reference_ssl.ssl_reference`` with the same victim."""
    from reference_ssl import ssl_method, ssl_victim

    from benchmark.ssl.method import pretrain

    device = ctx.device
    profile = "paper" if device.type == "cuda" else "quick"
    victim = ssl_victim(name, profile, epochs=1)

    def fresh() -> Any:
        torch.manual_seed(0)
        return ssl_method(victim, train, ctx)

    if device.type == "cuda":
        pretrain(fresh(), train.select(torch.arange(min(len(train), 1024))), victim.pretrain_recipe(), ctx)
    method = fresh()
    _, dt, peak = timed(device, lambda: pretrain(method, train, victim.pretrain_recipe(), ctx))
    p = victim.params
    bs = min(p.batch_size, len(train))
    return Result(f"ssl-{name}", device.type, "uebench", (len(train) // bs) * bs, dt, peak, unit="img/s (pretraining epoch)",
                  note=f"{profile} profile ({p.arch}, batch {p.batch_size})")


def cp_uebench(train: ImageDataset, ctx: RunContext, cell: str) -> Result:
    """One CP-S epoch of the ``cp`` plugin with the reference's settings: SimCLR, small CNN, batch
    512, BN over the whole batch, the single-process loss scale T/0.07, U(-eps, eps) start, a model
    epoch then 5 sign steps of 0.1 eps per batch."""
    from plugins.attacks.cp import CP

    p = CP.Params(arch="small-cnn", init="uniform", epochs=1, bn_groups=1, loss_scale=0.5 / 0.07)
    device = ctx.device
    if device.type == "cuda":  # first-use kernel set-up is not an epoch's cost (as for ``em``)
        CP(p).generate(train.select(torch.arange(512)), ctx)
    torch.manual_seed(0)
    poison, dt, peak = timed(device, lambda: CP(p).generate(train, ctx))
    n = (len(train) // 512) * 512
    return Result(cell, device.type, "uebench", n, dt, peak, unit="img/s (CP-S epoch: 1 model + 5 noise passes)",
                  note=f"noise loss {poison.meta['noise_loss'][-1]:.3f}")


def tp_uebench(train: ImageDataset, ctx: RunContext) -> Result:
    """One epoch of the ``tp`` plugin (quick model: small CNN; batch 512; 5 + 5 PGD steps)."""
    from plugins.attacks.tp import TP

    device = ctx.device
    if device.type == "cuda":  # first-use kernel set-up is not an epoch's cost (as for ``em``)
        TP(TP.Params(arch="small-cnn", epochs=1)).generate(train.select(torch.arange(512)), ctx)
    torch.manual_seed(0)
    poison, dt, peak = timed(device, lambda: TP(TP.Params(arch="small-cnn", epochs=1)).generate(train, ctx))
    return Result("tp", device.type, "uebench", len(train), dt, peak, unit="img/s (TP epoch: 4 phases, 5+5 PGD steps)",
                  note=f"last SL noise loss {poison.meta['sl_noise_loss'][-1]:.3f}")


def certify_model(train: ImageDataset, ctx: RunContext) -> nn.Module:
    """The model both sides of the ``certify`` cell draw around: a small CNN trained for one epoch
    on 2,048 images with uebench's loop (setup, not timed; the same weights on both sides)."""
    device = ctx.device
    torch.manual_seed(0)
    model = build_classifier("small-cnn", 3, train.num_classes, *train.mean_std(), device)
    train_supervised(model, train.select(torch.arange(min(len(train), 2048))), SGDRecipe(epochs=1, nesterov=True), ctx)
    return model


def certify_uebench(train: ImageDataset, test: ImageDataset, ctx: RunContext, draws: int, sigma: float = 0.01) -> Result:
    """``draws`` certification draws of the ``certified-learnability`` metric (noise on every
    parameter, BN folded per draw, device-side counts)."""
    from plugins.metrics.certified import noisy_accuracies

    device = ctx.device
    model = certify_model(train, ctx)
    noisy_accuracies(model, test.select(torch.arange(256)), ctx, sigma=sigma, draws=1, seed=1)  # warm-up
    accs, dt, peak = timed(device, lambda: noisy_accuracies(model, test, ctx, sigma=sigma, draws=draws, seed=0))
    return Result("certify", device.type, "uebench", draws * len(test), dt, peak, unit="img/s (draws x test images)",
                  accuracy=float(accs.mean()), note=f"{draws} draws, sigma {sigma}: mean noisy test acc",
                  extra={"draws_per_s": draws / dt})


# ------------------------------------------------------------------------------------------- sides

PRECISIONS = typing.get_args(Matrix.model_fields["precision"].annotation)  # the matrix's choices
SSL_CELLS = ("ssl-simclr", "ssl-moco", "ssl-byol", "ssl-simsiam", "ssl-supcl")
CELLS = ("sl-small-cnn", "sl-resnet18", "em", "em-resnet18", "at", "simclr", *SSL_CELLS, "certify", "cp", "cp-noanomaly", "tp")


def run_side(cell: str, impl: str, device: str, args: argparse.Namespace) -> Result | None:
    """One repetition of one side of one cell, in this (fresh) process. Both sides tune the
    allocator as :class:`benchmark.runner.Runner` does (the reference as a careful user would)."""
    dev = torch.device(device)
    ctx = RunContext(device=dev, precision=args.precision)  # uebench's side; the reference always runs float32, as the official code
    if args.threads:
        torch.set_num_threads(args.threads)
    if dev.type == "cpu":
        tune_cpu_allocator()
    train, test = load_cifar(50_000 if args.full else 5_000)

    def subset(k: int | None) -> ImageDataset:
        return train if args.full or k is None or k >= len(train) else train.select(torch.arange(k))

    ue = impl == "uebench"
    if cell.startswith("sl-"):
        arch = cell[3:]
        data = subset(2048) if arch == "small-cnn" else subset(2 * 128)  # --quick: a 2,048-image epoch / 2 batches
        # test accuracy (the equal-accuracy check) for the small CNN; ResNet-18 inference on 10k
        # images would dominate a quick CPU run
        t = test if (arch == "small-cnn" or args.full) else None
        return sl_uebench(arch, data, t, ctx) if ue else sl_reference(arch, data, t, dev, args.workers)
    if cell == "em":
        data = subset(1024)
        return em_uebench(data, ctx) if ue else em_reference(data, dev, args.workers)
    if cell == "em-resnet18":  # the paper's generator: ResNet-18, 20 PGD steps; 5,120 images (10 batches) in both modes
        data = train.select(torch.arange(min(len(train), 5_120)))
        return em_uebench(data, ctx, 20, "resnet18") if ue else em_reference(data, dev, args.workers, 20, "resnet18")
    if cell == "at":
        nb = len(train) // 128 if args.full else 2
        return at_uebench(train, ctx, nb) if ue else at_reference(train, dev, nb, args.workers)
    if cell == "simclr":
        return simclr_uebench(subset(2048), ctx) if ue else None
    if cell in SSL_CELLS:  # --quick: 2,048 images (the quick profile's batch 64: 32 steps); --full on CUDA: the paper profile
        from reference_ssl import ssl_reference

        data = subset(2048)
        name = cell[4:]
        return ssl_uebench(name, data, ctx) if ue else ssl_reference(name, data, dev, args.workers, "paper" if dev.type == "cuda" else "quick")
    if cell == "certify":  # --quick: 10 draws on 2,048 test images (4 reference batches); --full: 100 on all
        draws, t = (100, test) if args.full else (10, test.select(torch.arange(2048)))
        return certify_uebench(train, t, ctx, draws) if ue else certify_reference(certify_model(train, ctx), t, dev, draws, args.workers)
    if cell in ("cp", "cp-noanomaly", "tp"):  # --quick: 2,048 images (4 batches of 512)
        data = subset(2048)
        if ue:
            return cp_uebench(data, ctx, cell) if cell.startswith("cp") else tp_uebench(data, ctx)
        from reference_contrastive import cp_reference, tp_reference

        def ref(d: ImageDataset) -> Result:
            if cell == "tp":
                return tp_reference(d, args.workers, device=dev)
            return cp_reference(d, args.workers, anomaly=cell == "cp", device=dev)

        if dev.type == "cuda":  # first-use kernel set-up, as on uebench's side
            ref(data.select(torch.arange(512)))
        return ref(data)
    raise SystemExit(f"bench: unknown cell {cell!r}")


def side_child(cell: str, impl: str, device: str, args: argparse.Namespace, precision: str = "auto") -> Result | None:
    """Run :func:`run_side` in a fresh interpreter: each side gets its own allocator settings, heap and peak RSS."""
    cmd = [sys.executable, __file__, "--side", cell, impl, device, "--workers", str(args.workers), "--threads", str(args.threads),
           "--precision", precision]
    if args.full:
        cmd.append("--full")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    if r.returncode != 0:
        print(f"  {cell} {impl} {device}: failed\n{r.stderr[-2000:]}", file=sys.stderr)
        return None
    doc = json.loads(r.stdout.strip().splitlines()[-1])
    return None if doc is None else Result(**doc)


# ------------------------------------------------------------------------------------------ report


def table(results: list[Result]) -> str:
    """A markdown table; ratio = uebench rate / reference rate for the same cell and device."""
    ref = {(r.cell, r.device): r.rate for r in results if r.impl == "reference"}
    lines = [
        "| cell | device | impl | images | s | rate | unit | ratio | peak MiB | acc | note |",
        "|---|---|---|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for r in results:
        ratio = f"{r.rate / ref[(r.cell, r.device)]:.2f}x" if r.impl == "uebench" and (r.cell, r.device) in ref else ""
        acc = "" if r.accuracy is None else f"{100 * r.accuracy:.1f}"
        impl = f"{r.impl} ({r.extra['precision']})" if r.impl == "uebench" and r.extra.get("precision", "auto") != "auto" else r.impl
        lines.append(f"| {r.cell} | {r.device} | {impl} | {r.images} | {r.seconds:.2f} | {r.rate:,.0f} | {r.unit} | {ratio} | {r.peak_mib:,.0f} | {acc} | {r.note} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", default=True, help="5k images, few batches (default)")
    mode.add_argument("--full", action="store_true", help="50k images, full epochs (long on CPU)")
    ap.add_argument("--json", type=Path, help="write every result as JSON here")
    ap.add_argument("--cells", default="sl-small-cnn,sl-resnet18,em,at,simclr,certify", help="comma-separated cells")
    ap.add_argument("--devices", default="auto", help="cpu, cuda or auto (cpu, plus cuda when present)")
    ap.add_argument("--workers", type=int, default=0,
                    help="reference DataLoader num_workers (official code: 2-4; 0 is faster on a 2-core machine)")
    ap.add_argument("--reps", type=int, default=2, help="alternating repetitions per cell; the fastest is kept")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    ap.add_argument("--precision", default="auto",
                    help="uebench's matrix precision: auto (bf16 autocast on CUDA only), float32 or bfloat16; a comma list "
                         "(float32,bfloat16) times uebench in each, alternating with the reference; the reference runs float32")
    ap.add_argument("--no-reference", action="store_true", help="time uebench only")
    ap.add_argument("--no-rss", action="store_true", help="skip the 5k/20k/50k peak-RSS scaling runs")
    ap.add_argument("--side", nargs=3, metavar=("CELL", "IMPL", "DEVICE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.side:
        r = run_side(*args.side, args)
        if r is not None and r.impl == "uebench":
            r.extra["precision"] = args.precision
        print(json.dumps(None if r is None else asdict(r)))
        return 0

    precisions = [p.strip() for p in args.precision.split(",") if p.strip()]
    bad = [p for p in precisions if p not in PRECISIONS]
    if bad or not precisions:
        ap.error(f"--precision: {', '.join(bad) or 'empty'} (one or more of {', '.join(PRECISIONS)})")
    if args.threads:
        torch.set_num_threads(args.threads)
    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.devices == "auto" else args.devices.split(",")
    print(f"bench: {'50k' if args.full else '5k'} CIFAR-10 training images ({NPZ}); torch threads {torch.get_num_threads()}; "
          "every repetition of every side in a fresh process", file=sys.stderr)
    results: list[Result] = []
    for name in devices:
        for cell in cells:
            if cell not in CELLS:
                print(f"  {cell}: unknown cell, skipped (cells: {', '.join(CELLS)})", file=sys.stderr)
                continue
            no_ref = args.no_reference or cell == "simclr"  # simclr has no reference
            sides = [("uebench", p) for p in precisions] + ([] if no_ref else [("reference", "float32")])
            best: dict[tuple[str, str], Result] = {}
            # alternate the sides `reps` times (the load on a shared machine drifts); keep each side's fastest
            for _ in range(args.reps):
                for impl, precision in sides:
                    r = side_child(cell, impl, name, args, precision)
                    if r is None:
                        continue
                    what = f"{r.impl} {precision}" if r.impl == "uebench" and len(precisions) > 1 else r.impl
                    print(f"  {r.cell:<16} {r.device:<5} {what:<17} {r.rate:10,.0f} {r.unit}  ({r.seconds:.1f} s, peak {r.peak_mib:,.0f} MiB)", file=sys.stderr)
                    if (impl, precision) not in best or r.seconds < best[(impl, precision)].seconds:
                        best[(impl, precision)] = r
            for r in best.values():
                r.extra["repetitions"] = args.reps
                results.append(r)
            if args.json:  # after every cell: a run stopped by a time limit keeps what it measured
                write_json(args, results, [])

    rss: list[dict[str, Any]] = []
    if not args.no_rss:
        print("bench: peak RSS at 5k / 20k / 50k images (child processes)", file=sys.stderr)
        rss = rss_scaling(["sl", "em"], [5_000, 20_000, 50_000])

    print(table(results))
    if rss:
        print()
        print(rss_table(rss))
    if args.json:
        write_json(args, results, rss)
        print(f"bench: wrote {args.json}", file=sys.stderr)
    return 0


def write_json(args: argparse.Namespace, results: list[Result], rss: list[dict[str, Any]]) -> None:
    """Write every result so far (and the RSS rows) to ``--json``, replacing the file whole."""
    doc = {"meta": meta(args), "results": [dict(asdict(r), rate=r.rate) for r in results], "rss": rss}
    tmp = args.json.with_name(args.json.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=str))
    tmp.replace(args.json)


if __name__ == "__main__":
    raise SystemExit(main())
