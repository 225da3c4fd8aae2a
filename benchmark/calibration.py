"""This CPU against the one the cost model's ``cpu`` rates were measured on: a short training probe.

``benchmark/costs.yaml`` prices CPU work at the rates of the machine the evidence was computed on
(``rates.cpu.device``). Another CPU can be several times slower or faster (a 2-core AMD EPYC
without AVX-512 ran the quickstart 3.5-4x slower than the project's Intel VM). Before a CPU run,
``bench run M --dry-run`` therefore trains the quick profile's small CNN for about a second here
with the loop every supervised victim uses (``training.train_supervised``: batch 128, crop+flip,
channels_last, one torch thread) and compares its rate with the same loop's rate on the reference
machine (``cpu_probe``): the ratio scales the ``cpu`` row into a ``cpu (here)`` row.

It assumes every kind of pass (``train``, ``grad``, ``forward``, ``ssl``) and every architecture slows
alike; that holds where the network's arithmetic dominates, which is the case on a CPU. The probe
trains on random images (the rate does not depend on pixel values), so it needs no dataset. It
costs a few seconds (most of them torch importing its compiler on the first optimizer), so its
result is kept for a day in ``$XDG_CACHE_HOME/uebench/calibration.json`` (``~/.cache`` without it),
keyed by the CPU model and torch version; delete the file to measure again (e.g. after the
machine's load changed).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from benchmark.data.torchvision_sets import cache_root
from benchmark.provenance import cpu_model

#: images per timed repetition of the probe (3 batches of 128) and the least time spent timing
PROBE_IMAGES = 384
PROBE_SECONDS = 1.0
#: how long a cached probe is reused
MAX_AGE_S = 24 * 3600


@dataclass(frozen=True)
class Calibration:
    """How this CPU compares with the cost model's: ``factor`` multiplies the ``cpu`` row's seconds.

    ``rate`` is this CPU's probe (images/s of small-CNN training, 1 thread), ``reference`` the same
    probe where the ``cpu`` rates were measured; ``seconds`` is what the probe took here."""

    cpu: str
    torch: str
    rate: float
    reference: float
    seconds: float
    measured: float  # time.time() of the probe
    cached: bool = False

    @property
    def factor(self) -> float:
        return self.reference / self.rate

    def describe(self) -> str:
        """One line for the dry-run's estimate."""
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.measured))
        return (f"cpu (here): {self.cpu}: the quick small CNN's training (1 thread) ran {self.rate:,.0f} img/s "
                f"in a {self.seconds:.0f}-s probe at {when}{' (cached)' if self.cached else ''}, "
                f"{self.reference:,.0f} where the cpu rates were measured: the cpu row x {self.factor:.2f}, "
                f"assuming every pass slows alike")


def probe_rate(min_seconds: float = PROBE_SECONDS, images: int = PROBE_IMAGES) -> tuple[float, float]:
    """(images per second, seconds spent): the small CNN of the quick profile trained with
    ``train_supervised`` (batch 128, crop+flip) on ``images`` random CIFAR-sized images, one torch
    thread, after a one-batch warm-up; repetitions until ``min_seconds`` of timing, the fastest kept
    (a shared machine is noisy). The caller's thread count is restored."""
    from benchmark.data.dataset import ImageDataset
    from benchmark.interfaces import RunContext
    from benchmark.models import build_classifier
    from benchmark.training import SGDRecipe, train_supervised

    start = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        g = torch.Generator().manual_seed(0)
        x = torch.randint(0, 256, (images, 3, 32, 32), dtype=torch.uint8, generator=g)
        data = ImageDataset(x, torch.arange(images) % 10, tuple(str(k) for k in range(10)))
        ctx = RunContext(device=torch.device("cpu"))
        mean, std = data.mean_std()
        model = build_classifier("small-cnn", 3, 10, mean, std, ctx.device)
        recipe = SGDRecipe(epochs=1, batch_size=128, nesterov=True)
        train_supervised(model, data.select(torch.arange(128)), recipe, ctx)  # warm-up
        best, timed = 0.0, 0.0
        while not best or timed < min_seconds:
            t0 = time.perf_counter()
            train_supervised(model, data, recipe, ctx)
            dt = time.perf_counter() - t0
            timed += dt
            best = max(best, (images // 128) * 128 / dt)
    finally:
        torch.set_num_threads(threads)
    return best, time.perf_counter() - start


def cache_file() -> Path:
    """Where :func:`calibrate` keeps its probe."""
    return cache_root() / "calibration.json"


def _cached(path: Path, reference: float) -> Calibration | None:
    """The probe kept in ``path`` if it is this CPU's and torch's and under a day old, else ``None``."""
    try:
        c = Calibration(**{**json.loads(path.read_text()), "reference": reference, "cached": True})
    except (OSError, ValueError, TypeError):
        return None
    fresh = 0 <= time.time() - c.measured < MAX_AGE_S
    return c if fresh and c.cpu == cpu_model() and c.torch == torch.__version__ and c.rate > 0 else None


def calibrate(costs: dict[str, Any], probe: Callable[[], tuple[float, float]] | None = None,
              path: Path | None = None) -> Calibration | None:
    """This CPU against ``costs`` (``costs.yaml``'s data): a probe under a day old from ``path``
    (default :func:`cache_file`), else a new one (``probe``, default :func:`probe_rate`), kept
    there; ``None`` when ``costs`` names no reference probe."""
    ref = costs.get("cpu_probe")
    if not ref:
        return None
    path = path or cache_file()
    got = _cached(path, float(ref["rate"]))
    if got is not None:
        return got
    rate, seconds = (probe or probe_rate)()
    got = Calibration(cpu=cpu_model(), torch=torch.__version__, rate=rate, reference=float(ref["rate"]),
                      seconds=seconds, measured=time.time())
    try:  # a cache that cannot be written only costs the next dry-run its probe
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        keep = {k: v for k, v in asdict(got).items() if k not in ("reference", "cached")}
        tmp.write_text(json.dumps(keep, indent=1) + "\n")
        tmp.replace(path)
    except OSError:
        pass
    return got
