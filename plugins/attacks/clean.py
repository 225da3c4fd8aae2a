"""The identity attack: every table's clean row."""

from __future__ import annotations

from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import Attack, Budget, Poison, RunContext


class Clean(Attack):
    """No poisoning: the released images are the clean images (threat model: L-inf, eps 0). The clean
    row of every availability-poisoning table (EM, TAP, ISS, APBench); no source code to follow.

    Output ``x`` uint8 ``[N, C, H, W]`` equal to the input.
    """

    name = "clean"

    def budget(self) -> Budget:
        return Budget("linf", 0.0)

    def generate(self, train: ImageDataset, ctx: RunContext) -> Poison:
        return Poison(x=train.x.clone(), delta=None, kind="none", meta={})


PLUGINS = [Clean]
