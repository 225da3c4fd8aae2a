"""``bench new-plugin``: a ready third-party plugin package (pyproject with the ``uebench`` entry
point, a module with a documented, working plugin of the chosen kind, passing tests that use
uebench's pytest plugin, a README). docs/writing-plugins.md explains every part."""

from __future__ import annotations

import builtins
import re
from pathlib import Path

from benchmark.errors import UserError

KINDS = ("attack", "victim", "defense", "metric")


def check_name(kind: str, name: str) -> None:
    """A plugin name a package can be named after: lowercase letters, digits and single hyphens,
    starting with a letter (the registry's rule), at most 40 characters (the package is named
    ``uebench-NAME``), not a name an installed plugin of ``kind`` has."""
    from benchmark.plugin_checks import NAME, NAME_RULE

    if kind not in KINDS:
        raise UserError(f"kind must be one of {', '.join(KINDS)} (got {kind[:40]!r})")
    if not NAME.fullmatch(name) or len(name) > 40:
        raise UserError(f"NAME must be {NAME_RULE}, at most 40 characters (got {name[:60]!r})")
    from benchmark.registry import get_registry

    if name in get_registry().names(kind):
        raise UserError(f"NAME {name!r} is already a registered {kind} (`bench plugins`): choose another name")
    taken = installed_as(name)
    if taken:
        raise UserError(f"NAME {name!r} is taken: {taken}; `pip install -e` of the new package would replace it: choose another name")


def installed_as(name: str) -> str | None:
    """What already installed the package ``uebench-NAME`` would be: its distribution, or an
    importable module ``uebench_NAME`` (of any kind, or of none); ``None`` when neither exists."""
    import importlib.util
    from importlib import metadata

    dist = f"uebench-{name}"
    try:
        version = metadata.version(dist)
    except metadata.PackageNotFoundError:
        pass
    else:
        return f"the distribution {dist} {version} is already installed"
    module = "uebench_" + name.replace("-", "_")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):  # a broken module of that name is installed: taken all the same
        return f"a module {module} is already installed"
    if spec is not None:
        where = spec.origin if spec.origin not in (None, "namespace") else next(iter(spec.submodule_search_locations or []), "?")
        return f"the module {module} is already importable (from {where})"
    return None


def new_plugin(kind: str, name: str, directory: str | Path | None = None) -> Path:
    """Write the package ``uebench-<name>`` for a ``kind`` plugin called ``name`` into ``directory``
    (default ``./uebench-<name>``), which must not exist or be an empty directory. Returns it."""
    check_name(kind, name)
    root = Path(directory) if directory is not None else Path(f"uebench-{name}")
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise UserError(f"DIR {str(root)!r} already exists and is not an empty directory: choose another DIR")
    module = "uebench_" + name.replace("-", "_")
    cls = "".join(part.capitalize() for part in name.split("-"))
    if not cls[0].isalpha():
        cls = "P" + cls
    # a class named as something the generated files import or Python defines (``Poison``,
    # ``RunContext``, ``Exception``) would hide it: take the kind as a suffix
    taken = set(re.findall(r"\b[A-Z]\w*", MODULES[kind] + TESTS[kind] + INIT)) | set(dir(builtins))
    if cls in taken:
        cls += kind.capitalize()
    if cls.startswith("Test"):  # pytest would try to collect the class the tests import (and warn): ``AttackTest``
        cls = kind.capitalize() + cls
    subs = {"__NAME__": name, "__MODULE__": module, "__CLASS__": cls, "__KIND__": kind, "__KINDS__": f"{kind}s",
            "__A_KIND__": f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}", "__BASE__": kind.capitalize()}

    def fill(text: str) -> str:
        for key, value in subs.items():
            text = text.replace(key, value)
        return text

    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        f"src/{module}/__init__.py": INIT,
        f"src/{module}/{kind}.py": MODULES[kind],
        f"tests/test_{module}.py": TESTS[kind],
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(fill(text).lstrip("\n"))
    return root


