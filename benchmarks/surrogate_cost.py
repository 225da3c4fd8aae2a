"""Cost of PUE's noise-robust training (the ``certified-learnability`` surrogate, the ``pue``
generator's robust model steps) and of the certification draws, per profile.

For each profile it times, on the same device and in the same run:

- ``sl step``: one plain training step (batch of the recipe, crop + flip, SGD): the unit;
- ``robust step``: one batch of :func:`benchmark.weight_noise.robust_step` at the profile's noise
  levels and draws (``1 + (levels - 1) * draws`` forward/backward passes: the level-0 draws are one
  pass; the official ``train_batch_robust`` makes ``levels * draws``);
- ``draw``: one certification draw (noise on every parameter, BN folded, the profile's test images);

and projects the surrogate's training time (robust step x batches per epoch x epochs on the 5k
quick set or the 50k paper set) and the certification time (draws x draw). Paper-profile steps of
a ResNet-18 take minutes on a CPU: ``--paper-passes`` times that many passes of one robust batch and
scales (the per-pass cost does not depend on the level).

Usage (from the repository root; run it through /work/bin/heavy on the shared machine)::

    PYTHONPATH=$PWD python benchmarks/surrogate_cost.py                     # quick + paper, CPU
    PYTHONPATH=$PWD python benchmarks/surrogate_cost.py --profiles quick --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmark.augment import crop_flip
from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import RunContext
from benchmark.models import build_classifier
from benchmark.params import resolve_params
from benchmark.training import make_optimizer, to_model
from benchmark.weight_noise import noise_levels, robust_step
from plugins.metrics.certified import CertifiedLearnability, noisy_accuracies


def synthetic(n: int, seed: int = 0) -> ImageDataset:
    g = torch.Generator().manual_seed(seed)
    return ImageDataset(torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8), torch.arange(n) % 10, tuple(str(i) for i in range(10)))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_it(device: torch.device, fn: Any, reps: int) -> float:
    fn()  # warm-up
    sync(device)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def profile_cost(profile: str, device: torch.device, reps: int, paper_passes: int) -> dict[str, Any]:
    p = resolve_params(CertifiedLearnability, profile, {})
    ctx = RunContext(device=device)
    levels = noise_levels(p.train_sigma, p.train_sigma_step)
    passes = 1 + (len(levels) - 1) * p.train_draws
    torch.manual_seed(0)
    model = build_classifier(p.surrogate_arch, 3, 10, [0.0] * 3, [1.0] * 3, device).train()
    opt = make_optimizer(model.parameters(), CertifiedLearnability(p).recipe())
    data = synthetic(p.surrogate_batch_size)
    g = torch.Generator().manual_seed(0)
    x = crop_flip(data.float_batch(torch.arange(len(data)), device), g)
    y = data.y.to(device)

    def sl_step() -> None:
        loss = torch.nn.functional.cross_entropy(model(to_model(x)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    sl = time_it(device, sl_step, reps)
    if passes <= paper_passes or profile != "paper":
        timed_levels, timed_draws, timed_passes = levels, p.train_draws, passes
    else:  # time a shorter robust batch and scale by passes
        timed_levels, timed_draws = (0.0, p.train_sigma_step), paper_passes - 1
        timed_passes = paper_passes
    gen = torch.Generator(device=device).manual_seed(0)
    rob = time_it(device, lambda: robust_step(model, opt, x, y, ctx, levels=timed_levels, draws=timed_draws, generator=gen, grad_clip=5.0), reps)
    rob_batch = rob / timed_passes * passes
    n_train = 50_000 if profile == "paper" else 5_000
    batches = n_train // p.surrogate_batch_size
    n_test = p.test_images or 10_000
    model.eval()
    draw = time_it(device, lambda: noisy_accuracies(model, synthetic(min(n_test, 2048), 1), ctx, sigma=p.sigma, draws=2, seed=0), 1) / 2
    draw *= n_test / min(n_test, 2048)
    return {
        "profile": profile,
        "device": str(device),
        "arch": p.surrogate_arch,
        "levels": list(levels),
        "train_draws": p.train_draws,
        "passes_per_batch": passes,
        "official_passes_per_batch": len(levels) * p.train_draws,
        "sl_step_s": round(sl, 4),
        "robust_batch_s": round(rob_batch, 3),
        "robust_over_sl": round(rob_batch / sl, 1),
        "measured_passes": timed_passes,
        "surrogate_images": n_train,
        "surrogate_epochs": p.surrogate_epochs,
        "surrogate_train_h": round(rob_batch * batches * p.surrogate_epochs / 3600, 3),
        "sl_same_epochs_h": round(sl * batches * p.surrogate_epochs / 3600, 4),
        "draws": p.draws,
        "test_images": n_test,
        "draw_s": round(draw, 3),
        "certify_min": round(draw * p.draws / 60, 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profiles", default="quick,paper")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--paper-passes", type=int, default=3, help="passes actually run per paper-profile robust batch")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    rows = [profile_cost(pr, device, a.reps, a.paper_passes) for pr in a.profiles.split(",")]
    head = ["profile", "arch", "passes_per_batch", "sl_step_s", "robust_batch_s", "robust_over_sl", "surrogate_train_h", "sl_same_epochs_h", "draw_s", "certify_min"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(str(r[h]) for h in head) + " |")
    if a.json:
        meta = {"torch": torch.__version__, "python": platform.python_version(), "threads": a.threads, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
        Path(a.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
