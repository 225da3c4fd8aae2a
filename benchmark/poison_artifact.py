"""A poison as a cache artifact: tensors (``x``, ``delta``, the attack's surrogate's state dict) and
JSON meta, both ways, and the digest that tells two generations of one poison spec apart."""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from benchmark.interfaces import Poison
from benchmark.models import classifier_from_state, classifier_spec

#: prefix of the surrogate's state-dict entries in a poison artifact
SURROGATE = "surrogate."


def poison_to_tensors(p: Poison) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A poison as artifact tensors and meta: ``x``, ``delta``, and the attack's surrogate (a
    classifier from :func:`~benchmark.models.build_classifier`) as ``surrogate.*`` state-dict
    entries with its architecture in ``meta["surrogate"]``."""
    tensors = {"x": p.x}
    if p.delta is not None:
        tensors["delta"] = p.delta.float()
    meta = {"kind": p.kind, **p.meta}
    if p.surrogate is not None:
        meta["surrogate"] = classifier_spec(p.surrogate)
        tensors.update({SURROGATE + k: v.detach().cpu() for k, v in p.surrogate.state_dict().items()})
    return tensors, meta


def poison_digest(x: torch.Tensor) -> str:
    """SHA-256 of the poisoned images' bytes (shape and dtype included): two generations of one
    poison spec are the same poison exactly when their digests are equal."""
    x = x.detach().cpu().contiguous()
    h = hashlib.sha256(f"{tuple(x.shape)}|{x.dtype}|".encode())
    h.update(x.numpy().tobytes())
    return h.hexdigest()


def tensors_to_poison(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Poison:
    """The :class:`~benchmark.interfaces.Poison` that :func:`poison_to_tensors` stored."""
    meta = dict(meta)
    kind = meta.pop("kind", "samplewise")
    spec = meta.pop("surrogate", None)
    surrogate = None
    if spec is not None:
        state = {k[len(SURROGATE) :]: v for k, v in tensors.items() if k.startswith(SURROGATE)}
        surrogate = classifier_from_state(spec, state)
    return Poison(x=tensors["x"], delta=tensors.get("delta"), kind=kind, meta=meta, surrogate=surrogate)
