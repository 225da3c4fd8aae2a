"""Recipes built from a plugin's params (benchmark/recipe.py), and the recipes the built-in plugins
build with it, against the papers' settings written out by hand."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from benchmark.params import resolve_params
from benchmark.registry import Registry, make_plugin_manager
from benchmark.ssl import PretrainRecipe, ProbeRecipe
from benchmark.training import SGDRecipe


class _P(BaseModel):
    epochs: int = 7
    lr: float = 0.3
    ref_epochs: int = 3
    ref_lr: float = 0.05
    ref_strength: float = 0.4  # not a recipe setting
    batch_size: int = 512  # crafting batch, not the reference model's


def test_fields_come_from_params_of_the_same_name_and_the_rest_are_defaults() -> None:
    r = SGDRecipe.from_params(_P())
    assert (r.epochs, r.lr, r.batch_size) == (7, 0.3, 512)
    assert r.model_dump() == SGDRecipe(epochs=7, lr=0.3, batch_size=512).model_dump()


def test_a_prefix_reads_another_group_and_ignores_unprefixed_fields() -> None:
    r = SGDRecipe.from_params(_P(), "ref_")
    assert (r.epochs, r.lr, r.batch_size) == (3, 0.05, 128)  # 128: the recipe's default, not the crafting batch


def test_fixed_values_win_over_params_and_unknown_ones_are_refused() -> None:
    r = SGDRecipe.from_params(_P(), "ref_", epochs=9, nesterov=True)
    assert (r.epochs, r.lr, r.nesterov) == (9, 0.05, True)
    with pytest.raises(ValidationError):
        SGDRecipe.from_params(_P(), strength=0.4)
    with pytest.raises(ValidationError):
        SGDRecipe.from_params(_P(), epochs="many")


def _plugin(kind: str, name: str, profile: str = "paper"):
    cls = Registry(make_plugin_manager(entry_points=False)).entry(kind, name).obj
    return cls(resolve_params(cls, profile, {}))


def test_builtin_recipes_are_the_papers() -> None:
    # TAP (Fowl et al.): ResNet-18 reference, 40 epochs, lr 0.1 x0.1 at 14/25/35, Nesterov, batch 128
    assert _plugin("attack", "tap").recipe() == SGDRecipe(
        epochs=40, lr=0.1, weight_decay=5e-4, schedule="multistep", milestones=(14, 25, 35), nesterov=True, batch_size=128
    )
    # AAP (Wang et al.): lr 0.5, wd 1e-4, 10-epoch warm-up then cosine over 40 epochs, every batch kept
    assert _plugin("attack", "t-aap").recipe() == SGDRecipe(epochs=40, lr=0.5, weight_decay=1e-4, warmup_epochs=10, drop_last=False)
    # PUE's certify surrogate: 60 epochs, grad-clip 5
    assert _plugin("metric", "certified-learnability").recipe() == SGDRecipe(epochs=60, grad_clip=5.0)
    # CP/TP pretraining: 1000 epochs, batch 512, lr 0.5, warm-up from lr 0.01 (a 0.02 share of 0.5)
    simclr = _plugin("victim", "simclr")
    assert simclr.pretrain_recipe() == PretrainRecipe(epochs=1000, batch_size=512, lr=0.5, weight_decay=1e-4, warmup_from=0.02)
    assert simclr.probe_recipe() == ProbeRecipe(epochs=100, batch_size=512, lr=1.0, weight_decay=0.0)
    quick = _plugin("victim", "simclr", "quick").probe_recipe()
    assert (quick.lr, quick.standardize, quick.augment) == (0.1, True, False)  # the quick probe keys, under "probe_"
