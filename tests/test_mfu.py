"""benchmarks/mfu.py's FLOP counter against hand-computed counts (2 FLOPs per multiply-add)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from mfu import count


def test_a_linear_layer_forward_and_backward():
    lin = nn.Linear(4, 3, bias=False)
    x = torch.randn(2, 4)
    assert count(lambda: lin(x)) == 2 * 2 * 4 * 3  # 48
    # backward: the weight gradient (3x2 @ 2x4) only: x needs no gradient
    assert count(lambda: lin(x).sum().backward()) == 48 + 48


def test_an_input_gradient_on_a_frozen_model_as_pgd_takes_it():
    """The case PyTorch's FlopCounterMode breaks on (autograd.grad with respect to an input)."""
    conv = nn.Conv2d(3, 5, 3, padding=1, bias=False).requires_grad_(False)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    fwd = 2 * (2 * 5 * 8 * 8) * (3 * 3 * 3)  # outputs x (in channels x kernel) multiply-adds, x2

    def step() -> None:
        (g,) = torch.autograd.grad(conv(x).square().sum(), x)
        assert g.shape == x.shape

    assert count(step) == fwd + fwd  # forward + the input gradient, no weight gradient


def test_a_contrastive_pretraining_image_costs_two_supervised_ones_plus_the_heads():
    """An ``ssl-simclr`` image is two views through the small CNN, forward and backward (what one
    ``sl`` training image costs, twice), plus the projector and the NT-Xent similarities: a few
    percent; BYOL and MoCo add their target encoder's forward passes on top."""
    from mfu import flops_per_unit

    sl = flops_per_unit("sl-small-cnn", 256)
    simclr = flops_per_unit("ssl-simclr", 2048)
    byol = flops_per_unit("ssl-byol", 2048)
    assert sl is not None and simclr is not None and byol is not None
    assert 2.0 <= simclr / sl <= 2.1
    assert byol > simclr * 1.2  # the symmetric BYOL runs the target encoder over both views too
