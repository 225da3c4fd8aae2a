"""Are uebench's contrastive views as hard as torchvision's? One encoder, two view pipelines.

``ssl_same_results.py`` finds uebench's pretraining loss below the CP pipeline's at every epoch.
The two differ in how they make views (batched tensor ops against per-sample PIL transforms), so
this holds everything else fixed: it pretrains one ``simclr`` encoder (quick profile, ``--epochs``
epochs, uebench's loop), then, in train mode without gradients, measures the NT-Xent loss (T 0.5)
of ``--images`` training images under views from each pipeline, each augmentation added in turn:
flip only; random resized crop (0.2-1) + flip; + colour jitter (p 0.8) and grayscale (p 0.2)
without hue; the full view. The same encoder sees both, so a gap is the views' doing.
torchvision's crop also runs on tensors (``RandomResizedCrop(antialias=True)`` per sample) to tell
its sampling from PIL's resampling.

    PYTHONPATH=$PWD python benchmarks/ssl_views.py --json benchmarks/results/ssl-views-COMMIT.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
for p in (REPO, REPO / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from reference_ssl import ssl_method, ssl_victim

from benchmark.augment import color_jitter, random_flip, random_grayscale, random_resized_crop
from benchmark.interfaces import RunContext
from benchmark.runtime import tune_cpu_allocator
from benchmark.ssl.contrastive import SimCLRMethod
from benchmark.ssl.losses import nt_xent
from benchmark.ssl.method import pretrain

from common import hwc, load_cifar

Views = Callable[[], torch.Tensor]
#: (name, torchvision's jitter p, hue, grayscale p, crop) of each row, from the least to the most augmented
STEPS = (("flip", 0.0, 0.0, 0.0, False), ("crop + flip", 0.0, 0.0, 0.0, True),
         ("+ jitter (no hue) + gray", 0.8, 0.0, 0.2, True), ("full view", 0.8, 0.1, 0.2, True))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=3, help="uebench pretraining epochs of the encoder (default 3)")
    ap.add_argument("--images", type=int, default=2048)
    ap.add_argument("--reps", type=int, default=3, help="fresh views per pipeline and row (default 3)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    from PIL import Image
    from torchvision import transforms as T

    torch.set_num_threads(1)
    tune_cpu_allocator()
    train, _ = load_cifar(5_000)
    victim = ssl_victim("simclr", "quick", epochs=args.epochs)
    ctx = RunContext(precision="float32")
    torch.manual_seed(0)
    method = ssl_method(victim, train, ctx)
    assert isinstance(method, SimCLRMethod)
    pretrain(method, train, victim.pretrain_recipe(), ctx)
    method.train()  # BN on batch statistics, as in training
    n = args.images
    xs = train.x[:n].float() / 255
    x_np, _ = hwc(train.select(torch.arange(n)))
    g = torch.Generator().manual_seed(1)

    @torch.no_grad()
    def loss(a: torch.Tensor, b: torch.Tensor) -> float:
        out = []
        for i in range(0, n, 64):
            z1, z2 = method.project(a[i:i + 64].contiguous(memory_format=torch.channels_last),
                                    b[i:i + 64].contiguous(memory_format=torch.channels_last))
            out.append(float(nt_xent(z1, z2, 0.5)))
        return statistics.fmean(out)

    def pil(p_jit: float, hue: float, p_gray: float, crop: bool) -> Views:
        tf = T.Compose([*([T.RandomResizedCrop(32, scale=(0.2, 1.0))] if crop else []), T.RandomHorizontalFlip(),
                        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, hue)], p=p_jit), T.RandomGrayscale(p=p_gray), T.ToTensor()])
        return lambda: torch.stack([tf(Image.fromarray(x_np[i])) for i in range(n)])

    def ours(p_jit: float, hue: float, p_gray: float, crop: bool) -> Views:
        def view() -> torch.Tensor:
            x = random_resized_crop(xs, g, (0.2, 1.0)) if crop else xs
            x = random_flip(x, g)
            x = color_jitter(x, g, 0.4, 0.4, 0.4, hue, p=p_jit)
            return random_grayscale(x, g, p_gray)
        return view

    tensor_crop = T.Compose([T.RandomResizedCrop(32, scale=(0.2, 1.0), antialias=True), T.RandomHorizontalFlip()])
    rows = []
    for name, p_jit, hue, p_gray, crop in STEPS:
        sides: dict[str, Views] = {"torchvision (PIL)": pil(p_jit, hue, p_gray, crop), "uebench": ours(p_jit, hue, p_gray, crop)}
        if name == "crop + flip":
            sides["torchvision (tensor crop)"] = lambda: torch.stack([tensor_crop(xs[i]) for i in range(n)])
        for side, views in sides.items():
            values = [loss(views(), views()) for _ in range(args.reps)]
            rows.append({"views": name, "pipeline": side, "loss_mean": statistics.fmean(values), "loss_std": statistics.stdev(values),
                         "reps": args.reps})
            print(f"  {name:<26} {side:<26} {rows[-1]['loss_mean']:.4f} ± {rows[-1]['loss_std']:.4f}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({"command": " ".join(sys.argv), "epochs": args.epochs, "images": n, "rows": rows}, indent=2))
    print(f"NT-Xent (T 0.5) of a simclr encoder after {args.epochs} quick-profile epochs, on {n} training images of the CIFAR-10 "
          f"JPEG-75 5k subset, mean ± std over {args.reps} draws of views (train-mode BN, no gradients, one thread):\n")
    print("| views | pipeline | loss |\n|---|---|---:|")
    for r in rows:
        print(f"| {r['views']} | {r['pipeline']} | {r['loss_mean']:.4f} ± {r['loss_std']:.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
