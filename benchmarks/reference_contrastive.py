"""Reference loops for the contrastive attacks, written the way their official code bases run them,
to be timed against uebench's ``cp`` and ``tp`` plugins in ``bench.py`` (cells ``cp``, ``tp``).

``cp_reference``: one CP-S epoch as kaiwenzha/contrastive-poisoning ``main.py``
(``train_contrastive_poisoning``) runs it, in one process: a torchvision-style dataset that makes a
PIL image per sample and returns ``(ToTensor(img), label, index)``, a shuffled drop-last
``DataLoader``; an ``AttackModel`` holding the whole unit-scale ``delta`` as one ``nn.Parameter``
and adding ``eps * clamp(delta[index])`` in its forward; kornia augmentations (RandomResizedCrop
0.2-1, flip, ColorJitter p 0.8, grayscale p 0.2, Normalize) applied to the batch twice; the
SupContrast-style loss on L2-normalized ``[bsz, 2, d]`` features, times T/0.07; the model phase
(train mode, SGD, ``.item()`` per step), then the noise phase (eval mode, backbone frozen, a fresh
iterator, ``num_steps`` sign steps per batch on the whole ``delta`` parameter, as the code's
``delta.data.add_(eta).clamp_(-1, 1)`` does). ``main_worker`` turns on
``torch.autograd.set_detect_anomaly(True)``; ``anomaly=False`` times the loop without it.

``tp_reference``: one epoch of TP's Algorithm 1 written in the style of TrustMLRG/TransPoison (the
public code implements another algorithm, see plugins/attacks/tp.py, so this is the paper's loop
in that code base's idiom): the contrastive model phase through a CP-style ``AttackModel``
(alignment + uniformity loss), the contrastive noise phase as ``forgemaster_base._run_trial``
does it (per-sample Python lookup of each batch's perturbation rows, the rows copied out, a
forward through kornia, a sign step, the rows written back), the supervised model phase and the
supervised noise phase as ``_batched_step`` does it (per-sample lookup, ``inputs[pos] +=
delta_slice``, ``loss.backward()`` with parameter gradients, ``.item()`` per batch).

Both use the same network as the uebench side (the small CNN with the same heads, channels_last,
as a careful user would set it) and the same data, batch size and step counts; the caller tunes the
allocator for both sides. On CUDA they run as the official scripts do there: the model (and CP's
``delta`` parameter) on the GPU, each batch copied from the DataLoader's host tensors, TP's poison
tensor kept on the host and its slices copied over (the Furnace's ``poison_delta`` is a CPU tensor).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.data.dataset import ImageDataset
from benchmark.models import build_classifier

from common import Result, hwc, timed


class IndexedPIL(torch.utils.data.Dataset):
    """torchvision CIFAR10 with the index returned too (CP's ``I_CIFAR10``): a PIL image per sample,
    then ``ToTensor``."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        from torchvision import transforms as T

        self.x, self.y, self.tf = x, y, T.ToTensor()

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        from PIL import Image

        return self.tf(Image.fromarray(self.x[i])), int(self.y[i]), i


def _loader(data: ImageDataset, batch_size: int, workers: int, *, shuffle: bool, drop_last: bool) -> torch.utils.data.DataLoader:
    x, y = hwc(data)
    return torch.utils.data.DataLoader(IndexedPIL(x, y), batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                                       num_workers=workers, persistent_workers=workers > 0)


def _kornia_views(mean: list[float], std: list[float]) -> nn.Module:
    import kornia.augmentation as K

    return nn.Sequential(
        K.RandomResizedCrop(size=(32, 32), scale=(0.2, 1.0)),
        K.RandomHorizontalFlip(),
        K.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8),
        K.RandomGrayscale(p=0.2),
        K.Normalize(mean=torch.tensor(mean), std=torch.tensor(std)),
    )