def next_steps(kind: str, name: str, root: Path) -> str:
    """What ``bench new-plugin`` prints after writing the package ``root``: install and test it,
    then fill its TODOs."""
    import shlex

    module = "uebench_" + name.replace("-", "_")
    d = shlex.quote(str(root))
    return (f"wrote {root}/ (the {kind} {name!r} in package uebench-{name}); next:\n"
            f"  pip install -e {d} && bench plugins && (cd {d} && pytest)\n"
            f"  then fill its TODOs: replace the placeholder method in src/{module}/{kind}.py, rewrite the module and class "
            f"docstrings (paper, threat model, Source, Deviations) and the README's paragraph, add tests of the method; "
            f"docs/writing-plugins.md has the contracts")


PYPROJECT = '''
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "uebench-__NAME__"
version = "0.1.0"
description = "The __NAME__ __KIND__ for uebench (availability-poisoning benchmark)"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["uebench"]

# How uebench finds the plugin: the module's @hookimpl functions register its classes.
[project.entry-points.uebench]
__NAME__ = "__MODULE__"

[tool.setuptools.packages.find]
where = ["src"]

[tool.pytest.ini_options]
testpaths = ["tests"]
'''

README = '''
# uebench-__NAME__

The `__NAME__` __KIND__ for [uebench](https://github.com/uebench/uebench). TODO: one paragraph:
the method, its paper, and what it shows.

```bash
pip install -e .
bench plugins        # lists __KIND__ __NAME__ (uebench-__NAME__ 0.1.0)
pytest               # the tests, with uebench's pytest fixtures (uebench_check_plugin, uebench_run_cell)
```

In a matrix: `__KINDS__: [__NAME__, {name: __NAME__, params: {...}}]`. Profiles: `paper` (the
defaults: the paper's CIFAR-10 settings), `quick` (minutes on a CPU), `smoke` (seconds).
Before publishing, read uebench's docs/writing-plugins.md (contracts, versions, determinism).
'''

INIT = '''
"""uebench-__NAME__: the __NAME__ __KIND__, registered with uebench through the ``uebench`` entry point."""

from __future__ import annotations

from benchmark import hookimpl

from __MODULE__.__KIND__ import __CLASS__

__all__ = ["__CLASS__"]


@hookimpl
def register___KINDS__() -> list[type]:
    return [__CLASS__]
'''

_HEADER = '''
"""The __NAME__ __KIND__. TODO: replace the placeholder method below with yours and rewrite the
class docstring (paper, threat model, tensor shapes, the source followed, every deviation)."""

from __future__ import annotations

'''

