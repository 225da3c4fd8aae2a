"""Model FLOPs utilisation of the hot paths timed by ``benchmarks/bench.py`` (issue 19).

For each uebench result in a ``bench.py --json`` file, this counts the model FLOPs of the same work
(PyTorch's ``torch.utils.flop_counter`` formulas: convolutions and matrix products, forward and
backward, 2 FLOPs per multiply-add) by running the same code path on the CPU at a small size, and
divides the measured rate x FLOPs per unit of work by the accelerator's peak:

    MFU = rate [work units / s] x FLOPs per work unit / peak FLOP/s

Work units are those of each cell's ``images`` field: training images for ``sl-*``, ``simclr`` and ``ssl-*`` (two views each),
images of one outer iteration for ``em`` (its 10 model steps of 512 images spread over the set, as
in the cell), training images through 10 PGD steps + 1 training pass for ``at``, draws x test
images for ``certify``. Element-wise work (augmentation, normalisation, BN, optimiser) is not
counted, as MFU conventionally does not. The peak defaults to the H100/H200 SXM dense bf16 figure
(989 TFLOP/s; for float32 results the dense TF32 figure, 495 TFLOP/s, which is what CUDA's float32
convolutions use by default).

Usage::

    PYTHONPATH=$PWD python benchmarks/mfu.py benchmarks/results/cuda-h200-quick-XXXX.json [--md]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import RunContext, TrainHooks
from benchmark.models import build_classifier
from benchmark.training import SGDRecipe, train_supervised

PEAK_BF16 = 989e12  # H100 / H200 SXM, dense bf16 tensor cores
PEAK_TF32 = 495e12  # the same GPUs, dense TF32 (CUDA's default for float32 convolutions)


def synthetic(n: int, seed: int = 0) -> ImageDataset:
    """``n`` random CIFAR-shaped uint8 images with balanced labels: FLOPs do not depend on pixels."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.arange(n) % 10
    return ImageDataset(x, y, [str(i) for i in range(10)])


class _Flops(TorchDispatchMode):
    """Sums PyTorch's own per-op FLOP formulas (``flop_registry``) over every op that runs.
    ``FlopCounterMode`` itself cannot be used: its per-module tracking breaks
    ``torch.autograd.grad`` with respect to an input, which every PGD loop calls."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        f = flop_registry.get(func._overloadpacket)
        if f is not None:
            self.total += int(f(*args, **kwargs, out_val=out))
        return out


def count(fn: Callable[[], object]) -> int:
    """Total FLOPs of ``fn`` (forward and backward, input gradients included)."""
    with _Flops() as fc:
        fn()
    return fc.total


def flops_per_unit(cell: str, images: int, device: str = "cpu") -> float | None:
    """FLOPs per work unit of ``cell`` (see the module docstring), counted on the CPU in float32."""
    ctx = RunContext(device=torch.device("cpu"), precision="float32")
    torch.manual_seed(0)
    if cell.startswith("sl-"):
        data = synthetic(256)
        model = build_classifier(cell[3:], 3, 10, *data.mean_std(), ctx.device)
        return count(lambda: train_supervised(model, data, SGDRecipe(epochs=1, batch_size=128), ctx)) / 256
    if cell == "em":  # its model steps are a fixed cost spread over the set: FLOPs = a + b n, fitted at two sizes
        from plugins.attacks.em import EM

        def em(n: int) -> int:
            data = synthetic(n)
            return count(lambda: EM(EM.Params(arch="small-cnn", steps=10, max_outer=1)).generate(data, ctx))

        f1, f2 = em(512), em(1024)
        b = (f2 - f1) / 512
        return (f1 - 512 * b + b * images) / images
    if cell == "at":
        from plugins.defenses.at import AT

        data = synthetic(128)
        model = build_classifier("small-cnn", 3, 10, *data.mean_std(), ctx.device)
        hooks = AT(AT.Params(steps=10)).train_hooks(ctx)
        return count(lambda: train_supervised(model, data, SGDRecipe(epochs=1, batch_size=128), ctx, hooks=hooks)) / 128
    if cell == "certify":
        from plugins.metrics.certified import noisy_accuracies

        data = synthetic(512)
        model = build_classifier("small-cnn", 3, 10, *data.mean_std(), ctx.device).eval()
        return count(lambda: noisy_accuracies(model, data, ctx, sigma=0.01, draws=1, seed=0)) / 512
    if cell == "simclr":  # one pretraining epoch + the probe, as bench.py's cell times it on that device
        from bench import simclr_victim

        n = min(images, 1024)  # per image, both stages are linear in the set's size
        data = synthetic(n)
        victim = simclr_victim(device)
        return count(lambda: victim.fit(data, ctx, TrainHooks())) / n
    if cell.startswith("ssl-"):  # one pretraining step at the profile bench.py times on that device: FLOPs per image
        from reference_ssl import ssl_method, ssl_victim

        from benchmark.ssl.method import pretrain

        victim = ssl_victim(cell[4:], "paper" if device == "cuda" else "quick", epochs=1)
        data = synthetic(victim.params.batch_size)  # one batch: the loss's B x B (or B x queue) terms as timed
        method = ssl_method(victim, data, ctx)
        return count(lambda: pretrain(method, data, victim.pretrain_recipe(), ctx)) / len(data)
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json", type=Path, help="a bench.py --json file")
    ap.add_argument("--peak-bf16", type=float, default=PEAK_BF16)
    ap.add_argument("--peak-tf32", type=float, default=PEAK_TF32)
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    doc = json.loads(args.json.read_text())
    print("| cell | precision | rate | unit | GFLOP per unit | TFLOP/s | MFU |")
    print("|---|---|---:|---|---:|---:|---:|")
    cache: dict[tuple[str, int, str], float | None] = {}
    for r in doc["results"]:
        if r["impl"] != "uebench":
            continue
        key = (r["cell"], r["images"], r["device"])
        if key not in cache:
            cache[key] = flops_per_unit(*key)
        f = cache[key]
        if f is None:
            continue
        precision = r.get("extra", {}).get("precision", "auto")
        peak = args.peak_tf32 if precision == "float32" else args.peak_bf16
        tflops = r["rate"] * f / 1e12
        print(f"| {r['cell']} | {precision} | {r['rate']:,.0f} | {r['unit']} | {f / 1e9:.3f} | {tflops:.2f} | {100 * tflops * 1e12 / peak:.2f}% |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
