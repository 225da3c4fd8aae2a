"""The CIFAR architectures build, expose ``feature_dim`` and train (forward + backward)."""

from __future__ import annotations

import pytest
import torch

from benchmark.models import BUILTIN_MODELS, build_classifier


@pytest.mark.parametrize("arch", ["vgg19", "densenet121", "mobilenetv2"])
def test_new_arch_forward_backward(arch: str) -> None:
    assert arch in BUILTIN_MODELS
    model = build_classifier(arch, 3, 10, [0.5] * 3, [0.25] * 3)
    x = torch.rand(2, 3, 32, 32)
    feats = model.features(x)
    assert feats.shape == (2, model.backbone.feature_dim)
    logits = model(x)
    assert logits.shape == (2, 10)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_feature_dims() -> None:
    dims = {a: BUILTIN_MODELS[a]().feature_dim for a in ("vgg19", "densenet121", "mobilenetv2")}
    assert dims == {"vgg19": 512, "densenet121": 1024, "mobilenetv2": 1280}


def test_sl_accepts_new_arch(tiny) -> None:
    from benchmark.interfaces import RunContext, TrainHooks
    from plugins.victims.sl import SL

    victim = SL(SL.Params(arch="mobilenetv2", epochs=1, batch_size=20))
    model = victim.fit(tiny, RunContext(), TrainHooks())
    assert model(torch.rand(2, 3, 8, 8)).shape == (2, tiny.num_classes)


def test_small_cnn_relu_after_pool_equals_conventional_order() -> None:
    """The small CNN pools before its ReLU; outputs and input gradients equal conv-BN-ReLU-pool."""
    torch.manual_seed(0)
    model = build_classifier("small-cnn", 3, 10, [0.5] * 3, [0.25] * 3)
    body = model.backbone.body
    assert [type(m).__name__ for m in body[:4]] == ["Conv2d", "BatchNorm2d", "MaxPool2d", "ReLU"]
    conventional = torch.nn.Sequential(*[body[i + j] for i in range(0, len(body), 4) for j in (0, 1, 3, 2)])
    x = torch.rand(4, 3, 32, 32, requires_grad=True)
    for train in (True, False):
        model.train(train)
        conventional.train(train)
        out = model.backbone.body(x)
        (gx,) = torch.autograd.grad(out.square().sum(), x)
        ref = conventional(x)
        (gr,) = torch.autograd.grad(ref.square().sum(), x)
        torch.testing.assert_close(out, ref)
        torch.testing.assert_close(gx, gr)
    assert set(model.backbone.state_dict()) >= {"body.0.weight", "body.1.running_mean", "body.4.weight", "body.5.weight"}
