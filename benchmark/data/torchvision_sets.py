"""CIFAR-10, CIFAR-100 and SVHN through torchvision's loaders (``root`` + ``download``); CIFAR-10 also
from a data root holding an npz copy, and fetched into a cache on first use."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchmark.data.dataset import ImageDataset
from benchmark.data.npz import read_npz
from benchmark.data.source import DatasetSource, ResolvedPath, file_sha256, from_hwc, missing_dir
from benchmark.errors import DatasetError
from benchmark.params import Params as BaseParams  # `class Params(Params)` trips mypy (python/mypy#10958)


class _TorchvisionParams(BaseParams):
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


def _require_files(name: str, root: str, download: bool, files: tuple[str, ...]) -> None:
    """At plan time (``--dry-run`` too): torchvision's ``files`` under ``root``, unless they are to be
    downloaded; their md5 is torchvision's check, when the data loads."""
    base = Path(root).expanduser()
    missing = [f for f in files if not (base / f).exists()]
    if missing and not download:
        raise DatasetError(f"{name}: {', '.join(missing)} not found under {str(base)!r}. Set `download: true` in the "
                           "dataset entry to fetch it, or point `root` at an existing copy.")


class _Cifar(DatasetSource):
    tv_class: ClassVar[str]
    tv_files: ClassVar[tuple[str, ...]]
    Params = _TorchvisionParams
    params: _TorchvisionParams
    locators = ("root", "download")  # torchvision verifies the archive's md5: the name is the content

    def content_id(self) -> str | None:
        _require_files(self.name, self.params.root, self.params.download, self.tv_files)
        return None

    def load(self) -> tuple[ImageDataset, ImageDataset]:
        import torchvision.datasets as tvd

        cls = getattr(tvd, self.tv_class)
        out = []
        for train in (True, False):
            ds = _open(cls, self.name, self.params.root, self.params.download, train=train)
            out.append(from_hwc(np.asarray(ds.data, dtype=np.uint8), np.asarray(ds.targets), ds.classes))
        return out[0], out[1]


#: where ``cifar10`` looks first (a data root: CI and offline machines point it at ../shared/data)
DATA_ENV = "UEBENCH_DATA"
#: npz copies of CIFAR-10 a data root may hold instead of torchvision's files (checked in this order)
NPZ_NAMES = ("cifar10.npz", "cifar10-jpeg.npz")


