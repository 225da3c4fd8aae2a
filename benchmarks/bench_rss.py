"""Peak RSS of an ``sl`` epoch and an ``em`` outer iteration as the training set grows (5k, 20k,
50k images), each in a fresh process: what ``benchmarks/bench.py`` reports under "Memory" (its
``--no-rss`` skips it). Run alone: ``PYTHONPATH=$PWD python benchmarks/bench_rss.py KIND N`` prints
one child's JSON line."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parents[1]
for p in (REPO, REPO / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from benchmark.augment import crop_flip
from benchmark.interfaces import RunContext, TrainHooks
from benchmark.models import build_classifier
from benchmark.runtime import tune_cpu_allocator
from benchmark.training import SGDRecipe, train_supervised

from common import _status, load_cifar, timed


class _Enough(Exception):
    """Raised by :class:`_StopAfter` to end an epoch early."""


class _StopAfter(TrainHooks):
    """Plain ERM for ``k`` steps, then stop the loop (the memory of an epoch does not grow with the
    number of steps taken: every step streams one uint8 batch)."""

    def __init__(self, k: int) -> None:
        self.k = k

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, criterion: Callable[..., torch.Tensor]) -> torch.Tensor:
        self.k -= 1
        if self.k < 0:
            raise _Enough
        return criterion(model(x), y)


class _TinyNet(nn.Module):
    """A 1-conv net (8 channels) used only by the EM memory run, so a 50k outer iteration takes
    seconds: what grows with N (the float delta, the released uint8 poison) does not depend on the net."""

    feature_dim = 8

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, 8, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(F.relu(self.conv(x)), 1).flatten(1)


def rss_child(kind: str, n: int, sl_batches: int = 20) -> dict[str, Any]:
    """In a fresh process: load ``n`` images, then the peak RSS of an sl epoch (small CNN, stopped
    after ``sl_batches`` batches of 128) or of one em outer iteration (1 PGD step per batch, tiny net)."""
    from benchmark.registry import get_registry

    if kind == "em":
        from benchmark.models import BUILTIN_MODELS

        BUILTIN_MODELS["bench-tiny"] = _TinyNet  # before the registry is built in this process
    tune_cpu_allocator()  # as the runner does
    train, _ = load_cifar(n)
    dev = torch.device("cpu")
    # one-time costs that do not depend on N (plugin imports, a first model) before the baseline
    get_registry()
    build_classifier("small-cnn", 3, 10, [0.5] * 3, [0.25] * 3, dev)(torch.zeros(2, 3, 32, 32)).sum().backward()
    gc.collect()
    base = _status("VmRSS")
    if kind == "sl":
        ctx = RunContext(device=dev)
        mean, std = train.mean_std()
        model = build_classifier("small-cnn", 3, 10, mean, std, dev)

        def run() -> None:
            try:
                train_supervised(model, train, SGDRecipe(epochs=1, batch_size=128), ctx, hooks=_StopAfter(sl_batches), augment=crop_flip)
            except _Enough:
                pass

        _, dt, peak = timed(dev, run)
        what = f"sl small-cnn epoch, first {sl_batches} batches"
    else:
        from plugins.attacks.em import EM

        em = EM(EM.Params(arch="bench-tiny", steps=1, max_outer=1))
        _, dt, peak = timed(dev, lambda: em.generate(train, RunContext(device=dev)))
        what = "em outer iteration, 1 PGD step, 1-conv net"
    return {"kind": kind, "n": n, "what": what, "dataset_mib": train.x.numel() / 2**20, "rss_before_mib": base / 2**20,
            "peak_rss_mib": peak, "growth_mib": peak - base / 2**20, "seconds": dt}


def rss_scaling(kinds: list[str], sizes: list[int]) -> list[dict[str, Any]]:
    out = []
    for kind in kinds:
        for n in sizes:
            cmd = [sys.executable, __file__, kind, str(n)]
            env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
            r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=False)
            if r.returncode != 0:
                print(r.stderr[-2000:], file=sys.stderr)
                continue
            out.append(json.loads(r.stdout.strip().splitlines()[-1]))
            print(f"  rss {kind} n={n}: peak {out[-1]['peak_rss_mib']:.0f} MiB", file=sys.stderr)
    return out


def rss_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| cell | images | uint8 data MiB | RSS before MiB | peak RSS MiB | growth MiB | s | what |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['kind']} | {r['n']} | {r['dataset_mib']:.0f} | {r['rss_before_mib']:.0f} | {r['peak_rss_mib']:.0f} | {r['growth_mib']:.0f} | {r['seconds']:.1f} | {r['what']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("sl", "em") or not sys.argv[2].isdigit():
        raise SystemExit("usage: bench_rss.py {sl,em} N")
    print(json.dumps(rss_child(sys.argv[1], int(sys.argv[2]))))