MODULES = {
    "attack": _HEADER + '''import torch
from pydantic import Field

from benchmark import Attack, ImageDataset, Params, Poison, RunContext, release


class __CLASS__(Attack):
    """TODO: the method's name (Authors, Venue Year). Placeholder: uniform random noise in the
    L-inf ball, one draw per image.

    Threat model: L-inf, ``eps`` in [0, 1] pixel units, sample-wise. Input: the clean training set,
    uint8 ``[N, C, H, W]``; output: ``Poison`` with ``x`` uint8 ``[N, C, H, W]`` (row i belongs to
    ``train.x[i]``) and ``delta`` float ``[N, C, H, W]``, released with ``benchmark.release``.
    Source: TODO (official repository and file). Deviations: TODO.
    """

    name = "__NAME__"
    version = "1"  # part of every cache key: bump it whenever a change alters results

    class Params(Params):
        eps: float = Field(8 / 255, ge=0, le=1, description="L-inf radius in [0, 1] pixel units")

    # overrides of the paper defaults: `quick` shows the effect on a CPU in minutes, `smoke` runs in seconds
    profiles = {"quick": {}, "smoke": {}}

    def generate(self, train: ImageDataset, ctx: RunContext) -> Poison:
        eps = self.params.eps
        g = ctx.generator(0)  # this plugin's stream 0, seeded from the context's seed: reruns give the same poison
        delta = (torch.rand(train.x.shape, generator=g) * 2 - 1) * eps
        return Poison(x=release(train.x, delta), delta=delta, kind="samplewise", meta={"eps": eps})
''',
    "victim": _HEADER + '''import torch
from pydantic import Field
from torch import nn

from benchmark import Classifier, ImageDataset, Params, RunContext, TrainHooks, Victim
from benchmark.augment import crop_flip
from benchmark.training import SGDRecipe, train_supervised


class SmallCNN(nn.Module):
    """Two 3x3 conv blocks and global pooling: ``[B, C, H, W]`` -> features ``[B, width * 2]``."""

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        self.feature_dim = width * 2
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, width * 2, 3, padding=1), nn.BatchNorm2d(width * 2), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class __CLASS__(Victim):
    """TODO: the training algorithm's name (Authors, Venue Year). Placeholder: a small CNN trained
    with cross-entropy, SGD and a cosine schedule, random crop + flip.

    Input: the (possibly poisoned, possibly defended) training set, uint8 ``[N, C, H, W]``.
    Output: a ``benchmark.Classifier`` mapping float ``[B, C, H, W]`` in [0, 1] to logits ``[B, K]``.
    Every training step's loss goes through ``hooks.loss`` (``train_supervised`` does it), so
    training-stage defenses apply. Source: TODO. Deviations: TODO.
    """

    name = "__NAME__"
    version = "1"  # part of every cache key: bump it whenever a change alters results
    paradigm = "supervised"

    class Params(Params):
        width: int = Field(32, ge=1, description="channels of the first conv block")
        epochs: int = Field(60, ge=0)
        batch_size: int = Field(128, ge=1)
        lr: float = Field(0.1, gt=0)
        weight_decay: float = Field(5e-4, ge=0)

    profiles = {"quick": {"epochs": 15}, "smoke": {"width": 8, "epochs": 2, "batch_size": 32}}

    def fit(self, train: ImageDataset, ctx: RunContext, hooks: TrainHooks) -> nn.Module:
        p = self.params
        mean, std = train.mean_std()
        model = Classifier(SmallCNN(train.shape[0], p.width), p.width * 2, train.num_classes, mean, std).to(ctx.device)
        recipe = SGDRecipe.from_params(p, drop_last=False)  # epochs, batch_size, lr, weight_decay from Params
        pad = max(1, train.shape[1] // 8)
        # one EpochEvent per epoch goes to ctx.trace (the cell's curves, metrics' observers)
        return train_supervised(model, train, recipe, ctx, hooks=hooks, augment=lambda x, g: crop_flip(x, g, padding=pad),
                                desc="__NAME__")
''',
    "defense": _HEADER + '''import torch
from pydantic import Field

from benchmark import Defense, ImageDataset, Params, RunContext


class __CLASS__(Defense):
    """TODO: the countermeasure's name (Authors, Venue Year). Placeholder: bit-depth reduction,
    every pixel quantized to ``bits`` bits (rounded to the nearest of 2^bits levels).

    Stage ``data``: the released training set, uint8 ``[N, C, H, W]`` -> uint8 ``[N, C, H, W]`` with
    the same labels and indices, once, before the victim trains; applies to every victim. (A
    ``train``-stage defense overrides ``train_hooks`` instead, a ``model``-stage one ``repair``,
    which gets the matrix's clean hold-out; see docs/writing-plugins.md.) Source: TODO. Deviations: TODO.
    """

    name = "__NAME__"
    version = "1"  # part of every cache key: bump it whenever a change alters results
    stage = "data"
    applies_note = ""  # when applies_to() refuses a victim: why, in words

    class Params(Params):
        bits: int = Field(3, ge=1, le=8, description="bits per channel kept")

    profiles = {"quick": {}, "smoke": {}}

    def transform(self, train: ImageDataset, ctx: RunContext) -> ImageDataset:
        levels = 2**self.params.bits - 1
        x = (train.x.float() / 255 * levels).round_().mul_(255 / levels).round_().to(torch.uint8)
        return ImageDataset(x, train.y, train.classes, train.index)
''',
    "metric": _HEADER + '''from benchmark import CellArtifacts, Metric, Params, RunContext
from benchmark.training import accuracy


class __CLASS__(Metric):
    """TODO: what it measures (Authors, Venue Year). Placeholder: the generalization gap, accuracy
    on the training set the victim saw minus accuracy on the clean test set (a model that learned a
    shortcut fits its training set and fails the test set).

    Input: the cell (``cell.model`` maps float ``[B, C, H, W]`` in [0, 1] to logits ``[B, K]``;
    ``cell.train`` is the uint8 training set after the defense; ``cell.splits.test`` the clean
    test set). Output: ``{"__NAME__": gap}`` in [-1, 1] (``unit = "number"``). Source: TODO.
    Deviations: TODO.
    """

    name = "__NAME__"
    version = "1"  # part of every cache key: bump it whenever a change alters results
    unit = "number"

    class Params(Params):
        pass

    profiles = {"quick": {}, "smoke": {}}

    def compute(self, cell: CellArtifacts, ctx: RunContext) -> dict[str, float]:
        gap = accuracy(cell.model, cell.train, ctx) - accuracy(cell.model, cell.splits.test, ctx)
        return {"__NAME__": float(gap)}
''',
}

