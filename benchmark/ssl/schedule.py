"""The SSL pretraining learning-rate schedule of the CP/TP code: linear warm-up, then cosine to
``lr * min_ratio``."""

from __future__ import annotations

import math
from collections.abc import Callable


def warmup_cosine(
    total_steps: int, warmup_steps: int = 0, warmup_from: float = 0.0, min_ratio: float = 0.0
) -> Callable[[int], float]:
    """Multiplier of the base lr at step ``t`` (for ``LambdaLR``): from ``warmup_from`` (a ratio of
    the base lr) linearly up to the cosine curve's value at the end of warm-up, then cosine from
    1 down to ``min_ratio`` over ``total_steps`` (SupContrast-style: the cosine clock starts at 0)."""
    total = max(1, total_steps)

    def cosine(t: int) -> float:
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, t / total)))

    def f(t: int) -> float:
        if t < warmup_steps:
            return warmup_from + (cosine(warmup_steps) - warmup_from) * t / warmup_steps
        return cosine(t)

    return f
