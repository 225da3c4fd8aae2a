"""Reference classifiers that attacks train before crafting (TAP, T-AAP, UT-AAP): built, trained
and cached by their own settings, so two attacks (or two generate calls) that need the same model
on the same data train it once.

The cache spec names the architecture, the full training recipe, the augmentation, whether the
model normalizes its input, the training data and the seed -- never the attack that asks for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from benchmark.data.dataset import ImageDataset, content_key
from benchmark.interfaces import RunContext
from benchmark.models import build_classifier
from benchmark.training import Augment, SGDRecipe, train_supervised


def data_fingerprint(data: ImageDataset) -> str:
    """sha256 (20 hex digits) of a dataset's uint8 images and labels: the data key when the
    runner did not provide one (unit tests, library use)."""
    return content_key(data)


def reference_classifier(
    train: ImageDataset,
    ctx: RunContext,
    *,
    arch: str,
    recipe: SGDRecipe,
    augment: Augment | None,
    augment_name: str,
    normalize: bool,
    train_fn: Callable[..., nn.Module] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """A classifier trained on the clean ``train`` set, from ``ctx.cache`` when it holds one.

    ``augment_name`` must identify ``augment`` (it is part of the cache key). ``normalize``: the
    model standardizes its input with the training set's mean/std (TAP) or takes raw [0, 1]
    pixels (AUE/AAP). Returns ``(model in eval mode, meta)`` with meta ``reference_cached`` and
    ``reference_train_accuracy`` (clean training accuracy, no augmentation).
    """
    from benchmark.training import accuracy

    c = train.shape[0]
    mean, std = train.mean_std() if normalize else ([0.0] * c, [1.0] * c)
    model = build_classifier(arch, c, train.num_classes, mean, std, ctx.device)
    fit = train_fn or train_supervised

    def run(m: nn.Module) -> None:
        fit(m, train, recipe, ctx, augment=augment, desc=f"reference/{arch}")

    spec = {
        "purpose": "reference-classifier",
        "arch": arch,
        "recipe": recipe.model_dump(mode="json"),
        "augment": augment_name,
        "normalize": normalize,
        "data": ctx.data_key or data_fingerprint(train),
        "seed": ctx.seed,
    }
    if ctx.cache is not None:
        cached = ctx.cache.model(spec, model, run)
    else:
        run(model)
        cached = False
    model.eval()
    acc = accuracy(model, train, ctx)
    ctx.log(f"reference {arch}: {'cached' if cached else 'trained'}, clean train accuracy {acc:.4f}")
    return model, {"reference_cached": cached, "reference_train_accuracy": round(acc, 4)}
