"""Shared pieces of the performance harness: memory probes, data, timed results."""

from __future__ import annotations

import argparse
import gc
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmark.data.dataset import ImageDataset
from benchmark.data.split import make_splits
from benchmark.provenance import cpu_bf16, cpu_model

DATA = Path(os.environ.get("UEBENCH_SHARED_DATA", REPO.parent / "shared" / "data"))
NPZ = DATA / "cifar10-jpeg.npz"


# ------------------------------------------------------------------------------------------ memory


def _status(key: str) -> int:
    """A ``/proc/self/status`` field in bytes (0 where /proc is not available)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    if key == "VmHWM":
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return 0


def reset_peak(device: torch.device) -> None:
    """Reset the process's peak RSS (Linux ``clear_refs``) and CUDA's peak allocation counter."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_bytes(device: torch.device) -> int:
    """Peak RSS since :func:`reset_peak` on CPU; peak allocated device memory on CUDA."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return _status("VmHWM")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -------------------------------------------------------------------------------------------- data


def load_cifar(n: int, seed: int = 0) -> tuple[ImageDataset, ImageDataset]:
    """A class-balanced ``n``-image training subset (shuffled once, as the runner does) and the
    full 10k test set of the shared CIFAR-10 npz, as uint8 ``[N, 3, 32, 32]``."""
    if not NPZ.exists():
        sys.exit(f"bench: CIFAR-10 npz not found at {NPZ} (set UEBENCH_SHARED_DATA)")
    from benchmark.data.source import from_hwc

    with np.load(NPZ) as d:
        classes = [str(c) for c in d["classes"]]
        train = from_hwc(d["x_train"], d["y_train"], classes)
        test = from_hwc(d["x_test"], d["y_test"], classes)
    splits = make_splits(train, test, subset=None if n >= len(train) else n, seed=seed)
    return splits.train, splits.test


def hwc(data: ImageDataset) -> tuple[np.ndarray, np.ndarray]:
    """The dataset as torchvision's CIFAR10 stores it: HWC uint8 numpy images and int labels."""
    return data.x.permute(0, 2, 3, 1).contiguous().numpy(), data.y.numpy()


# ------------------------------------------------------------------------------------------- cells


@dataclass
class Result:
    """One timed measurement."""

    cell: str
    device: str
    impl: str  # "uebench" | "reference"
    images: int  # images processed (training samples, or sample-steps for PGD cells as described in unit)
    seconds: float
    peak_mib: float
    unit: str = "img/s"
    accuracy: float | None = None  # what "equal accuracy" is judged on (see `note`)
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else float("nan")


def timed(device: torch.device, fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """Run ``fn`` once; return (its value, wall seconds, peak MiB during it)."""
    reset_peak(device)
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    dt = time.perf_counter() - t0
    return out, dt, peak_bytes(device) / 2**20


def meta(args: argparse.Namespace) -> dict[str, Any]:
    """Where and how a benchmark ran (commit, CPU, threads, versions, arguments): the JSON's ``meta``."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO, check=False).stdout.strip()
    except OSError:
        commit = ""
    return {
        "commit": commit, "cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        # what runs bf16 convolutions: a CPU's bf16 units differ 2x between AVX512-BF16 and AMX (benchmarks/README.md)
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu_bf16": cpu_bf16(),
        "torch": torch.__version__, "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "args": vars(args),
    }


def use_torchvision_views() -> None:
    """Make uebench's contrastive views torchvision's for this process (an experiment, not a
    setting): the crop sampling that draws again (``augment.torchvision_resized_crop``) and the HSV
    hue (``augment.hsv_hue_shift``). ``contrastive_view``, the AUE/AAP strength views and the
    probe's augmented views look these names up at call time, so every user takes them. Records
    made under it carry the plugins' current versions although the views differ: keep them out of
    ``results/`` (``ssl_views_effect.py``)."""
    import benchmark.augment as aug
    from benchmark.ssl import probe

    aug.random_resized_crop = aug.torchvision_resized_crop  # type: ignore[assignment]
    probe.random_resized_crop = aug.torchvision_resized_crop  # type: ignore[assignment]
    aug._hue_shift = aug.hsv_hue_shift
