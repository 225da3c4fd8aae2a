"""Built-in datasets, executors and architectures, registered through the public hooks like any plugin."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from benchmark.data.digits import Digits
from benchmark.data.fashion_mnist import FashionMNIST
from benchmark.data.imagefolder import ImageFolder
from benchmark.data.npz import Npz
from benchmark.data.source import DatasetSource
from benchmark.data.torchvision_sets import SVHN, Cifar10, Cifar100
from benchmark.executor import Executor
from benchmark.executors.inline import Inline
from benchmark.executors.local import Local
from benchmark.executors.slurm import Slurm
from benchmark.hookspecs import hookimpl
from benchmark.models import BUILTIN_MODELS
from benchmark.registry import Unloadable


@hookimpl
def register_datasets() -> list[type[DatasetSource] | Unloadable]:
    return [Digits, FashionMNIST, Cifar10, Cifar100, SVHN, Npz, ImageFolder]


@hookimpl
def register_executors() -> list[type[Executor] | Unloadable]:
    return [Inline, Local, Slurm]


@hookimpl
def register_models() -> dict[str, Callable[[int], nn.Module]]:
    return dict(BUILTIN_MODELS)
