"""Linear probing: a linear classifier on the frozen features of a pretrained encoder (§3.2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict
from torch import nn

from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import RunContext
from benchmark.models.classifier import Classifier
from benchmark.trace import EpochEvent, Trace
from benchmark.training import autocast, batches, resident, to_model


class ProbeRecipe(BaseModel):
    """The CP/TP linear-evaluation recipe: SGD lr 1.0, momentum 0.9, wd 0, batch 512, 100 epochs,
    lr x0.2 at epochs 60/75/90 (milestones scale with ``epochs``). ``standardize`` trains on
    z-scored features and folds the scaling into the returned layer (a deviation, for small nets)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = 100
    batch_size: int = 512
    lr: float = 1.0
    momentum: float = 0.9
    weight_decay: float = 0.0
    milestones: tuple[float, ...] = (0.6, 0.75, 0.9)  # fractions of ``epochs``
    gamma: float = 0.2
    standardize: bool = False


@torch.no_grad()
def extract_features(model: Classifier, data: ImageDataset, ctx: RunContext, batch_size: int = 1024) -> torch.Tensor:
    """Features ``[N, feature_dim]`` (float32, on ``ctx.device``) of the un-augmented images, with
    the encoder in eval mode."""
    was_training = model.training
    model.eval()
    data = resident(data, ctx.device)
    out = []
    for idx in batches(len(data), batch_size, None, False, data.x.device):
        with autocast(ctx):
            out.append(model.features(to_model(data.float_batch(idx, ctx.device))).float())
    model.train(was_training)
    return torch.cat(out)


def fit_linear(
    feats: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    recipe: ProbeRecipe,
    generator: torch.Generator,
    trace: Trace | None = None,
) -> nn.Linear:
    """Train ``nn.Linear(D, num_classes)`` with cross entropy on fixed features ``[N, D]``.

    With a ``trace``, every epoch emits an :class:`~benchmark.trace.EpochEvent` of phase
    ``"probe"`` (mean training loss and accuracy of the epoch's steps; ``model`` is the linear layer
    being trained, on the standardized features when ``recipe.standardize``)."""
    feats, y = feats.float(), y.to(feats.device)
    mean = feats.mean(0) if recipe.standardize else torch.zeros_like(feats[0])
    std = feats.std(0).clamp(min=1e-6) if recipe.standardize else torch.ones_like(feats[0])
    z = (feats - mean) / std
    layer = nn.Linear(feats.shape[1], num_classes).to(feats.device)
    opt = torch.optim.SGD(layer.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    steps_per_epoch = max(1, -(-len(z) // recipe.batch_size))
    milestones = [int(m * recipe.epochs) * steps_per_epoch for m in recipe.milestones]
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones, recipe.gamma)
    with torch.enable_grad():
        for epoch in range(recipe.epochs):
            loss_sum = torch.zeros((), device=z.device)  # no host sync per step
            correct = torch.zeros((), dtype=torch.long, device=z.device)
            for idx in batches(len(z), recipe.batch_size, generator, False):
                idx = idx.to(z.device)
                logits = layer(z[idx])
                loss = F.cross_entropy(logits, y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                if trace is not None:
                    loss_sum += loss.detach() * len(idx)
                    correct += (logits.detach().argmax(1) == y[idx]).sum()
            if trace is not None:
                n = len(z)
                lr = opt.param_groups[0]["lr"]
                trace.emit(EpochEvent("probe", epoch + 1, recipe.epochs, float(loss_sum) / n, int(correct) / n, lr, layer))
    with torch.no_grad():  # fold the standardization: W (f - m) / s + b == (W / s) f + (b - W m / s)
        w = layer.weight / std
        layer.bias -= w @ mean
        layer.weight.copy_(w)
    return layer


def linear_probe(model: Classifier, data: ImageDataset, ctx: RunContext, recipe: ProbeRecipe | None = None) -> Classifier:
    """Extract ``model``'s features of ``data`` once (backbone frozen, eval mode), fit a linear
    layer on them (the victim's own, possibly poisoned, training set) and install it as
    ``model.head``. Returns ``model`` in eval mode."""
    recipe = recipe or ProbeRecipe()
    feats = extract_features(model, data, ctx)
    head = fit_linear(feats, data.y, data.num_classes, recipe, ctx.generator(7), ctx.trace)
    model.head = head
    return model.eval()
