"""UEraser (Lite / standard / Max): kornia augmentations, the worst of K copies (spec §1.3)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.config import parse_matrix, resolve
from benchmark.errors import ConfigError
from benchmark.interfaces import RunContext
from benchmark.registry import get_registry
from benchmark.trace import EpochEvent
from plugins.defenses.ueraser import (
    POLICY,
    UEraserAugment,
    UEraserHooks,
    UEraserLite,
    UEraserMax,
    UEraserStandard,
    jpeg_batch,
    worst_of_k_loss,
)


class Cycle:
    """A deterministic stand-in for the augmentation: copy k is ``x * scales[k]``."""

    def __init__(self, scales: list[float]) -> None:
        self.scales, self.calls = scales, 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        k = len(x) // self.batch if hasattr(self, "batch") and len(x) > self.batch else 1
        if k > 1:  # tiled: every copy in one call
            return torch.cat([c * s for c, s in zip(x.chunk(k), self.scales)])
        out = x * self.scales[self.calls % len(self.scales)]
        self.calls += 1
        return out


def linear_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 3))


def test_worst_of_k_is_the_per_sample_max_and_its_gradient_flows_through_the_argmax_copy():
    model = linear_model()
    x, y = torch.rand(5, 3, 4, 4), torch.tensor([0, 1, 2, 0, 1])
    scales = [0.5, 1.0, 2.0]
    loss, _ = worst_of_k_loss(model, x, y, Cycle(scales), 3, "loop")
    per = torch.stack([F.cross_entropy(model(x * s), y, reduction="none") for s in scales])  # [K, B]
    assert loss.item() == pytest.approx(per.max(0).values.mean().item(), rel=1e-6)
    loss.backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    best = per.argmax(0)
    manual = torch.stack([F.cross_entropy(model(x[i : i + 1] * scales[int(best[i])]), y[i : i + 1]) for i in range(5)]).mean()
    manual.backward()
    for a, b in zip(got, [p.grad for p in model.parameters()]):
        assert torch.allclose(a, b, atol=1e-6)


def test_tile_mode_equals_loop_mode_without_batch_statistics():
    model = linear_model()
    x, y = torch.rand(4, 3, 4, 4), torch.tensor([0, 1, 2, 0])
    tile = Cycle([0.3, 1.7])
    tile.batch = 4
    a, _ = worst_of_k_loss(model, x, y, Cycle([0.3, 1.7]), 2, "loop")
    b, _ = worst_of_k_loss(model, x, y, tile, 2, "tile")
    assert a.item() == pytest.approx(b.item(), rel=1e-6)


def test_augmentation_is_kornia_per_sample_in_range_and_seeded():
    x = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    aug = UEraserAugment(POLICY)
    torch.manual_seed(3)
    a = aug(x)
    torch.manual_seed(3)
    b = aug(x)
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1 + 1e-6 and torch.equal(a, b)  # kornia ops round to ~1 ulp
    assert not torch.equal(a, x)
    per_sample_change = (a - x).abs().flatten(1).mean(1)
    assert per_sample_change.std() > 0  # not the same transformation for the whole batch
    import kornia.augmentation as K

    kinds = [type(m).__name__ for seq in aug._kornia for m in seq.children()]
    assert kinds == ["RandomPlasmaBrightness", "RandomPlasmaContrast", "RandomChannelShuffle", "TrivialAugment"]
    assert isinstance(aug._kornia[0], K.AugmentationSequential)


def test_jpeg_stage_compresses_the_batch():
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    out = jpeg_batch(x, 10)
    assert out.shape == x.shape and 0 < (out - x).abs().mean() < 0.3 and out.min() >= 0 and out.max() <= 1
    aug = UEraserAugment(("jpeg",), jpeg_quality=None, generator=torch.Generator().manual_seed(0))
    assert aug(x).shape == x.shape


def test_three_settings_registered_with_the_papers_k_and_w():
    reg = get_registry()
    lite, std, mx = (reg.get("defense", n) for n in ("ueraser-lite", "ueraser", "ueraser-max"))
    assert (lite, std, mx) == (UEraserLite, UEraserStandard, UEraserMax)
    assert lite.Params().adversarial_epochs == 0 and std.Params().adversarial_epochs == 50 and mx.Params().adversarial_epochs is None
    assert all(c.Params().repeats == 5 and c.Params().plasma_p == 1.0 and c.Params().repeat_mode == "loop" for c in (lite, std, mx))
    assert all(c.stage == "train" and not c().applies_to(reg.get("victim", "simclr")()) for c in (lite, std, mx))
    assert std.profiles["quick"]["adversarial_epochs"] == 5


def test_adversarial_for_the_first_w_epochs_then_lite():
    ctx = RunContext()
    hooks = UEraserHooks(UEraserStandard.Params(adversarial_epochs=2, repeats=3), ctx)
    calls = []

    def model(t):
        calls.append(len(t))
        return t.flatten(1)[:, :3]

    x, y = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 0])
    for epoch in range(1, 5):
        calls.clear()
        hooks.loss(model, x, y, F.cross_entropy)
        assert len(calls) == (3 if epoch <= 2 else 1), epoch
        ctx.trace.emit(EpochEvent("supervised", epoch, 4, 0.0))
    ctx.trace.emit(EpochEvent("probe", 9, 9, 0.0))  # other loops' events do not count
    assert hooks.epoch == 4
    mx = UEraserHooks(UEraserMax.Params(), RunContext())
    mx.epoch = 10_000
    assert mx.adversarial
    assert not UEraserHooks(UEraserLite.Params(), RunContext()).adversarial


def test_unknown_augmentation_name_is_one_clear_line_naming_the_key():
    m = parse_matrix(
        {"dataset": "digits", "attacks": ["clean"], "victims": ["sl"], "defenses": [{"name": "ueraser", "params": {"policy": ["plasma_brightnes"]}}]}
    )
    with pytest.raises(ConfigError) as e:
        resolve(m, get_registry())
    msg = str(e.value)
    assert "defenses[0].params.policy" in msg and "unknown augmentation 'plasma_brightnes'" in msg
    assert "did you mean 'plasma_brightness'" in msg and "\n" not in msg
