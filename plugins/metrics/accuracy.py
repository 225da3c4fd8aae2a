"""Top-1 accuracy on the clean test set."""

from __future__ import annotations

from pydantic import Field

from benchmark.interfaces import CellArtifacts, Metric, RunContext
from benchmark.params import Params
from benchmark.training import accuracy


class Accuracy(Metric):
    """Clean-test top-1 accuracy of the cell's final model, in [0, 1] (eval mode, no augmentation).

    The measure of every availability-poisoning paper (source: the tables of EM, TAP, ISS, APBench;
    no threat model: it reads the cell's model and the clean test split): low means the protection
    worked.
    Input: the test split, uint8 ``[N, C, H, W]``.
    """

    name = "accuracy"
    unit = "fraction"  # in [0, 1]; tables show it in %
    #: points; same-seed reruns at 2 threads moved quick CIFAR-10 cells by <= 0.81, recomputations on
    #: another CPU that regenerate the poison by <= 2.28 (benchmarks/README.md, "Audit tolerance")
    audit_tolerance = {"*": 3.0}

    class Params(Params):
        batch_size: int | None = Field(None, ge=1)  # inference batch; None: 1024 on CUDA, 256 on a CPU

    def compute(self, cell: CellArtifacts, ctx: RunContext) -> dict[str, float]:
        return {"accuracy": accuracy(cell.model, cell.splits.test, ctx, self.params.batch_size)}


PLUGINS = [Accuracy]
