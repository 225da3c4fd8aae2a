"""The reference pipeline: the same work done the way the papers' official code does it
(PIL image per sample, torchvision transforms, a DataLoader, per-sample Python loops), run as a
careful user runs it: the same network as uebench in channels_last, and (in ``bench.py``) the same
tuned allocator. It exists only to be timed against uebench in ``bench.py``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import RunContext
from benchmark.models import build_classifier
from benchmark.training import accuracy

from common import Result, hwc, timed


class PILDataset(torch.utils.data.Dataset):
    """torchvision-CIFAR10-style dataset: ``Image.fromarray`` per sample, then ``transform``."""

    def __init__(self, x: np.ndarray, y: np.ndarray, transform: Callable[[Any], torch.Tensor]) -> None:
        self.x, self.y, self.transform = x, y, transform

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.x[i])), int(self.y[i])


def ref_loader(data: ImageDataset, batch_size: int, *, augment: bool, shuffle: bool, drop_last: bool, workers: int, device: torch.device) -> torch.utils.data.DataLoader:
    """The papers' loader: PIL images, per-sample torchvision transforms, a torch DataLoader."""
    from torchvision import transforms as T

    tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor()]) if augment else T.ToTensor()
    x, y = hwc(data)
    return torch.utils.data.DataLoader(
        PILDataset(x, y, tf), batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
        num_workers=workers, pin_memory=device.type == "cuda",
    )


def ref_model(arch: str, mean: list[float], std: list[float], device: torch.device) -> nn.Module:
    """uebench's own network (the same module, so the same block order), fp32, in channels_last as a
    careful user sets it: the speed-up measured against it comes from the loops, not the model."""
    return build_classifier(arch, 3, 10, mean, std, device).to(memory_format=torch.channels_last)


