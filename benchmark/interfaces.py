"""The contracts between the core and the plugins: Attack, Victim, Defense, Metric, and what flows
between them (Poison, Budget, RunContext, TrainHooks, CellArtifacts)."""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from torch import nn

from benchmark.data.dataset import DataSplits, ImageDataset
from benchmark.plugin import Plugin
from benchmark.streams import StreamName, stream_seed
from benchmark.trace import EpochEvent, Trace

if TYPE_CHECKING:
    from benchmark.store import ArtifactCache

Norm = Literal["linf", "l2", "l0", "none"]
#: The scale of a metric's values, for tables: ``fraction`` (in [0, 1], shown as %), ``percent``
#: (already in %), ``ratio`` or ``number`` (shown as they are, 3 significant digits).
Unit = Literal["fraction", "percent", "ratio", "number"]
UNITS: tuple[str, ...] = ("fraction", "percent", "ratio", "number")
#: images per chunk when a whole dataset is processed in float (bounds the transient float copy:
#: 2048 CIFAR images are 24 MiB as float32, whatever N is).
_CHUNK = 2048


# --------------------------------------------------------------------------------------------- run


@dataclass
class RunContext:
    """Where and how a job runs: device, seed, profile, the artifact cache and a logger.

    ``data_key`` names the clean dataset the job runs on (the runner fills it with the content key
    of the plan's dataset spec); attacks put it into the cache specs of intermediate models
    (reference classifiers), so a model is shared exactly between jobs on the same data.
    Empty when unknown (then attacks fingerprint the data themselves).

    ``trace`` carries the per-epoch events of the job's training loops (:mod:`benchmark.trace`):
    the runner records them as the cell's curves, and metrics may subscribe to them.
    """

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    seed: int = 0
    profile: str = "paper"
    cache: ArtifactCache | None = None
    log: Callable[[str], None] = lambda msg: None
    data_key: str = ""
    trace: Trace = field(default_factory=Trace)
    #: the matrix's ``precision``: ``auto`` (bf16 autocast on CUDA only), ``float32`` or ``bfloat16``
    precision: str = "auto"

    def generator(self, stream: StreamName | int = "default") -> torch.Generator:
        """A CPU generator seeded from the context seed and ``stream``: a name from
        :data:`benchmark.streams.STREAMS` (e.g. ``"train"``), or a raw ``int`` offset (legacy form,
        for third-party plugins). Independent uses of randomness take different streams."""
        return torch.Generator().manual_seed(self.stream_seed(stream))

    def stream_seed(self, stream: StreamName | int = "default") -> int:
        """The integer seed of ``stream`` (``seed * 1_000_003 + offset``), for RNGs that take a seed."""
        return stream_seed(self.seed, stream)

    @property
    def amp(self) -> bool:
        """Whether forward passes run in bf16 autocast: on CUDA unless the matrix asks for
        ``float32``, elsewhere only when it asks for ``bfloat16``."""
        return self.precision == "bfloat16" or (self.precision == "auto" and self.device.type == "cuda")


# ------------------------------------------------------------------------------------------ attack


@dataclass(frozen=True)
class Budget:
    """An attack's threat model: the norm and the radius of the allowed change per image.

    ``linf``: ``eps`` in [0, 1] pixel units, checked on uint8 as ``max |poison - clean| <= floor(eps * 255 + 1/2)``
    (the release rounds to the nearest level: a change of exactly half a level beyond a whole one may round up).
    ``l2``: per-image L2 norm in [0, 1] units; the check allows the rounding of uint8 release.
    ``l0``: number of pixel positions (all channels of one location count once) that may change.
    ``none``: unbounded (declared by attacks that are not perturbation budgets, e.g. label-agnostic baselines).
    """

    norm: Norm = "linf"
    eps: float = 8 / 255

    def __str__(self) -> str:
        """``L-inf 8/255``, ``L2 1.304``, ``L0 1``, ``unbounded``: as messages name the budget."""
        if self.norm == "none":
            return "unbounded"
        name = {"linf": "L-inf", "l2": "L2", "l0": "L0"}[self.norm]
        on255 = self.eps * 255
        return f"{name} {round(on255)}/255" if self.norm == "linf" and abs(on255 - round(on255)) < 1e-6 else f"{name} {self.eps:.4g}"

    def violation(self, clean: torch.Tensor, poison: torch.Tensor) -> str | None:
        """``None`` if every image of ``poison`` (uint8 ``[N,C,H,W]``) is within budget of ``clean``,
        else a message naming the worst image."""
        if poison.shape != clean.shape or poison.dtype != torch.uint8:
            return f"poison must be uint8 {tuple(clean.shape)}, got {poison.dtype} {tuple(poison.shape)}"
        if self.norm == "none":
            return None
        worst_val, worst_idx, limit = 0.0, -1, 0.0
        for start in range(0, len(clean), _CHUNK):
            d = poison[start : start + _CHUNK].int() - clean[start : start + _CHUNK].int()
            if self.norm == "linf":
                per = d.abs().amax(dim=(1, 2, 3)).float()
                limit = float(math.floor(self.eps * 255 + 0.5 + 1e-6))  # round half up, as 8.5/255 may release
            elif self.norm == "l2":
                per = d.float().div(255).flatten(1).norm(dim=1)
                limit = self.eps + 0.5 / 255 * math.sqrt(d[0].numel())
            else:  # l0
                per = (d != 0).any(dim=1).flatten(1).sum(dim=1).float()
                limit = float(self.eps)
            v, i = per.max(0)
            if v.item() > worst_val:
                worst_val, worst_idx = v.item(), start + int(i)
        if worst_val > limit + 1e-6:
            return f"{self.norm} distance {worst_val:.4g} of image {worst_idx} exceeds the budget {limit:.4g}"
        return None


