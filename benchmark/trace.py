"""The training trace: per-epoch events a victim's training loop emits through its
:class:`~benchmark.interfaces.RunContext`, and anything may subscribe to (the runner records the
curves of every cell; a metric that needs the model at every epoch, such as the unlearnable
distance, listens without the victim knowing it is there).

The shared loops (:func:`benchmark.training.train_supervised`, :func:`benchmark.ssl.pretrain`)
emit one :class:`EpochEvent` at the end of every epoch; a third-party victim with its own loop
calls ``ctx.trace.emit(EpochEvent(...))`` the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn


@dataclass(frozen=True)
class EpochEvent:
    """The end of one training epoch.

    ``phase`` names the loop (``"supervised"``, ``"pretrain"``, ``"probe"``...); ``epoch`` counts
    from 1 to ``epochs``; ``loss`` is the mean training loss of the epoch (finite: the runner fails
    a cell whose recorded loss is NaN or infinite, as a diverged training) and ``accuracy`` the
    fraction of training samples classified correctly while training (on the (augmented,
    possibly adversarial) batches the model saw; NaN where the loop has no labels to predict);
    ``lr`` the learning rate at the end of the epoch. ``model`` is the live module being trained:
    a subscriber that keeps it must copy it (its weights change with the next step).
    """

    phase: str
    epoch: int
    epochs: int
    loss: float
    accuracy: float = math.nan
    lr: float = math.nan
    model: nn.Module | None = field(default=None, repr=False, compare=False)

    def numbers(self) -> dict[str, Any]:
        """The event without the model: JSON-ready (NaN as None)."""
        out: dict[str, Any] = {"phase": self.phase, "epoch": self.epoch, "epochs": self.epochs}
        for k in ("loss", "accuracy", "lr"):
            v = getattr(self, k)
            out[k] = None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 6)
        return out


Listener = Callable[[EpochEvent], None]


class Trace:
    """Subscribers to the epoch events of one job. ``emit`` calls each in subscription order."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Add ``listener``; returns a function that removes it again."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    @property
    def active(self) -> bool:
        return bool(self._listeners)

    def emit(self, event: EpochEvent) -> None:
        for listener in list(self._listeners):
            listener(event)


class CurveRecorder:
    """A subscriber that keeps every event's numbers: the training curves stored in a cell record."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: EpochEvent) -> None:
        self.events.append(event.numbers())
