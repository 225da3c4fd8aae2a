"""Throughput of the two expensive defenses, uebench against a re-creation of the official loops on
the same data, each repetition of each side in a fresh process (as ``bench.py``):

- ``ueraser-max``: training steps of the ``sl`` loop with the ``ueraser-max`` hooks (K = 5 kornia
  augmentation calls and forwards per step, worst copy per sample) against APBench ``train.py``'s
  UEraser branch: a PIL/torchvision DataLoader (crop + flip), ``defense/ueraser.py``'s ``UEraser``
  (which builds its ``K.AugmentationSequential`` on every call), 5 augment+forward passes filling a
  ``[5, B]`` loss tensor, max, mean, ``.item()`` per step.
- ``ueraser-max-tile``: the same with ``repeat_mode: tile`` against lafeat/ueraser ``ueraser.py``'s
  ``adversarial_augmentation_loss`` (one module built once, the batch tiled 5x, one forward).
- ``i-bau``: the ``i-bau`` defense's ``repair`` against YiZeng623/I-BAU ``defense.py`` +
  ``hypergrad.py`` (inner maximisation with ``loss.backward(retain_graph=True)``, which also fills
  parameter gradients; ``hg.fixed_point`` with K = 5: parameter lists, a zero first adjoint, a
  ``float(torch.norm(...))`` tolerance check per iteration; ``random.sample`` for the 1 %).

Both sides run the same network (the quick profile's small CNN, uebench's module; the reference in
the default memory format, fp32), the same hyperparameters, and a hold-out / training subset of the
shared CIFAR-10 JPEG-75 copy. Only ratios from one run are meaningful on a shared machine.

    PYTHONPATH=$PWD python benchmarks/bench_defenses.py                 # both cells, --reps 2
    PYTHONPATH=$PWD python benchmarks/bench_defenses.py --cells i-bau --reps 3 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(Path(__file__).resolve().parent)]

from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import RunContext
from benchmark.models import build_classifier
from benchmark.runtime import tune_cpu_allocator
from benchmark.training import SGDRecipe, train_supervised

from common import Result, load_cifar, meta, timed
from reference import ref_loader, ref_model

CELLS = ("ueraser-max", "ueraser-max-tile", "i-bau")
K_REPEATS = 5


# ---------------------------------------------------------------------------------------- UEraser


def ueraser_uebench(train: ImageDataset, batches: int, mode: str) -> Result:
    from plugins.defenses.ueraser import UEraserMax

    dev = torch.device("cpu")
    ctx = RunContext(device=dev)
    mean, std = train.mean_std()
    data = train.select(torch.arange(batches * 128))
    defense = UEraserMax(UEraserMax.Params(repeat_mode=mode))
    warm = build_classifier("small-cnn", 3, 10, mean, std, dev)
    train_supervised(warm, train.select(torch.arange(128)), SGDRecipe(epochs=1), ctx, hooks=defense.train_hooks(ctx))
    torch.manual_seed(0)
    model = build_classifier("small-cnn", 3, 10, mean, std, dev)
    hooks = defense.train_hooks(ctx)
    _, dt, peak = timed(dev, lambda: train_supervised(model, data, SGDRecipe(epochs=1, batch_size=128), ctx, hooks=hooks))
    cell = "ueraser-max" if mode == "loop" else "ueraser-max-tile"
    return Result(cell, "cpu", "uebench", len(data), dt, peak, unit=f"img/s (K={K_REPEATS})")


def _apbench_ueraser(x: torch.Tensor) -> torch.Tensor:
    """APBench ``defense/ueraser.py`` ``UEraser``: the augmentation module is built on every call."""
    import kornia.augmentation as K

    aug = K.AugmentationSequential(
        K.RandomPlasmaBrightness(roughness=(0.3, 0.7), intensity=(0.5, 1.0), same_on_batch=False, p=1.0, keepdim=True),
        K.RandomPlasmaContrast(roughness=(0.3, 0.7), p=1.0),
        K.RandomChannelShuffle(same_on_batch=False, p=0.5, keepdim=True),
        K.auto.TrivialAugment(),
    )
    return aug(x)


def ueraser_reference(train: ImageDataset, batches: int, mode: str, workers: int) -> Result:
    import kornia.augmentation as K

    dev = torch.device("cpu")
    mean, std = train.mean_std()
    data = train.select(torch.arange(batches * 128))
    loader = ref_loader(data, 128, augment=True, shuffle=True, drop_last=True, workers=workers, device=dev)
    tiled_aug = K.AugmentationSequential(  # ueraser.py's module-level UEraser (p = 1 as APBench, to do the same work)
        K.RandomPlasmaBrightness(roughness=(0.3, 0.7), intensity=(0.5, 1.0), same_on_batch=False, p=1.0, keepdim=True),
        K.RandomPlasmaContrast(roughness=(0.3, 0.7), p=1.0),
        K.RandomChannelShuffle(same_on_batch=False, p=0.5, keepdim=True),
        K.auto.TrivialAugment(),
    )

    def epoch(model: nn.Module, opt: torch.optim.Optimizer, loader: torch.utils.data.DataLoader) -> None:
        model.train()
        train_loss, correct, total = 0.0, 0, 0
        for inputs, targets in loader:
            inputs, targets = inputs.to(dev), targets.to(dev)
            opt.zero_grad()
            if mode == "loop":  # APBench train.py, epoch < repeat_epoch
                result = torch.empty((K_REPEATS, inputs.shape[0])).to(dev)
                for i in range(K_REPEATS):
                    out = model(_apbench_ueraser(inputs))
                    result[i] = F.cross_entropy(out, targets, reduction="none")
                loss = torch.mean(torch.max(result, dim=0).values)
            else:  # ueraser.py adversarial_augmentation_loss
                images = inputs.tile(K_REPEATS, 1, 1, 1)
                out = model(tiled_aug(images))
                losses = F.cross_entropy(out, targets.tile(K_REPEATS), reduction="none")
                loss = torch.mean(torch.max(losses.view(K_REPEATS, -1), dim=0).values)
                out = out[-inputs.shape[0]:]
            loss.backward()
            opt.step()
            train_loss += loss.item()
            correct += out.max(1)[1].eq(targets).sum().item()
            total += targets.size(0)

    warm = ref_model("small-cnn", mean, std, dev)
    epoch(warm, torch.optim.SGD(warm.parameters(), lr=0.1), ref_loader(train.select(torch.arange(128)), 128, augment=True,
                                                                       shuffle=True, drop_last=True, workers=workers, device=dev))
    torch.manual_seed(0)
    model = ref_model("small-cnn", mean, std, dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    _, dt, peak = timed(dev, lambda: epoch(model, opt, loader))
    cell = "ueraser-max" if mode == "loop" else "ueraser-max-tile"
    note = "APBench train.py" if mode == "loop" else "lafeat/ueraser ueraser.py"
    return Result(cell, "cpu", "reference", len(data), dt, peak, unit=f"img/s (K={K_REPEATS})", note=note)


# ------------------------------------------------------------------------------------------ I-BAU


def _victim(train: ImageDataset) -> nn.Module:
    """The model both sides repair: a small CNN trained one epoch on 1,024 images (setup, not timed)."""
    ctx = RunContext()
    torch.manual_seed(0)
    model = build_classifier("small-cnn", 3, 10, *train.mean_std())
    train_supervised(model, train.select(torch.arange(1024)), SGDRecipe(epochs=1), ctx)
    return model.eval()


def ibau_uebench(train: ImageDataset, holdout: ImageDataset, rounds: int) -> Result:
    import copy

    from plugins.defenses.ibau import IBAU

    victim = _victim(train)
    defense = IBAU(IBAU.Params(rounds=rounds))
    IBAU(IBAU.Params(rounds=1)).repair(copy.deepcopy(victim), holdout.select(torch.arange(200)), RunContext())  # warm-up
    _, dt, peak = timed(torch.device("cpu"), lambda: defense.repair(victim, holdout, RunContext()))
    return Result("i-bau", "cpu", "uebench", rounds * len(holdout), dt, peak, unit="img/s (hold-out x rounds)")


def _ref_fixed_point(params, hparams, K, fp_map, outer_loss, tol=1e-10):  # type: ignore[no-untyped-def]
    """hypergrad.fixed_point as the reference runs it (parameter lists, zero start, tolerance check)."""
    params = [w.detach().requires_grad_(True) for w in params]
    o_loss = outer_loss(params, hparams)
    grad_outer_w = torch.autograd.grad(o_loss, params, retain_graph=True, allow_unused=True)
    grad_outer_h = torch.autograd.grad(o_loss, hparams, retain_graph=True, allow_unused=True)
    grad_outer_h = [torch.zeros_like(h) if g is None else g for g, h in zip(grad_outer_h, hparams)]
    w_mapped = fp_map(params, hparams)
    vs = [torch.zeros_like(w) for w in params]
    vs_vec = torch.cat([v.reshape(-1) for v in vs])
    for _ in range(K):
        prev = vs_vec
        vs = torch.autograd.grad(w_mapped, params, grad_outputs=vs, retain_graph=True)
        vs = [v + g for v, g in zip(vs, grad_outer_w)]
        vs_vec = torch.cat([v.reshape(-1) for v in vs])
        if float(torch.norm(vs_vec - prev)) < tol:
            break
    grads = torch.autograd.grad(w_mapped, hparams, grad_outputs=vs, allow_unused=True)
    grads = [g + v if g is not None else v for g, v in zip(grads, grad_outer_h)]
    for h, g in zip(hparams, grads):
        if h.grad is None:
            h.grad = torch.zeros_like(h)
        h.grad += g


def ibau_reference(train: ImageDataset, holdout: ImageDataset, rounds: int) -> Result:
    """YiZeng623/I-BAU defense.py's loop on the same victim and hold-out (CPU instead of 'cuda')."""
    import copy

    dev = torch.device("cpu")
    victim = _victim(train)
    hx = holdout.x.float().div(255)
    unl_set = torch.utils.data.TensorDataset(hx, holdout.y)

    def run(model: nn.Module, unl_set: torch.utils.data.TensorDataset, n_rounds: int) -> None:
        unlloader = torch.utils.data.DataLoader(unl_set, batch_size=100, shuffle=False, num_workers=0)
        outer_opt = torch.optim.Adam(model.parameters(), lr=0.001)
        images_list, labels_list = [], []
        for images, labels in unlloader:
            images_list.append(images)
            labels_list.append(labels)
        state = {"batchnum": 0}

        def loss_inner(perturb, model_params):  # type: ignore[no-untyped-def]
            images = images_list[0].to(dev)
            labels = labels_list[0].long().to(dev)
            per_logits = model.forward(images + perturb[0])
            loss = F.cross_entropy(per_logits, labels, reduction="none")
            return torch.mean(-loss) + 0.001 * torch.pow(torch.norm(perturb[0]), 2)

        def loss_outer(perturb, model_params):  # type: ignore[no-untyped-def]
            images, labels = images_list[state["batchnum"]].to(dev), labels_list[state["batchnum"]].long().to(dev)
            patching = torch.zeros_like(images, device=dev)
            number = images.shape[0]
            rand_idx = random.sample(list(np.arange(number)), int(number * 0.01))
            patching[rand_idx] = perturb[0]
            return nn.CrossEntropyLoss()(model(images + patching), labels)

        def inner_step(params, hparams):  # type: ignore[no-untyped-def]  # hg.GradientDescent(loss_inner, 0.1)
            grads = torch.autograd.grad(loss_inner(params, hparams), params, create_graph=True)
            return [w - 0.1 * g for w, g in zip(params, grads)]

        model.eval()
        for _ in range(n_rounds):
            batch_pert = torch.zeros_like(unl_set.tensors[0][:1], requires_grad=True, device=dev)
            batch_opt = torch.optim.SGD(params=[batch_pert], lr=10)
            for images, labels in unlloader:
                images = images.to(dev)
                ori_lab = torch.argmax(model.forward(images), axis=1).long()
                loss = F.cross_entropy(model.forward(images + batch_pert), ori_lab, reduction="mean")
                loss_regu = torch.mean(-loss) + 0.001 * torch.pow(torch.norm(batch_pert), 2)
                batch_opt.zero_grad()
                loss_regu.backward(retain_graph=True)
                batch_opt.step()
            pert = batch_pert
            for batchnum in range(len(images_list)):
                state["batchnum"] = batchnum
                outer_opt.zero_grad()
                _ref_fixed_point([pert], list(model.parameters()), 5, inner_step, loss_outer)
                outer_opt.step()

    run(copy.deepcopy(victim), torch.utils.data.TensorDataset(hx[:200], holdout.y[:200]), 1)  # warm-up
    random.seed(0)
    _, dt, peak = timed(dev, lambda: run(victim, unl_set, rounds))
    return Result("i-bau", "cpu", "reference", rounds * len(holdout), dt, peak, unit="img/s (hold-out x rounds)",
                  note="YiZeng623/I-BAU defense.py + hypergrad.py")


