"""What every result records about where and how it was computed."""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch


@functools.cache
def git_commit() -> str | None:
    """The commit of the uebench checkout, when it runs from one."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5, check=False
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (``/proc/cpuinfo`` on Linux; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            return frozenset(next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), []))
    except OSError:
        return frozenset()


def cpu_bf16(flags: Iterable[str] | None = None) -> str | None:
    """What runs bf16 matrix products on this CPU (or on one with ``flags``): ``AMX-BF16`` (matrix
    tiles), ``AVX512-BF16`` (vector dot products only; about half AMX's bf16 speed-up in
    benchmarks/README.md) or None."""
    have = cpu_flags() if flags is None else set(flags)
    return "AMX-BF16" if "amx_bf16" in have else "AVX512-BF16" if "avx512_bf16" in have else None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_model()


@functools.cache
def _dist_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


#: The fields of :func:`numerics`, in order.
NUMERICS_FIELDS = (
    "device_kind", "device_name", "dtype", "threads", "cpu_capability", "deterministic",
    "torch", "torchvision", "numpy", "kornia", "cuda", "cudnn", "cudnn_benchmark", "tf32", "matmul_precision",
)


def numerics(device: torch.device, precision: str = "auto") -> dict[str, Any]:
    """Everything besides the code, the data and the seeds that can change a number a job computes.

    Two records with equal cell keys but different ``numerics`` may differ in their values (float
    reductions depend on the thread count, the CPU's vector ISA, the GPU and its libraries; bf16
    autocast, the default on CUDA and the matrix's ``precision: bfloat16`` elsewhere). Every cell record keeps this dict as ``numerics``; :func:`mixed_numerics`
    says which fields differ across a results directory.

    ``dtype``: ``float32`` or ``bfloat16-autocast`` (what :attr:`RunContext.amp` selects);
    ``cpu_capability``: torch's CPU kernel ISA (``AVX512``, ``AVX2``, ``DEFAULT``...);
    ``deterministic``: ``torch.use_deterministic_algorithms``; on CUDA also cuDNN's version and
    autotuner flag, TF32 and the float32 matmul precision (``None`` elsewhere).
    """
    from benchmark.interfaces import RunContext

    cuda = device.type == "cuda"
    return {
        "device_kind": device.type,
        "device_name": device_name(device),
        "dtype": "bfloat16-autocast" if RunContext(device=device, precision=precision).amp else "float32",
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "torch": torch.__version__,
        "torchvision": _dist_version("torchvision"),
        "numpy": _dist_version("numpy"),
        "kornia": _dist_version("kornia"),
        "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark) if cuda else None,
        "tf32": bool(torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32) if cuda else None,
        "matmul_precision": torch.get_float32_matmul_precision() if cuda else None,
    }


def mixed_numerics(records: Iterable[dict[str, Any]]) -> dict[str, list[Any]]:
    """The ``numerics`` fields whose values differ across ``records`` (each cell's own, and its
    poison's, ``poison_meta.numerics``: a poison is shared by cells that may run elsewhere), each
    with its distinct values in first-seen order: ``{}`` when every number was computed alike.
    Records without the field (written before it existed) are left out.
    ``pid``/``host`` are not numerics: many processes and hosts may compute identical numbers."""
    seen: dict[str, list[Any]] = {}
    for rec in records:
        if not isinstance(rec, dict):
            continue
        poison = rec.get("poison_meta")
        for num in (rec.get("numerics"), poison.get("numerics") if isinstance(poison, dict) else None):
            if not isinstance(num, dict):
                continue
            for k, v in num.items():
                vals = seen.setdefault(k, [])
                if v not in vals:
                    vals.append(v)
    return {k: v for k, v in seen.items() if len(v) > 1}


def provenance(device: torch.device) -> dict[str, Any]:
    from benchmark import __version__

    return {
        "uebench": __version__,
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "device": str(device),
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
