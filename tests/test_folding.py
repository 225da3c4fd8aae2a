"""fold_batchnorm: a frozen copy whose outputs and input gradients match the eval-mode model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from benchmark.folding import fold_batchnorm
from benchmark.models import build_classifier


def _trained_bn_stats(model: nn.Module) -> None:
    """Non-trivial running statistics and affine parameters, so folding has something to fold."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


@pytest.mark.parametrize("arch", ["small-cnn", "resnet18"])
def test_folded_model_matches_eval_model(arch: str) -> None:
    torch.manual_seed(0)
    model = build_classifier(arch, 3, 10, [0.5] * 3, [0.25] * 3)
    _trained_bn_stats(model)
    model.train()
    folded = fold_batchnorm(model)
    assert model.training and all(p.requires_grad for p in model.parameters())  # the original is untouched
    assert not folded.training and not any(p.requires_grad for p in folded.parameters())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())  # every BN followed a conv
    x = torch.rand(4, 3, 32, 32, requires_grad=True)
    model.eval()
    ref = model(x)
    (g_ref,) = torch.autograd.grad(ref.logsumexp(1).sum(), x)
    out = folded(x)
    (g_out,) = torch.autograd.grad(out.logsumexp(1).sum(), x)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(g_out, g_ref, rtol=1e-3, atol=1e-6)


def test_hand_computed_conv_bn_fold() -> None:
    """1x1 conv of weight 2, BN with mean 1, var 4 - eps, gamma 3, beta 0.5: y = 3 * (2x - 1) / 2 + 0.5."""
    bn = nn.BatchNorm2d(1)
    bn.running_mean.fill_(1.0)
    bn.running_var.fill_(4.0 - bn.eps)
    bn.weight.data.fill_(3.0)
    bn.bias.data.fill_(0.5)
    conv = nn.Conv2d(1, 1, 1, bias=False)
    conv.weight.data.fill_(2.0)
    folded = fold_batchnorm(nn.Sequential(conv, bn))
    (only,) = [m for m in folded.modules() if isinstance(m, nn.Conv2d)]
    assert only.weight.item() == pytest.approx(3.0) and only.bias.item() == pytest.approx(-1.0)
    x = torch.tensor([[[[0.0, 1.0], [2.0, -1.0]]]])
    torch.testing.assert_close(folded(x), 3 * (2 * x - 1) / 2 + 0.5)


class _Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
            return self.bn(self.conv(x))
        return x


def test_untraceable_model_falls_back_to_a_frozen_copy() -> None:
    model = _Untraceable()
    folded = fold_batchnorm(model)
    assert any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert model.training and not folded.training
    x = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(folded(x), model.eval()(x))
