"""The in-memory image dataset every plugin works on."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch


def data_checksum(*parts: ImageDataset) -> str:
    """sha256 over the uint8 images and int64 labels of ``parts``, in order."""
    import hashlib

    h = hashlib.sha256()
    for ds in parts:
        h.update(ds.x.contiguous().numpy().tobytes())
        h.update(ds.y.contiguous().numpy().tobytes())
    return h.hexdigest()


def content_key(data: ImageDataset) -> str:
    """sha256 (20 hex digits) of a dataset's image shape, uint8 images and labels: names the data an
    intermediate artifact was made from when the runner gave no data key (unit tests, library use)."""
    import hashlib

    h = hashlib.sha256(str(tuple(data.x.shape)).encode())
    h.update(data.x.contiguous().cpu().numpy().tobytes())
    h.update(data.y.to(torch.int64).contiguous().cpu().numpy().tobytes())
    return h.hexdigest()[:20]


@dataclass(frozen=True)
class ImageDataset:
    """Images as one uint8 tensor, labels and class names.

    Shapes: ``x`` uint8 ``[N, C, H, W]`` (pixel values 0..255, channels first), ``y`` int64 ``[N]``.
    ``index`` int64 ``[N]`` is each sample's position in the split it came from, so sample-wise
    perturbations stay aligned with the dataset whatever subset or order a plugin sees.
    """

    x: torch.Tensor
    y: torch.Tensor
    classes: tuple[str, ...]
    index: torch.Tensor = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.x.dtype != torch.uint8 or self.x.ndim != 4:
            raise ValueError(f"x must be uint8 [N,C,H,W], got {self.x.dtype} {tuple(self.x.shape)}")
        if self.y.shape != (self.x.shape[0],):
            raise ValueError(f"y must have shape [{self.x.shape[0]}], got {tuple(self.y.shape)}")
        if self.index is None:
            object.__setattr__(self, "index", torch.arange(len(self.y)))
        object.__setattr__(self, "y", self.y.long())

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Per-image shape ``(C, H, W)``."""
        return tuple(self.x.shape[1:])  # type: ignore[return-value]

    def select(self, idx: torch.Tensor) -> ImageDataset:
        return ImageDataset(self.x[idx], self.y[idx], self.classes, self.index[idx])

    def with_images(self, x: torch.Tensor) -> ImageDataset:
        """Same labels and indices, new uint8 images (a poison or a defended copy)."""
        return replace(self, x=x)

    def float_batch(self, idx: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        """Images ``idx`` as float ``[B, C, H, W]`` in [0, 1] on ``device``."""
        return self.x[idx.to(self.x.device)].to(device, non_blocking=True).float().div_(255)

    def to(self, device: torch.device | str) -> ImageDataset:
        """This dataset with ``x``, ``y`` and ``index`` on ``device`` (itself when they are there)."""
        device = torch.device(device)
        here = self.x.device
        if here.type == device.type and (device.index is None or here.index == device.index):
            return self
        return ImageDataset(self.x.to(device), self.y.to(device), self.classes, self.index.to(device))

    def mean_std(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std in [0, 1] units, computed in chunks (no float copy of the data)."""
        c = self.x.shape[1]
        s = torch.zeros(c, dtype=torch.float64)
        s2 = torch.zeros(c, dtype=torch.float64)
        n = 0
        for start in range(0, len(self), 4096):
            chunk = self.x[start : start + 4096].double().div_(255)
            s += chunk.sum(dim=(0, 2, 3))
            s2 += chunk.pow(2).sum(dim=(0, 2, 3))
            n += chunk.numel() // c
        mean = s / n
        std = (s2 / n - mean**2).clamp_min(1e-12).sqrt()
        return mean.tolist(), std.tolist()


@dataclass(frozen=True)
class DataSplits:
    """What a cell sees: the training set (the attacker poisons it), the clean test set, and an
    optional small clean ``holdout`` carved from the training data for model-repair defenses."""

    train: ImageDataset
    test: ImageDataset
    holdout: ImageDataset | None = None
