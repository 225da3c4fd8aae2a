"""Architectures. Each is registered by name through the ``register_models`` hook
(:mod:`benchmark.hookspecs`); ``timm/<name>`` builds any timm model as a backbone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn

from benchmark.errors import UserError, did_you_mean, shorten
from benchmark.models.classifier import Classifier
from benchmark.models.densenet import densenet121
from benchmark.models.mobilenetv2 import mobilenetv2
from benchmark.models.resnet import resnet18, resnet34, resnet50
from benchmark.models.small_cnn import small_cnn
from benchmark.models.vgg import vgg19

BUILTIN_MODELS = {
    "small-cnn": small_cnn,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "vgg19": vgg19,
    "densenet121": densenet121,
    "mobilenetv2": mobilenetv2,
}


def timm_backbone(name: str, in_channels: int) -> nn.Module:
    """Any timm model, classifier removed (``num_classes=0``), as a backbone returning pooled features."""
    import timm

    check_arch("timm/" + name)
    model = timm.create_model(name, pretrained=False, num_classes=0, in_chans=in_channels)
    model.feature_dim = model.num_features
    return model


class UnknownTimmModel(UserError):
    """``timm/<name>`` names no model timm has: the closest names, not timm's whole list."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown timm model {shorten(name)}{did_you_mean(name, known)} (timm has {len(known)}: "
                         "`python -c 'import timm; print(timm.list_models())'` lists them)")


def check_arch(arch: str, registry: Any = None) -> None:
    """Raise a :class:`~benchmark.errors.UserError` (did-you-mean) when ``arch`` names no registered
    model and no timm model: a matrix with a wrong ``arch`` is refused before anything is built."""
    if arch.startswith("timm/"):
        import timm

        if not timm.is_model(arch[len("timm/") :]):
            raise UnknownTimmModel(arch[len("timm/") :], timm.list_models())
        return
    from benchmark.registry import get_registry

    (registry or get_registry()).get("model", arch)


def build_backbone(arch: str, in_channels: int) -> nn.Module:
    """Backbone ``arch`` (a registered name or ``timm/<name>``); it has a ``feature_dim`` attribute."""
    if arch.startswith("timm/"):
        return timm_backbone(arch[len("timm/") :], in_channels)
    from benchmark.registry import get_registry

    return get_registry().get("model", arch)(in_channels)


def build_classifier(
    arch: str, in_channels: int, num_classes: int, mean: Sequence[float], std: Sequence[float], device: torch.device | str = "cpu"
) -> Classifier:
    """A :class:`Classifier` on ``device``, in ``channels_last`` memory format."""
    backbone = build_backbone(arch, in_channels)
    model = Classifier(backbone, cast(int, backbone.feature_dim), num_classes, mean, std)  # every backbone has it
    model.arch = arch
    return model.to(device=device, memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs lack this (valid) pair


def classifier_spec(model: nn.Module) -> dict[str, object]:
    """What :func:`classifier_from_state` needs to rebuild a classifier made by
    :func:`build_classifier` (its architecture name and sizes; the weights and the normalization
    are in its state dict)."""
    arch = getattr(model, "arch", None)
    if not isinstance(model, Classifier) or arch is None:
        raise TypeError(f"only classifiers made by build_classifier can be stored, got {type(model).__name__}")
    return {"arch": arch, "in_channels": int(model.mean.shape[1]), "num_classes": int(model.head.out_features)}


def classifier_from_state(spec: dict[str, object], state: dict[str, torch.Tensor], device: torch.device | str = "cpu") -> Classifier:
    """The classifier of ``spec`` (:func:`classifier_spec`) with ``state`` loaded, in eval mode."""
    c = int(spec["in_channels"])  # type: ignore[call-overload]  # an int (classifier_spec)
    model = build_classifier(str(spec["arch"]), c, int(spec["num_classes"]), [0.0] * c, [1.0] * c, device)  # type: ignore[call-overload]  # an int
    model.load_state_dict(state)
    return model.eval()


__all__ = ["BUILTIN_MODELS", "Classifier", "UnknownTimmModel", "build_backbone", "build_classifier", "check_arch", "classifier_from_state", "classifier_spec"]
