"""The cost model of the ``unlearnable-distance`` metric: image passes per cell, and their time.

For each architecture it measures, on this machine and in one process, the rate (images/s) of a
full training step (what a victim's epoch costs), of a training step of one scored layer's weight
alone (every other parameter frozen, eval mode: what the sharpness rounds do; averaged over the
scored layers) and of an eval-mode forward pass. It then prints, for the metric's paper and quick
profiles, the image passes per scored run (exact counts from the params) and the predicted time,
in seconds here and in units of the victim's training epoch over the same images (which carries
over to other hardware as long as the three rates scale alike: an extrapolation, say so).

    PYTHONPATH=$PWD python benchmarks/ud_cost.py [--archs small-cnn,resnet18] [--batches 6]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmark.models import build_classifier
from benchmark.sal import scored_layers
from plugins.metrics.unlearnable_distance import UnlearnableDistance


def _rate(step, batch: int, n: int) -> float:
    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return batch * n / (time.perf_counter() - t0)


def rates(arch: str, batch: int, n: int) -> dict[str, object]:
    torch.manual_seed(0)
    model = build_classifier(arch, 3, 10, [0.5] * 3, [0.25] * 3, torch.device("cpu")).to(memory_format=torch.channels_last)
    x = torch.rand(batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def full() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    model.train()
    r_full = _rate(full, batch, n)
    model.eval().requires_grad_(False)
    layers = scored_layers(model)
    params = dict(model.named_parameters())
    per_layer = []
    for name in layers:
        p = params[name]
        p.requires_grad_(True)

        def one(p=p) -> None:
            (g,) = torch.autograd.grad(F.cross_entropy(model(x), y), p)
            with torch.no_grad():
                p.add_(g, alpha=-1e-6)

        per_layer.append(_rate(one, batch, n))
        p.requires_grad_(False)
    with torch.no_grad():
        r_eval = _rate(lambda: model(x), batch, n)
    return {"full": r_full, "layers": per_layer, "eval": r_eval, "names": layers}


def cost(params: UnlearnableDistance.Params, r: dict, n_train: int, epochs: int, batch: int) -> dict[str, float]:
    """Image passes of one scored run and their predicted time."""
    n = min(params.scoring_images or n_train, n_train)
    bs = params.batch_size or batch
    per_pass = (n // bs) * bs if n >= bs else n  # drop-last
    train_pass = per_pass if params.steps is None else params.steps * bs
    scored = len([e for e in range(1, epochs + 1) if e % params.every == 0 or e == epochs])
    layers = len(r["layers"])
    rounds = params.iterations
    train_imgs = scored * layers * rounds * 2 * train_pass
    eval_imgs = scored * (layers * rounds * 2 * per_pass + (per_pass if params.reference_loss == "eval" else 0))
    seconds = scored * rounds * sum(2 * train_pass / rl + 2 * per_pass / r["eval"] for rl in r["layers"])
    victim_epoch = (n_train // batch) * batch / r["full"]
    return {"scored_epochs": scored, "train_images": train_imgs, "eval_images": eval_imgs, "seconds": seconds,
            "victim_epochs": seconds / victim_epoch, "victim_run_s": epochs * victim_epoch}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", default="small-cnn,resnet18")
    ap.add_argument("--batches", type=int, default=6, help="timed batches of 128 per rate")
    a = ap.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch 128, 32x32, CPU")
    print()
    print("| arch | full training step img/s | one-layer step img/s (mean over layers; min-max) | eval forward img/s |")
    print("|---|---:|---:|---:|")
    measured = {}
    for arch in a.archs.split(","):
        r = rates(arch, 128, a.batches)
        measured[arch] = r
        lay = r["layers"]
        mean = len(lay) / sum(1 / v for v in lay)  # harmonic: time-weighted
        print(f"| {arch} ({len(lay)} layers) | {r['full']:,.0f} | {mean:,.0f} ({min(lay):,.0f}-{max(lay):,.0f}) | {r['eval']:,.0f} |")
    print()
    print("| profile | victim | scored epochs | training image passes | eval image passes | predicted s here | in victim epochs | victim run s here |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    setups = [
        ("quick", "small-cnn", 5000, 20),  # the quick sl victim on the 5k subset
        ("paper", "small-cnn", 5000, 20),  # the faithful procedure at quick scale (the approximation study)
        ("paper", "resnet18", 50000, 50),  # the UD paper's run: ResNet-18, 50 epochs, CIFAR-10
        ("paper", "resnet18", 50000, 200),  # uebench's sl paper profile: 200 epochs
    ]
    for profile, arch, n_train, epochs in setups:
        if arch not in measured:
            continue
        over = UnlearnableDistance.profiles.get(profile, {})
        p = UnlearnableDistance.Params(**over)
        c = cost(p, measured[arch], n_train, epochs, 128)
        print(
            f"| {profile} | sl {arch}, {n_train // 1000}k, {epochs} ep | {c['scored_epochs']} | {c['train_images']:.3g} | {c['eval_images']:.3g} | "
            f"{c['seconds']:,.0f} | {c['victim_epochs']:,.0f} | {c['victim_run_s']:,.0f} |"
        )


if __name__ == "__main__":
    main()