def sl_reference(arch: str, train: ImageDataset, test: ImageDataset | None, device: torch.device, workers: int, epochs: int = 1) -> Result:
    """The papers' SL loop: DataLoader of PIL images with RandomCrop/RandomHorizontalFlip/ToTensor."""
    torch.manual_seed(0)
    mean, std = train.mean_std()
    model = ref_model(arch, mean, std, device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    loader = ref_loader(train, 128, augment=True, shuffle=True, drop_last=True, workers=workers, device=device)
    steps = len(loader) * epochs
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    crit = nn.CrossEntropyLoss()

    def run() -> None:
        for _ in range(epochs):
            model.train()
            correct = 0
            for x, y in loader:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                logits = model(x)
                loss = crit(logits, y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                correct += (logits.argmax(1) == y).sum().item()  # the official loops log acc/loss per step
                _ = loss.item()

    # warm-up on 1 batch of a throwaway copy (same as the uebench side)
    wm = ref_model(arch, mean, std, device)
    wopt = torch.optim.SGD(wm.parameters(), lr=0.1)
    for i, (x, y) in enumerate(loader):
        wopt.zero_grad()
        crit(wm(x.to(device)), y.to(device)).backward()
        wopt.step()
        break
    _, dt, peak = timed(device, run)
    acc = accuracy(model, test, RunContext(device=device)) if test is not None else None
    return Result(f"sl-{arch}", device.type, "reference", steps * 128, dt, peak, accuracy=acc,
                  note=f"DataLoader num_workers={workers}")


def em_reference(train: ImageDataset, device: torch.device, workers: int, steps: int = 10, arch: str = "small-cnn") -> Result:
    """EM sample-wise generation as HanxunH/Unlearnable-Examples ``perturbation.py`` does one outer
    iteration: ToTensor DataLoader (bs 512, unshuffled), per-sample noise add loops, the noise PGD
    of ``PerturbationTool.min_min_attack`` with the parameters frozen around it as
    ``sample_wise_perturbation`` does (``requires_grad = False`` before the search, ``True`` before
    each training batch: ``loss.backward()`` then computes the input gradient only), then the stop
    check over the loader."""
    eps, alpha, train_steps, bs = 8 / 255, 0.8 / 255, 10, 512
    torch.manual_seed(0)
    model = ref_model(arch, [0.0] * 3, [1.0] * 3, device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    crit = nn.CrossEntropyLoss()
    loader = ref_loader(train, bs, augment=False, shuffle=False, drop_last=False, workers=workers, device=device)
    noise = torch.zeros(len(train), 3, 32, 32)
    if device.type == "cuda":  # as the uebench side: first-use kernel set-up is not timed
        state = {k: v.clone() for k, v in model.state_dict().items()}
        xw = torch.rand(bs, 3, 32, 32, device=device, requires_grad=True)
        crit(model(xw), torch.zeros(bs, dtype=torch.long, device=device)).backward()
        model.eval()
        crit(model(xw), torch.zeros(bs, dtype=torch.long, device=device)).backward()
        model.zero_grad()
        model.load_state_dict(state)

    def min_min_attack(images: torch.Tensor, labels: torch.Tensor, random_noise: torch.Tensor) -> torch.Tensor:
        perturb_img = torch.clamp(images.data + random_noise, 0, 1).requires_grad_(True)
        eta = random_noise
        for _ in range(steps):
            popt = torch.optim.SGD([perturb_img], lr=1e-3)
            popt.zero_grad()
            model.zero_grad()
            loss = crit(model(perturb_img), labels)
            perturb_img.retain_grad()
            loss.backward()
            eta = alpha * perturb_img.grad.data.sign() * (-1)
            perturb_img = (perturb_img.data + eta).requires_grad_(True)
            eta = torch.clamp(perturb_img.data - images.data, -eps, eps)
            perturb_img = torch.clamp(images.data + eta, 0, 1).requires_grad_(True)
        return eta

    def run() -> float:
        data_iter = iter(loader)
        idx = 0
        for _ in range(train_steps):
            try:
                images, labels = next(data_iter)
            except StopIteration:
                idx = 0
                data_iter = iter(loader)
                images, labels = next(data_iter)
            for i, _ in enumerate(images):
                images[i] += noise[idx]
                idx += 1
            images, labels = images.to(device), labels.to(device)
            model.train()
            for p in model.parameters():
                p.requires_grad = True
            model.zero_grad()
            opt.zero_grad()
            loss = crit(model(images), labels)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
        idx = 0
        for images, labels in loader:
            batch_noise = []
            for i, _ in enumerate(images):
                batch_noise.append(noise[idx])
                idx += 1
            batch_noise_t = torch.stack(batch_noise).to(device)
            model.eval()
            for p in model.parameters():
                p.requires_grad = False
            images, labels = images.to(device), labels.to(device)
            eta = min_min_attack(images, labels, batch_noise_t)
            for i, delta in enumerate(eta):
                noise[idx - len(eta) + i] = delta.clone().detach().cpu()
        # stop condition: accuracy on x + noise
        idx, correct, total = 0, 0, 0
        model.eval()
        with torch.no_grad():
            for images, labels in loader:
                for i, _ in enumerate(images):
                    images[i] += noise[idx]
                    idx += 1
                images, labels = images.to(device), labels.to(device)
                correct += (model(images).argmax(1) == labels).sum().item()
                total += len(labels)
        return correct / total

    acc, dt, peak = timed(device, run)
    return Result("em" if arch == "small-cnn" else f"em-{arch}", device.type, "reference", len(train), dt, peak, unit="img/s (outer it.)", accuracy=round(acc, 4),
                  note=f"DataLoader num_workers={workers}")


def at_reference(train: ImageDataset, device: torch.device, batches: int, workers: int, steps: int = 10) -> Result:
    """AT as the reference ``madrys.py`` (EM repo) with a PIL/DataLoader pipeline."""
    eps, step_size = 8 / 255, 2 / 255
    torch.manual_seed(0)
    mean, std = train.mean_std()
    data = train.select(torch.arange(batches * 128))
    model = ref_model("small-cnn", mean, std, device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    crit = nn.CrossEntropyLoss()
    loader = ref_loader(data, 128, augment=True, shuffle=True, drop_last=True, workers=workers, device=device)

    def madrys(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        model.eval()
        for p in model.parameters():
            p.requires_grad = False
        x_adv = x.detach() + step_size * torch.randn_like(x)
        for _ in range(steps):
            x_adv.requires_grad_()
            loss = crit(model(x_adv), y)
            grad = torch.autograd.grad(loss, [x_adv])[0]
            x_adv = x_adv.detach() + step_size * torch.sign(grad.detach())
            x_adv = torch.min(torch.max(x_adv, x - eps), x + eps)
            x_adv = torch.clamp(x_adv, 0.0, 1.0)
        model.train()
        for p in model.parameters():
            p.requires_grad = True
        opt.zero_grad()
        return crit(model(x_adv.detach()), y)

    def run() -> None:
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss = madrys(x, y)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            _ = loss.item()

    _, dt, peak = timed(device, run)
    return Result("at", device.type, "reference", len(data), dt, peak, unit=f"img/s ({steps} PGD + 1 train)",
                  note=f"DataLoader num_workers={workers}")



def certify_reference(model: nn.Module, test: ImageDataset, device: torch.device, draws: int, workers: int, sigma: float = 0.01) -> Result:
    """Certification draws as NeuralSec/certified-data-learnability ``certify.py``: per draw, add
    ``sigma * randn_like`` to every named parameter in place, evaluate on a ``ToTensor`` DataLoader
    (batch 512, ``drop_last``) with one ``.item()`` per batch, average the per-batch accuracies,
    subtract the noise."""
    torch.manual_seed(0)
    model = model.to(memory_format=torch.channels_last).eval()
    loader = ref_loader(test, 512, augment=False, shuffle=False, drop_last=True, workers=workers, device=device)

    def run() -> list[float]:
        accs = []
        for _ in range(draws):
            noises = []
            with torch.no_grad():
                for _, p in model.named_parameters():
                    n = torch.randn_like(p) * sigma
                    p.add_(n)
                    noises.append(n)
                batch_accs = []
                for x, y in loader:
                    x, y = x.to(device), y.to(device)
                    batch_accs.append((model(x).argmax(1) == y).float().mean().item())
                accs.append(sum(batch_accs) / len(batch_accs))
                for (_, p), n in zip(model.named_parameters(), noises):
                    p.sub_(n)
        return accs

    accs, dt, peak = timed(device, run)
    n = (len(test) // 512) * 512
    return Result("certify", device.type, "reference", draws * n, dt, peak, unit="img/s (draws x test images)",
                  accuracy=sum(accs) / len(accs), note=f"{draws} draws, batch 512 drop_last, DataLoader num_workers={workers}",
                  extra={"draws_per_s": draws / dt})