# ------------------------------------------------------------------------------------------- sides


def run_side(cell: str, impl: str, args: argparse.Namespace) -> Result:
    if args.threads:
        torch.set_num_threads(args.threads)
    if impl == "uebench":
        tune_cpu_allocator()
    train, _ = load_cifar(5_000)
    if cell.startswith("ueraser"):
        mode = "loop" if cell == "ueraser-max" else "tile"
        return ueraser_uebench(train, args.batches, mode) if impl == "uebench" else ueraser_reference(train, args.batches, mode, args.workers)
    holdout = train.select(torch.arange(len(train) - args.holdout, len(train)))
    return ibau_uebench(train, holdout, args.rounds) if impl == "uebench" else ibau_reference(train, holdout, args.rounds)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", default=",".join(CELLS))
    ap.add_argument("--reps", type=int, default=2, help="alternating repetitions per side; the fastest is kept")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--workers", type=int, default=0, help="reference DataLoader num_workers")
    ap.add_argument("--batches", type=int, default=4, help="UEraser: training batches of 128 timed")
    ap.add_argument("--holdout", type=int, default=500, help="I-BAU: hold-out images (batches of 100)")
    ap.add_argument("--rounds", type=int, default=1, help="I-BAU: rounds timed")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--side", nargs=2, metavar=("CELL", "IMPL"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.side:
        print(json.dumps(asdict(run_side(*args.side, args))))
        return 0
    results: list[Result] = []
    for cell in [c for c in args.cells.split(",") if c]:
        if cell not in CELLS:
            raise SystemExit(f"bench_defenses: unknown cell {cell!r} (cells: {', '.join(CELLS)})")
        best: dict[str, Result] = {}
        for _ in range(args.reps):
            for impl in ("uebench", "reference"):
                cmd = [sys.executable, __file__, "--side", cell, impl, "--threads", str(args.threads), "--workers", str(args.workers),
                       "--batches", str(args.batches), "--holdout", str(args.holdout), "--rounds", str(args.rounds)]
                env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
                p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=False)
                if p.returncode != 0:
                    print(f"  {cell} {impl}: failed\n{p.stderr[-2000:]}", file=sys.stderr)
                    continue
                r = Result(**json.loads(p.stdout.strip().splitlines()[-1]))
                print(f"  {cell:<17} {impl:<10} {r.rate:9.1f} {r.unit} ({r.seconds:.1f} s)", file=sys.stderr)
                if impl not in best or r.seconds < best[impl].seconds:
                    best[impl] = r
        results += list(best.values())
    print("| cell | impl | images | s | rate | unit | ratio | peak MiB | note |\n|---|---|---:|---:|---:|---|---:|---:|---|")
    ref = {r.cell: r.rate for r in results if r.impl == "reference"}
    for r in results:
        ratio = f"{r.rate / ref[r.cell]:.2f}x" if r.impl == "uebench" and r.cell in ref else ""
        print(f"| {r.cell} | {r.impl} | {r.images} | {r.seconds:.2f} | {r.rate:,.1f} | {r.unit} | {ratio} | {r.peak_mib:,.0f} | {r.note} |")
    if args.json:
        info = {**meta(args), "torch_threads": args.threads or torch.get_num_threads()}  # what each side ran with
        args.json.write_text(json.dumps({"meta": info, "results": [dict(asdict(r), rate=r.rate) for r in results]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