def cache_root() -> Path:
    """Where ``cifar10`` downloads to: ``$XDG_CACHE_HOME/uebench``, else ``~/.cache/uebench``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "uebench"


class Cifar10(DatasetSource):
    """CIFAR-10 (Krizhevsky 2009): 50k/10k RGB 32x32, 10 classes. ``[N, 3, 32, 32]`` uint8.

    Found, in this order, in the data root (``root``, else ``$UEBENCH_DATA``) and then in the cache
    (:func:`cache_root`): torchvision's ``cifar-10-batches-py`` folder (md5-checked by torchvision)
    or an npz copy (``cifar10.npz``, ``cifar10-jpeg.npz``: the arrays of :class:`~benchmark.data.npz.Npz`).
    When neither is there and ``download`` is on (the default), torchvision fetches the official
    archive into the cache on first use. The cache key names the content: the canonical files by
    the name alone (torchvision verifies them), an npz copy by its sha256, so the JPEG copy in
    ``shared/data`` and the real CIFAR-10 never share a key.
    """

    name = "cifar10"
    description = "CIFAR-10"
    locators = ("root", "download")

    class Params(BaseParams):
        root: str | None = None  # the data root to look in first (default: $UEBENCH_DATA)
        download: bool = True  # fetch into the cache when the data is nowhere to be found
    params: Params

    @classmethod
    def describe(cls, identity: dict[str, Any]) -> str:
        content = str(identity.get("content", ""))
        return f"CIFAR-10 (npz copy, {content[:19]}…)" if content else "CIFAR-10"

    def roots(self) -> list[Path]:
        """The folders searched, in order: the data root (when given) and the cache."""
        first = self.params.root or os.environ.get(DATA_ENV)
        out = [Path(first).expanduser().resolve()] if first else []
        return out + [cache_root()]

    def find(self) -> tuple[str, Path] | None:
        """``("torchvision", root)`` or ``("npz", file)`` for the first copy found, else ``None``."""
        for root in self.roots():
            if (root / "cifar-10-batches-py").is_dir():
                return "torchvision", root
            for name in NPZ_NAMES:
                if (root / name).is_file():
                    return "npz", root / name
        return None

    def content_id(self) -> str | None:
        found = self.find()
        if found is None and not self.params.download:  # nowhere, and not to be fetched: say so at plan time (--dry-run)
            raise self.not_found()
        return "sha256:" + file_sha256(found[1]) if found and found[0] == "npz" else None

    def searched(self) -> str:
        """The folders searched, each one that does not exist marked so (a mistyped ``root``)."""
        return ", ".join(repr(str(r)) + (f" ({what})" if (what := missing_dir(r)) else "") for r in self.roots())

    def download_note(self) -> str | None:
        if not self.params.download or self.find() is not None:
            return None

        def shown(r: Path) -> str:
            return repr(str(r)) + (f" ({what})" if (what := missing_dir(r)) else "")

        roots, given = self.roots(), "`root`" if self.params.root else f"${DATA_ENV}"
        where = (f"in {given} ({shown(roots[0])}) or in the cache ({shown(roots[-1])})" if len(roots) > 1
                 else f"in the cache ({shown(roots[-1])}), and ${DATA_ENV} is unset")
        return (f"cifar10: not found {where}; `bench run` would download CIFAR-10 (170 MB) into the cache first. "
                f"Offline, point {given} at a folder holding cifar-10-batches-py/ or {NPZ_NAMES[1]}")

    def not_found(self) -> DatasetError:
        where = self.searched()
        return DatasetError(
            f"cifar10: not found in {where}. Set `download: true` in the dataset entry to fetch it, "
            f"or point `root` (or ${DATA_ENV}) at a folder holding cifar-10-batches-py/ or {NPZ_NAMES[1]}."
        )

    def load(self) -> tuple[ImageDataset, ImageDataset]:
        import torchvision.datasets as tvd

        found = self.find()
        if found is not None and found[0] == "npz":
            data = read_npz(found[1])
            if data[0].shape != (3, 32, 32) or data[0].num_classes != 10:
                raise DatasetError(f"cifar10: {str(found[1])!r} holds {data[0].num_classes} classes of {list(data[0].shape)} "
                                   "[C,H,W] images, not CIFAR-10's 10 of [3, 32, 32]: load other data with the `npz` source")
            return data
        if found is None:
            if not self.params.download:
                raise self.not_found()
            root = cache_root()
            root.mkdir(parents=True, exist_ok=True)
            try:
                tvd.CIFAR10(root=str(root), train=True, download=True)
            except Exception as e:  # noqa: BLE001 - no network, a proxy, a truncated archive...
                raise DatasetError(
                    f"cifar10: not found in {self.searched()}; downloading into {str(root)!r} failed "
                    f"({type(e).__name__}: {e}). Without internet, "
                    f"point `root` (or ${DATA_ENV}) at a folder holding cifar-10-batches-py/ or {NPZ_NAMES[1]}."
                ) from None
        else:
            root = found[1]
        out = []
        for train in (True, False):
            ds = _open(tvd.CIFAR10, self.name, str(root), False, train=train)
            out.append(from_hwc(np.asarray(ds.data, dtype=np.uint8), np.asarray(ds.targets), ds.classes))
        return out[0], out[1]


class Cifar100(_Cifar):
    """CIFAR-100 (Krizhevsky 2009): 50k/10k RGB 32x32, 100 classes. ``[N, 3, 32, 32]`` uint8."""

    name = "cifar100"
    description = "CIFAR-100"
    tv_class = "CIFAR100"
    tv_files = ("cifar-100-python",)


class SVHN(DatasetSource):
    """SVHN (Netzer et al. 2011), the cropped-digits ``train``/``test`` splits. ``[N, 3, 32, 32]`` uint8."""

    name = "svhn"
    description = "SVHN (cropped digits)"
    Params = _TorchvisionParams
    params: _TorchvisionParams
    locators = ("root", "download")  # torchvision verifies the files' md5: the name is the content

    def content_id(self) -> str | None:
        _require_files(self.name, self.params.root, self.params.download, ("train_32x32.mat", "test_32x32.mat"))
        return None

    def load(self) -> tuple[ImageDataset, ImageDataset]:
        import torchvision.datasets as tvd

        out = []
        for split in ("train", "test"):
            ds = _open(tvd.SVHN, self.name, self.params.root, self.params.download, split=split)
            x = np.ascontiguousarray(np.asarray(ds.data, dtype=np.uint8).transpose(0, 2, 3, 1))
            out.append(from_hwc(x, np.asarray(ds.labels), [str(i) for i in range(10)]))
        return out[0], out[1]