def release(clean: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """The one release policy of uebench: signed ``delta`` (float, [0,1] units, ``[N,C,H,W]``),
    ``clamp(x + delta, 0, 1)``, rounded to the nearest uint8. ``clean`` is uint8 ``[N,C,H,W]``.

    (EM's and PUE's official loaders clamp delta*255 to [0, 255] before adding, dropping the
    negative half of the noise; TAP/TP round half-up; others floor.)
    """
    out = torch.empty_like(clean)
    for s in range(0, len(clean), _CHUNK):
        x = clean[s : s + _CHUNK].float().div_(255)
        out[s : s + _CHUNK] = x.add_(delta[s : s + _CHUNK].to(x)).clamp_(0, 1).mul_(255).round_().to(torch.uint8)
    return out


@dataclass
class Poison:
    """A released poison: the uint8 training images the victim gets.

    ``x`` uint8 ``[N, C, H, W]`` aligned with the clean training set's index; ``delta`` the float
    perturbation (``[N,C,H,W]`` sample-wise or ``[K,C,H,W]`` class-wise, may be ``None``);
    ``kind`` ``"samplewise" | "classwise" | "none"``; ``meta`` hyperparameters and statistics
    (numbers and strings only: it goes into JSON); ``surrogate`` an optional model the attack
    trained (PUE's noise-robust certification surrogate, TAP's reference model; see
    :data:`benchmark.weight_noise.ROBUST_SURROGATE_LEVELS` for which ones are certified).
    """

    x: torch.Tensor
    delta: torch.Tensor | None = None
    kind: str = "samplewise"
    meta: dict[str, Any] = field(default_factory=dict)
    surrogate: nn.Module | None = None


class Attack(Plugin):
    """An availability attack: turns the clean training set into a released :class:`Poison`.

    ``generate`` gets the clean training set (uint8 ``[N,C,H,W]``) and returns a poison whose
    ``x`` has the same shape. The runner checks :meth:`budget` on every poison.
    """

    kind = "attack"

    def budget(self) -> Budget:
        """The threat model every poison of this attack is checked against: L-inf ``params.eps``;
        an attack without an ``eps`` param gets L-inf 8/255 (the papers' CIFAR-10 budget). Override
        it to declare another (``Budget("l2", 0.5)``, ``Budget("l0", 1)``, ``Budget("none", 0)``)."""
        eps = getattr(self.params, "eps", 8 / 255)
        return Budget("linf", float(eps))

    @abstractmethod
    def generate(self, train: ImageDataset, ctx: RunContext) -> Poison:
        """See the class docstring."""


# ------------------------------------------------------------------------------------------ victim


class TrainHooks:
    """How a training-stage defense changes each supervised step. The default is plain ERM.

    ``loss(model, x, y, criterion)`` gets an augmented float batch ``[B,C,H,W]`` in [0,1] and labels
    ``[B]``, and returns the scalar loss to minimize (AT: on PGD examples; UEraser: worst of K views).
    """

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        return criterion(model(x), y)


class Victim(Plugin):
    """A data user's training algorithm: fits a model on the (poisoned, defended) training set.

    ``fit`` returns a :class:`~benchmark.models.Classifier` that maps ``[B,C,H,W]`` in [0,1] to logits.
    Self-supervised victims pretrain an encoder and then fit a linear probe on the same training set.
    """

    kind = "victim"
    #: "supervised" or "contrastive": defenses use it to say where they apply.
    paradigm: ClassVar[str] = "supervised"

    @abstractmethod
    def fit(self, train: ImageDataset, ctx: RunContext, hooks: TrainHooks) -> nn.Module:
        """See the class docstring."""


# ----------------------------------------------------------------------------------------- defense


#: :attr:`Defense.applies_note` of the training-stage defenses that change the supervised step
SUPERVISED_ONLY = "supervised victims only: it changes the cross-entropy training step, which contrastive victims do not take"


class Defense(Plugin):
    """A countermeasure. ``stage`` says where it acts:

    ``data``: :meth:`transform` maps the uint8 training set to a uint8 training set (ISS, blur...);
    ``train``: :meth:`train_hooks` changes every training step (AT, UEraser);
    ``model``: :meth:`repair` fixes a trained model with the clean hold-out (I-BAU, SAU);
    ``none``: the baseline. :meth:`applies_to` says which victims it can defend; other cells are N/A.
    """

    kind = "defense"
    stage: ClassVar[str] = "none"
    #: what :meth:`applies_to` accepts, in words (N/A cells and leaderboards show it)
    applies_note: ClassVar[str] = ""

    def applies_to(self, victim: Victim) -> bool:
        return True

    def transform(self, train: ImageDataset, ctx: RunContext) -> ImageDataset:
        return train

    def train_hooks(self, ctx: RunContext) -> TrainHooks:
        return TrainHooks()

    def repair(self, model: nn.Module, holdout: ImageDataset, ctx: RunContext) -> nn.Module:
        return model

    def leaves_training_alone(self) -> bool:
        """Whether the victim trains as without any defense (no data transform, no training hooks:
        ``none`` and the model-stage defenses). Cells that differ only in such defenses train the
        very same victim: the runner trains it once and the cost estimate counts it once."""
        cls = type(self)
        return self.stage in ("none", "model") and cls.transform is Defense.transform and cls.train_hooks is Defense.train_hooks


# ------------------------------------------------------------------------------------------ metric


@dataclass
class CellArtifacts:
    """Everything a metric may look at once a cell's model is trained."""

    model: nn.Module
    splits: DataSplits
    train: ImageDataset  # what the victim actually trained on (poisoned, then defended)
    poison: Poison
    victim: Victim
    defense: Defense
    #: per-epoch numbers of the victim's training (:class:`benchmark.trace.EpochEvent.numbers`)
    curves: list[dict[str, Any]] = field(default_factory=list)
    #: what each metric's :meth:`Metric.observer` collected during training, by metric name
    observed: dict[str, Any] = field(default_factory=dict)


class Metric(Plugin):
    """A measurement of a trained cell. ``compute`` returns ``{metric_name: value}`` (floats).

    ``unit`` declares the scale of the values (``fraction``, ``percent``, ``ratio``, ``number``);
    the runner stores it in every record beside the values, and reports format by it.

    A metric that needs more than the final model (the model at every epoch, say) returns a
    listener from :meth:`observer`: the runner subscribes it to the cell's training trace before
    the victim trains (the victim does not know it is there) and hands it back in
    ``cell.observed[self.name]``.
    """

    kind = "metric"
    #: the scale of every value :meth:`compute` returns (see :data:`Unit`); tables format by it.
    #: ``number`` (the default) shows values as they are, so a metric in [0, 1] that does not say
    #: ``fraction`` still prints 3 significant digits, never one decimal.
    unit: ClassVar[Unit] = "number"
    #: per-output exceptions to :attr:`unit`, by the key :meth:`compute` returns
    units: ClassVar[dict[str, Unit]] = {}
    #: what ``bench audit`` accepts between a recorded value and its recomputation on other float
    #: kernels (another CPU, another thread count): the largest ``|recorded - recomputed|`` per
    #: output key, in display units (points for ``fraction`` and ``percent``), ``"*"`` for the keys
    #: not named. Set it from measured reruns (benchmarks/README.md, "Audit tolerance"), never by
    #: guess: an output without one must be recomputed identically.
    audit_tolerance: ClassVar[dict[str, float]] = {}

    @classmethod
    def unit_of(cls, key: str) -> Unit:
        """The declared scale of the output ``key``."""
        return cls.units.get(key, cls.unit)

    @classmethod
    def tolerance_of(cls, key: str) -> float:
        """``bench audit``'s tolerance for the output ``key`` (0: identical values required)."""
        return cls.audit_tolerance.get(key, cls.audit_tolerance.get("*", 0.0))

    def observer(self, ctx: RunContext) -> Callable[[EpochEvent], None] | None:
        """A fresh listener for one cell's training trace, or ``None`` (the default)."""
        return None

    @abstractmethod
    def compute(self, cell: CellArtifacts, ctx: RunContext) -> dict[str, float]:
        """See the class docstring."""
