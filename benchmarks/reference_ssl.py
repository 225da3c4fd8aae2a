"""The contrastive victims' pretraining as the CP repository runs its data users, to be timed
against uebench's ``pretrain`` in ``bench.py`` (cells ``ssl-simclr``, ``ssl-moco``, ``ssl-byol``,
``ssl-simsiam``, ``ssl-supcl``) and compared with it over a short run in ``ssl_same_results.py``.

kaiwenzha/contrastive-poisoning ``main.py`` trains a victim (``--baseline``, or ``--pretrained_delta``
on a poison) this way: a torchvision CIFAR-10 dataset that makes a PIL image per sample and returns
two views (``TwoCropTransform``) of ``RandomResizedCrop(32, scale=(0.2, 1))``,
``RandomHorizontalFlip``, ``RandomApply([ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8)``,
``RandomGrayscale(0.2)``, ``ToTensor``, ``Normalize``; a shuffled drop-last ``DataLoader`` with
workers (16 there) and pinned memory; per step the two views copied to the device, the loss,
``zero_grad``/``backward``/``step`` and ``loss.item()`` into an ``AverageMeter``. With
``--pretrained_delta`` each view also goes ``ToTensor`` -> ``+ delta`` -> ``ToPILImage`` first; the
reference here is the cheaper ``--baseline`` path.

What it shares with uebench's side, so that a gain measured against it is the input pipeline's and
the loop's, not the model's: the same victim (its profile's params), the same network (channels_last,
as a careful user sets it), the same method module (loss, projector, MoCo's queue, BYOL's and
SimSiam's predictor, the momentum updates through ``after_step``), the same optimizer groups and the
same per-step learning-rate schedule. The views go to the encoder in [0, 1] (the encoder normalizes
first, so ``Normalize`` is not in the transform). CP's repository trains SimCLR, MoCo v2 and BYOL;
``simsiam`` and ``supcl`` run through the same pipeline (TP's repository, TrustMLRG/TransPoison,
trains SupCL the same way).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import RunContext
from benchmark.models import build_classifier
from benchmark.params import resolve_params
from benchmark.registry import get_registry
from benchmark.ssl.method import SSLMethod
from benchmark.ssl.schedule import warmup_cosine
from benchmark.ssl.victim import SSLVictim

from common import Result, hwc, timed

#: the contrastive victims, in the order bench.py's cells list them
SSL_VICTIMS = ("simclr", "moco", "byol", "simsiam", "supcl")


def ssl_victim(name: str, profile: str, **over: Any) -> SSLVictim:
    """The registered victim ``name`` at ``profile`` with ``over`` on top (e.g. ``epochs=1``)."""
    cls = get_registry().get("victim", name)
    victim = cls(resolve_params(cls, profile, over))
    assert isinstance(victim, SSLVictim), f"{name} is not a contrastive victim"
    return victim


def ssl_method(victim: SSLVictim, train: ImageDataset, ctx: RunContext) -> SSLMethod:
    """The victim's fresh encoder (seeded from torch's global RNG, as the victims' ``fit``) wrapped
    in its method, on ``ctx.device``."""
    p = victim.params
    mean, std = train.mean_std()
    encoder = build_classifier(p.arch, train.shape[0], train.num_classes, mean, std, ctx.device)
    return victim.build_method(encoder, ctx).to(ctx.device)


class TwoCropPIL(torch.utils.data.Dataset):
    """torchvision CIFAR10 with CP's ``TwoCropTransform``: ``Image.fromarray`` per sample, the
    transform twice; returns ``((view1, view2), label)``."""

    def __init__(self, x: np.ndarray, y: np.ndarray, transform: Callable[[Any], torch.Tensor]) -> None:
        self.x, self.y, self.transform = x, y, transform

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[tuple[torch.Tensor, torch.Tensor], int]:
        from PIL import Image

        img = Image.fromarray(self.x[i])
        return (self.transform(img), self.transform(img)), int(self.y[i])


def two_crop_loader(victim: SSLVictim, data: ImageDataset, workers: int, device: torch.device) -> torch.utils.data.DataLoader:
    """CP's victim loader over ``data`` with the victim's view parameters and batch size."""
    from torchvision import transforms as T

    r = victim.pretrain_recipe()
    tf = T.Compose([
        T.RandomResizedCrop(32, scale=r.crop_scale),
        T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(*r.jitter)], p=r.p_jitter),
        T.RandomGrayscale(p=r.p_gray),
        T.ToTensor(),
    ])
    x, y = hwc(data)
    return torch.utils.data.DataLoader(
        TwoCropPIL(x, y, tf), batch_size=min(r.batch_size, len(data)), shuffle=True, drop_last=True,
        num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=workers > 0,
    )


def reference_pretrain(victim: SSLVictim, method: SSLMethod, data: ImageDataset, device: torch.device, workers: int,
                       on_epoch: Callable[[int, float], None] | None = None) -> None:
    """The victim's recipe run through :func:`two_crop_loader` (float32); ``on_epoch(epoch, mean
    loss)`` after each epoch."""
    r = victim.pretrain_recipe()
    loader = two_crop_loader(victim, data, workers, device)
    steps = len(loader)
    total = r.epochs * steps
    groups = method.param_groups()
    opt = torch.optim.SGD(groups, lr=r.lr, momentum=r.momentum, weight_decay=r.weight_decay)
    f = warmup_cosine(total, r.warmup_epochs * steps, r.warmup_from, r.min_lr_ratio)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, [(lambda t: 1.0) if g.get("fixed_lr") else f for g in groups])
    method.train()
    step = 0
    for epoch in range(r.epochs):
        losses: list[float] = []
        for (v1, v2), y in loader:
            v1 = v1.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            v2 = v2.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            y = y.to(device, non_blocking=True)
            loss = method(v1, v2, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            method.after_step(step, total)
            losses.append(loss.item())  # CP's AverageMeter, per step
        if on_epoch is not None:
            on_epoch(epoch + 1, float(np.mean(losses)))
    method.eval()


def ssl_reference(name: str, data: ImageDataset, device: torch.device, workers: int, profile: str) -> Result:
    """One pretraining epoch of victim ``name`` at ``profile`` through the reference pipeline."""
    victim = ssl_victim(name, profile, epochs=1)
    ctx = RunContext(device=device, precision="float32")

    def fresh() -> SSLMethod:
        torch.manual_seed(0)
        return ssl_method(victim, data, ctx)

    if device.type == "cuda":  # first-use kernel set-up is not an epoch's cost (as on uebench's side)
        reference_pretrain(victim, fresh(), data.select(torch.arange(min(len(data), 1024))), device, workers)
    method = fresh()
    _, dt, peak = timed(device, lambda: reference_pretrain(victim, method, data, device, workers))
    p = victim.params
    n = (len(data) // min(p.batch_size, len(data))) * min(p.batch_size, len(data))
    return Result(f"ssl-{name}", device.type, "reference", n, dt, peak, unit="img/s (pretraining epoch)",
                  note=f"{profile} profile ({p.arch}, batch {p.batch_size}); CP's two-crop PIL pipeline, DataLoader num_workers={workers}")
