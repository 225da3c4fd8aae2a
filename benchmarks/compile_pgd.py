"""Does ``torch.compile`` speed up the CPU's hottest loop? One PGD input-gradient step (small CNN,
BatchNorm folded, channels_last, batch 512: EM's, TAP's and AT's inner step) eager against the same
model through ``torch.compile`` (inductor), alternating, one thread.

    PYTHONPATH=$PWD python benchmarks/compile_pgd.py [--mode default|max-autotune] [--reps 3]

Prints the compile time, ms per step on each side and the largest difference between the two
sides' next perturbations (0: the same step). A script, not a test (benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.folding import fold_batchnorm
from benchmark.models import build_classifier


def step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """One signed-gradient step on ``delta`` (0.8/255, projected onto 8/255), as :func:`benchmark.training.pgd`."""
    d = delta.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(model((x + d).clamp(0, 1)), y), d)
    return (d - 0.8 / 255 * g.sign()).clamp(-8 / 255, 8 / 255).detach()


def per_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, n: int = 10) -> float:
    d = torch.zeros_like(x)
    t = time.perf_counter()
    for _ in range(n):
        d = step(model, x, y, d)
    return (time.perf_counter() - t) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", default="default", help="torch.compile mode")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    eager = fold_batchnorm(build_classifier("small-cnn", 3, 10, [0.5] * 3, [0.25] * 3))
    x = torch.rand(512, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (512,))
    compiled = torch.compile(eager, mode=None if args.mode == "default" else args.mode, dynamic=False)
    t0 = time.perf_counter()
    per_step(compiled, x, y, 2)
    print(f"compile + 2 steps: {time.perf_counter() - t0:.1f} s ({args.mode}, torch {torch.__version__})")
    for rep in range(args.reps):
        e, c = per_step(eager, x, y), per_step(compiled, x, y)
        print(f"rep {rep}: eager {e * 1000:.0f} ms/step, compiled {c * 1000:.0f} ms/step, eager/compiled {e / c:.2f}")
    d = torch.zeros_like(x)
    print(f"largest difference of the next perturbation: {(step(eager, x, y, d) - step(compiled, x, y, d)).abs().max().item():.3g}")


if __name__ == "__main__":
    main()