class HeadNet(nn.Module):
    """The small CNN with a 2-layer projection head and L2-normalized output (CP's
    ``ResNetWithHead``) and a linear classifier on the same backbone (TP); channels_last."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        clf = build_classifier("small-cnn", 3, classes, [0.0] * 3, [1.0] * 3)
        self.encoder, self.fc = clf.backbone, clf.head
        d = clf.feature_dim
        self.head = nn.Sequential(nn.Linear(d, d), nn.ReLU(inplace=True), nn.Linear(d, 128))
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.encoder(x.contiguous(memory_format=torch.channels_last))), dim=1)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.encoder(x.contiguous(memory_format=torch.channels_last)))


class SupConStyleLoss(nn.Module):
    """CP's ``SimCLRLoss``: features ``[bsz, 2, d]``; every view is an anchor against all others,
    the positive mask from identity; ``log_prob`` with the max-logit shift; times T/0.07."""

    def __init__(self, temperature: float = 0.5, base: float = 0.07) -> None:
        super().__init__()
        self.t, self.base = temperature, base

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        bsz, dev = features.shape[0], features.device
        mask = torch.eye(bsz, device=dev)
        contrast = torch.cat(torch.unbind(features, dim=1), dim=0)
        logits = contrast @ contrast.T / self.t
        logits = logits - logits.max(dim=1, keepdim=True).values.detach()
        mask = mask.repeat(2, 2)
        not_self = torch.ones_like(mask).scatter(1, torch.arange(2 * bsz, device=dev).view(-1, 1), 0)
        mask = mask * not_self
        log_prob = logits - torch.log((torch.exp(logits) * not_self).sum(1, keepdim=True))
        mean_pos = (mask * log_prob).sum(1) / mask.sum(1)
        return -(self.t / self.base) * mean_pos.view(2, bsz).mean()


def align_uniform(features: torch.Tensor, lam: float = 1.0, alpha: float = 2.0, t: float = 2.0) -> torch.Tensor:
    """Wang & Isola's losses on ``[bsz, 2, d]`` normalized features (TP's Eq. 3)."""
    a, b = features[:, 0], features[:, 1]
    align = (a - b).norm(dim=1).pow(alpha).mean()

    def unif(z: torch.Tensor) -> torch.Tensor:
        return torch.pdist(z, p=2).pow(2).mul(-t).exp().mean().log()

    return lam * align + (unif(a) + unif(b)) / 2


class AttackModel(nn.Module):
    """CP's ``AttackModel``: the learnable unit-scale ``delta`` ``[N, 3, 32, 32]`` as a parameter,
    added in the forward, then two kornia views through the network."""

    def __init__(self, n: int, classes: int, eps: float, mean: list[float], std: list[float], init: torch.Tensor | None = None) -> None:
        super().__init__()
        self.backbone = HeadNet(classes)
        self.transform = _kornia_views(mean, std)
        self.eps = eps
        self.delta = nn.Parameter(init if init is not None else torch.rand(n, 3, 32, 32) * 2 - 1)

    def forward(self, img: torch.Tensor, index: torch.Tensor, delta: torch.Tensor | None = None) -> torch.Tensor:
        d = self.delta[index] if delta is None else delta
        mixed = torch.clamp(img + self.eps * torch.clamp(d, -1.0, 1.0), 0.0, 1.0)
        aug = torch.cat([self.transform(mixed), self.transform(mixed)], dim=0)
        f1, f2 = torch.split(self.backbone(aug), [len(img), len(img)], dim=0)
        return torch.cat([f1.unsqueeze(1), f2.unsqueeze(1)], dim=1)


def _set_backbone_grad(model: AttackModel, flag: bool) -> None:
    for p in model.backbone.parameters():
        p.requires_grad = flag


def cp_reference(train: ImageDataset, workers: int, *, anomaly: bool = True, num_steps: int = 5, batch_size: int = 512,
                 device: torch.device | None = None) -> Result:
    """One CP-S epoch (SimCLR; model phase over the epoch, then the noise phase, ``num_steps`` sign
    steps of 0.1 per batch) the way ``main.py`` runs it."""
    dev = device or torch.device("cpu")
    torch.manual_seed(0)
    eps = 8 / 255
    mean, std = train.mean_std()
    model = AttackModel(len(train), train.num_classes, eps, mean, std).to(dev)
    criterion = SupConStyleLoss(0.5)
    optimizer = torch.optim.SGD(model.backbone.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-4)
    delta_optimizer = torch.optim.Adam([model.delta], lr=1e-3)
    loader = _loader(train, batch_size, workers, shuffle=True, drop_last=True)

    def run() -> float:
        torch.autograd.set_detect_anomaly(anomaly)
        max_iter = len(loader)
        it = iter(loader)
        model.train()
        _set_backbone_grad(model, True)
        model.delta.requires_grad = False
        losses = []
        for _ in range(min(1000, max_iter)):
            images, _labels, index = next(it)
            images, index = images.to(dev, non_blocking=True), index.to(dev, non_blocking=True)
            loss = criterion(model(images, index))
            losses.append(loss.item())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        _set_backbone_grad(model, False)
        model.delta.requires_grad = True
        it2 = iter(loader)
        for _ in range(min(1000, max_iter)):
            images, _labels, index = next(it2)
            images, index = images.to(dev, non_blocking=True), index.to(dev, non_blocking=True)
            for _ in range(num_steps):
                delta_optimizer.zero_grad()
                loss = criterion(model(images, index))
                losses.append(loss.item())
                loss.backward()
                eta = 0.1 * model.delta.grad.data.sign() * (-1)
                model.delta.data.add_(eta).clamp_(min=-1.0, max=1.0)
        torch.autograd.set_detect_anomaly(False)
        return float(np.mean(losses[-len(loader) * num_steps :]))

    loss, dt, peak = timed(dev, run)
    steps = len(loader)
    return Result("cp" if anomaly else "cp-noanomaly", dev.type, "reference", steps * batch_size, dt, peak,
                  unit=f"img/s (CP-S epoch: 1 model + {num_steps} noise passes)", accuracy=None,
                  note=f"DataLoader num_workers={workers}; anomaly detection {'on (as main.py)' if anomaly else 'off'}; noise loss {loss:.3f}")


def tp_reference(train: ImageDataset, workers: int, *, steps: int = 5, batch_size: int = 512,
                 device: torch.device | None = None) -> Result:
    """One epoch of TP's Algorithm 1 (4 phases, ``steps`` PGD steps of 0.1 eps in each noise phase)
    in TransPoison's idiom (see the module docstring)."""
    dev = device or torch.device("cpu")
    torch.manual_seed(0)
    eps = 8 / 255
    tau = 0.1 * eps
    mean, std = train.mean_std()
    n = len(train)
    model = AttackModel(n, train.num_classes, 1.0, mean, std, init=torch.zeros(n, 3, 32, 32)).to(dev)  # delta in pixels
    poison_delta = torch.zeros(n, 3, 32, 32)  # the Furnace's CPU poison tensor, looked up per sample
    lookup = {i: i for i in range(n)}
    norm_mean, norm_std = torch.tensor(mean, device=dev).view(1, 3, 1, 1), torch.tensor(std, device=dev).view(1, 3, 1, 1)
    eps_t = torch.tensor(eps, device=dev)
    cl_opt = torch.optim.SGD(list(model.backbone.encoder.parameters()) + list(model.backbone.head.parameters()), lr=0.5,
                             momentum=0.9, weight_decay=1e-4)
    sl_opt = torch.optim.SGD(list(model.backbone.encoder.parameters()) + list(model.backbone.fc.parameters()), lr=0.1,
                             momentum=0.9, weight_decay=5e-4)
    shuffled = _loader(train, batch_size, workers, shuffle=True, drop_last=True)
    full = _loader(train, batch_size, workers, shuffle=True, drop_last=False)

    def classify(x: torch.Tensor) -> torch.Tensor:
        return model.backbone.classify((x - norm_mean) / norm_std)

    def slices(index: torch.Tensor) -> tuple[list[int], list[int]]:
        rows, pos = [], []
        for batch_id, image_id in enumerate(index.tolist()):
            hit = lookup.get(image_id)
            if hit is not None:
                rows.append(hit)
                pos.append(batch_id)
        return rows, pos

    def run() -> list[float]:
        log: list[float] = []
        # (1) contrastive model phase
        model.train()
        for images, labels, index in shuffled:
            images = images.to(dev, non_blocking=True)
            loss = align_uniform(model(images, index, poison_delta[index].to(dev)))
            cl_opt.zero_grad()
            loss.backward()
            cl_opt.step()
            log.append(loss.item())
        # (2) contrastive noise phase
        model.eval()
        _set_backbone_grad(model, False)
        for images, labels, index in full:
            images = images.to(dev, non_blocking=True)
            for _ in range(steps):
                rows, pos = slices(index)
                delta_slice = poison_delta[rows].to(dev).detach().requires_grad_()
                loss = align_uniform(model(images[pos], index, delta_slice))
                loss.backward()
                delta_slice.data -= delta_slice.grad.data.sign() * tau
                delta_slice.data = torch.max(torch.min(delta_slice, eps_t), -eps_t)
                delta_slice.data = torch.max(torch.min(delta_slice, 1 - images[pos]), -images[pos])
                poison_delta[rows] = delta_slice.detach().to("cpu")
                log.append(loss.item())
        _set_backbone_grad(model, True)
        # (3) supervised model phase
        model.train()
        for images, labels, index in shuffled:
            images, labels = images.to(dev, non_blocking=True), labels.to(dev, non_blocking=True)
            rows, pos = slices(index)
            inputs = images.clone()
            inputs[pos] += poison_delta[rows].to(dev)
            loss = F.cross_entropy(classify(inputs.clamp(0, 1)), labels)
            sl_opt.zero_grad()
            loss.backward()
            sl_opt.step()
            log.append(loss.item())
        # (4) supervised error-minimizing noise phase (_batched_step, PGD recipe)
        model.eval()
        for images, labels, index in full:
            images, labels = images.to(dev, non_blocking=True), labels.to(dev, non_blocking=True)
            for _ in range(steps):
                rows, pos = slices(index)
                delta_slice = poison_delta[rows].to(dev).detach().requires_grad_()
                inputs = images.clone()
                inputs[pos] += delta_slice
                outputs = classify(inputs)
                loss = F.cross_entropy(outputs, labels)
                loss.backward()  # parameter gradients too, as the code's closure
                prediction = (outputs.data.argmax(dim=1) == labels).sum()
                with torch.no_grad():
                    delta_slice.data -= delta_slice.grad.sign() * tau
                    delta_slice.data = torch.max(torch.min(delta_slice, eps_t), -eps_t)
                    delta_slice.data = torch.max(torch.min(delta_slice, 1 - images[pos]), -images[pos])
                poison_delta[rows] = delta_slice.detach().to("cpu")
                log.append(loss.item())
                _ = prediction.item()
            model.zero_grad()
        return log

    log, dt, peak = timed(dev, run)
    return Result("tp", dev.type, "reference", n, dt, peak, unit=f"img/s (TP epoch: 4 phases, {steps}+{steps} PGD steps)",
                  note=f"DataLoader num_workers={workers}; last SL noise loss {log[-1]:.3f}")


def meta() -> dict[str, Any]:
    import kornia

    return {"kornia": kornia.__version__}
