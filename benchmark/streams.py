"""Named random streams: every independent use of randomness in the core and the built-in plugins,
and the integer offset that separates it from the others.

``RunContext.generator(stream)`` and ``RunContext.stream_seed(stream)`` seed from
``ctx.seed * 1_000_003 + offset``; :func:`benchmark.repair.seeded` and
:class:`benchmark.ssl.poisoning.seeded` seed torch's global RNG the same way. A name maps to
exactly the offset its call site used before streams had names, so every draw (and every cached
result) is unchanged. Some offsets are shared by streams of different plugins or stages that never
run in one context together (``em.init`` and ``pue.init`` are both 3): the names say whose stream
it is, the numbers stay as they were. Never renumber a stream: its draws, hence the numbers of
every cell that uses it, would change.

A third-party plugin passes a raw ``int`` offset (the legacy form, still accepted), or one of these
names when it deliberately shares a stream with the core (``"train"``: the batch order and
augmentation of :func:`benchmark.training.train_supervised`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal, get_args

#: the name of a random stream (see :data:`STREAMS`)
StreamName = Literal[
    "default",
    "train",
    "em.init",
    "em.classwise.batches",
    "pue.init",
    "pue.classwise.batches",
    "pue.noise",
    "random-noise.delta",
    "at.start",
    "probe.head",
    "probe.views",
    "ssl.pretrain",
    "adversarial.init",
    "adversarial.augment",
    "adversarial.restart-score",
    "moco.keys",
    "cutout.masks",
    "gaussian-noise.draws",
    "aue.batches",
    "aue.augment",
    "lsp.clusters",
    "ueraser.augment",
    "cp.classwise.init",
    "cp.classwise.model",
    "cp.classwise.keys",
    "cp.classwise.batches",
    "cp.samplewise.init",
    "cp.samplewise.model",
    "cp.samplewise.keys",
    "cp.samplewise.batches",
    "recovery.batches",
    "i-bau.repair",
    "sau.repair",
    "finetune.repair",
    "scratch.repair",
    "tue.model",
    "tue.keys",
    "tue.init",
    "tue.batches",
    "tp.model",
    "tp.batches",
    "kit.attack",
    "kit.victim",
]

#: stream name -> offset (exactly the integer each call site used before the names; never renumber)
STREAMS: Final[Mapping[StreamName, int]] = MappingProxyType({
    "default": 0,  # RunContext.generator()'s default; a plugin's ctx.generator(0) (the scaffold's) is the same stream
    "train": 1,  # train_supervised: batch order and augmentation; weight_noise's robust training on purpose
    "em.init": 3,  # EM: random start of delta (sample-wise; class-wise since 2026-12-07)
    "em.classwise.batches": 5,  # EM: class-wise shuffled batch order
    "pue.init": 3,  # PUE: random start of delta
    "pue.classwise.batches": 5,  # PUE: class-wise shuffled batch order
    "pue.noise": 31,  # PUE: the weight-noise draws (a device generator's seed)
    "random-noise.delta": 7,  # the random-noise attack's uniform delta
    "at.start": 7,  # AT: the random start of PGD (CPU tensors)
    "probe.head": 7,  # SSL linear probe: the head's batch order
    "probe.views": 8,  # SSL linear probe: augmented views of the features' images
    "ssl.pretrain": 11,  # ssl.pretrain: batch order and the two views
    "adversarial.init": 11,  # TAP/AAP crafting: random initialization of delta
    "adversarial.augment": 12,  # TAP/AAP crafting: the augmentation drawn every PGD step
    "adversarial.restart-score": 13,  # TAP restarts: the augmentation draw that scores a restart
    "moco.keys": 13,  # the moco victim: key shuffling across splits
    "cutout.masks": 21,  # cutout: mask positions
    "gaussian-noise.draws": 23,  # gaussian-noise defense: the added noise
    "aue.batches": 21,  # AUE: model-training batch order
    "aue.augment": 22,  # AUE: the strength-s augmentation draws
    "lsp.clusters": 31,  # LSP: the synthetic class clusters
    "ueraser.augment": 31,  # UEraser: its augmentation draws
    "cp.classwise.init": 30,  # CP: class-wise delta random start
    "cp.classwise.model": 31,  # CP class-wise phase: encoder initialization (global RNG)
    "cp.classwise.keys": 32,  # CP class-wise phase: MoCo key shuffling
    "cp.classwise.batches": 33,  # CP class-wise phase: batch order and views
    "cp.samplewise.init": 33,  # CP sample-wise phase: random start of delta (no class-wise phase ran)
    "cp.samplewise.model": 41,  # CP sample-wise phase: encoder initialization (global RNG)
    "cp.samplewise.keys": 42,  # CP sample-wise phase: MoCo key shuffling
    "cp.samplewise.batches": 43,  # CP sample-wise phase: batch order and views
    "recovery.batches": 41,  # recovery defense: hold-out batch order
    "i-bau.repair": 41,  # I-BAU repair (global RNG and its generator)
    "sau.repair": 43,  # SAU repair (global RNG and its generator)
    "finetune.repair": 47,  # finetune repair (global RNG and its generator)
    "scratch.repair": 53,  # scratch repair: the re-initialized model and its training
    "tue.model": 51,  # TUE: encoder initialization (global RNG)
    "tue.keys": 52,  # TUE: MoCo key shuffling
    "tue.init": 53,  # TUE: random start of delta
    "tue.batches": 54,  # TUE: batch order and views
    "tp.model": 61,  # TP: model initialization (global RNG)
    "tp.batches": 62,  # TP: batch order and views
    "kit.attack": 7,  # benchmark.testing's stub attack: its uniform delta
    "kit.victim": 11,  # benchmark.testing's stub victim: batch order
})

assert set(STREAMS) == set(get_args(StreamName)), "every stream name has exactly one offset"


def stream_offset(stream: StreamName | int) -> int:
    """The offset of ``stream``: a name from :data:`STREAMS`, or a raw ``int`` offset (legacy form)."""
    if isinstance(stream, int):
        return stream
    try:
        return STREAMS[stream]
    except KeyError:
        raise ValueError(f"unknown random stream {stream!r}; known: {', '.join(sorted(STREAMS))} (or pass an int offset)") from None


def stream_seed(seed: int, stream: StreamName | int) -> int:
    """The seed of ``stream`` under the run seed ``seed``: ``seed * 1_000_003 + offset``."""
    return seed * 1_000_003 + stream_offset(stream)
