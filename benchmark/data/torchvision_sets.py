"""CIFAR-10, CIFAR-100 and SVHN through torchvision's loaders (``root`` + ``download``)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from benchmark.data.dataset import ImageDataset
from benchmark.data.source import DatasetSource, ResolvedPath, from_hwc
from benchmark.errors import DatasetError
from benchmark.params import Params


class _TorchvisionParams(Params):
    root: ResolvedPath = "~/data"
    download: bool = False


def _open(cls: Any, name: str, root: str, download: bool, **kw: Any) -> Any:
    from pathlib import Path

    root_path = str(Path(root).expanduser())
    try:
        return cls(root=root_path, download=download, **kw)
    except RuntimeError as e:  # torchvision: "Dataset not found or corrupted."
        raise DatasetError(
            f"{name}: not found or corrupted under {root_path!r} ({e}). "
            f"Set `download: true` in the dataset entry to fetch it, or point `root` at an existing copy."
        ) from None
    except OSError as e:
        raise DatasetError(f"{name}: cannot read {root_path!r}: {e}") from None


class _Cifar(DatasetSource):
    tv_class: ClassVar[str]
    Params = _TorchvisionParams
    locators = ("root", "download")  # torchvision verifies the archive's md5: the name is the content

    def load(self) -> tuple[ImageDataset, ImageDataset]:
        import torchvision.datasets as tvd

        cls = getattr(tvd, self.tv_class)
        out = []
        for train in (True, False):
            ds = _open(cls, self.name, self.params.root, self.params.download, train=train)
            out.append(from_hwc(np.asarray(ds.data, dtype=np.uint8), np.asarray(ds.targets), ds.classes))
        return out[0], out[1]


class Cifar10(_Cifar):
    """CIFAR-10 (Krizhevsky 2009): 50k/10k RGB 32x32, 10 classes. ``[N, 3, 32, 32]`` uint8."""

    name = "cifar10"
    tv_class = "CIFAR10"


class Cifar100(_Cifar):
    """CIFAR-100 (Krizhevsky 2009): 50k/10k RGB 32x32, 100 classes. ``[N, 3, 32, 32]`` uint8."""

    name = "cifar100"
    tv_class = "CIFAR100"


class SVHN(DatasetSource):
    """SVHN (Netzer et al. 2011), the cropped-digits ``train``/``test`` splits. ``[N, 3, 32, 32]`` uint8."""

    name = "svhn"
    Params = _TorchvisionParams
    locators = ("root", "download")  # torchvision verifies the files' md5: the name is the content

    def load(self) -> tuple[ImageDataset, ImageDataset]:
        import torchvision.datasets as tvd

        out = []
        for split in ("train", "test"):
            ds = _open(tvd.SVHN, self.name, self.params.root, self.params.download, split=split)
            x = np.ascontiguousarray(np.asarray(ds.data, dtype=np.uint8).transpose(0, 2, 3, 1))
            out.append(from_hwc(x, np.asarray(ds.labels), [str(i) for i in range(10)]))
        return out[0], out[1]