_TEST_HEADER = '''
"""Tests of the __NAME__ __KIND__, with uebench's pytest plugin: ``uebench_check_plugin`` (every
contract of __A_KIND__), ``uebench_run_cell`` (one cell through uebench's runner, with the kit's
own tiny stand-ins for the other axes) and ``uebench_tiny`` (uint8 [64, 3, 16, 16], 4 classes).
TODO: add tests of the method itself against small hand-computed references."""

from __future__ import annotations

import torch

from benchmark import RunContext
from __MODULE__ import __CLASS__


def test_contracts(uebench_check_plugin):
    uebench_check_plugin(__CLASS__)

'''

TESTS = {
    "attack": _TEST_HEADER + '''
def test_one_cell(uebench_run_cell):
    run = uebench_run_cell(attack=__CLASS__, victim="kit-supervised", defense="kit-none", metric="kit-accuracy")
    assert run.status == "ok"
    assert run.poison is not None and run.poison.x.dtype == torch.uint8


def test_within_budget(uebench_tiny):
    attack = __CLASS__(__CLASS__.Params(eps=4 / 255))
    poison = attack.generate(uebench_tiny, RunContext(seed=0))
    assert (poison.x.int() - uebench_tiny.x.int()).abs().max() <= 4
''',
    "victim": _TEST_HEADER + '''
def test_one_cell(uebench_run_cell):
    run = uebench_run_cell(attack="kit-clean", victim=__CLASS__, defense="kit-none", metric="kit-accuracy")
    assert run.status == "ok"
    assert [c["epoch"] for c in run.curves] == list(range(1, __CLASS__.profiles["smoke"]["epochs"] + 1))


def test_logits_shape(uebench_tiny):
    victim = __CLASS__(__CLASS__.Params(width=4, epochs=1, batch_size=32))
    from benchmark import TrainHooks

    model = victim.fit(uebench_tiny, RunContext(seed=0), TrainHooks())
    assert model.eval()(uebench_tiny.float_batch(torch.arange(5))).shape == (5, 4)
''',
    "defense": _TEST_HEADER + '''
def test_one_cell(uebench_run_cell):
    run = uebench_run_cell(attack="kit-noise", victim="kit-supervised", defense=__CLASS__, metric="kit-accuracy")
    assert run.status == "ok"


def test_quantizes_by_hand(uebench_tiny):
    out = __CLASS__(__CLASS__.Params(bits=1)).transform(uebench_tiny, RunContext(seed=0))
    assert set(out.x.unique().tolist()) <= {0, 255}
    assert torch.equal(out.x == 255, uebench_tiny.x >= 128)  # 1 bit: round(x / 255) * 255
''',
    "metric": _TEST_HEADER + '''
def test_one_cell(uebench_run_cell):
    run = uebench_run_cell(attack="kit-clean", victim="kit-supervised", defense="kit-none", metric=__CLASS__)
    assert run.status == "ok"
    assert -1.0 <= run.metrics["__NAME__"] <= 1.0
''',
}
