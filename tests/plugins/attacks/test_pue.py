from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.config import parse_matrix, resolve
from benchmark.interfaces import Poison, RunContext, release
from benchmark.models import build_classifier
from benchmark.params import resolve_params
from benchmark.poison_artifact import poison_to_tensors, tensors_to_poison
from benchmark.registry import get_registry
from benchmark.runner import Runner
from benchmark.testing import check_plugin, synthetic_dataset
from benchmark.weight_noise import noise_levels
from plugins.attacks.pue import PUE


def _pue(**kw) -> PUE:
    return PUE(resolve_params(PUE, "smoke", kw))


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))


def _official_robust_pgd(model, images, labels, noise, eps, alpha, steps, levels, draws, gen):
    """toolbox.min_min_attack_robust, the weight noise drawn from ``gen`` (level 0: no draw)."""
    perturb = torch.clamp(images + noise, 0, 1).requires_grad_(True)
    for _ in range(steps):
        for s in levels:
            for _ in range(draws):
                saved = {}
                for name, p in model.named_parameters():
                    saved[name] = s * torch.randn(p.shape, generator=gen) if s else torch.zeros_like(p)
                    p.data = p.data + saved[name]
                F.cross_entropy(model(perturb), labels).backward()
                for name, p in model.named_parameters():
                    p.data = p.data - saved[name]
            step = -alpha * perturb.grad.sign()
            perturb = perturb.data + step
            eta = torch.clamp(perturb - images, -eps, eps)
            perturb = torch.clamp(images + eta, 0, 1).requires_grad_(True)
    return perturb.detach()


def test_robust_pgd_matches_the_official_min_min_attack_robust():
    model = _net().eval().requires_grad_(False)
    torch.manual_seed(1)
    x, y = torch.rand(6, 3, 5, 5), torch.randint(0, 3, (6,))
    d0 = (torch.rand_like(x) * 2 - 1) * 4 / 255
    d0 = (x + d0).clamp(0, 1) - x
    attack = _pue(steps=2, input_draws=3, alpha=1 / 255, eps=6 / 255)
    levels = noise_levels(0.2, 0.1)
    ours = attack._robust_pgd(model, x, y, d0, levels, torch.Generator().manual_seed(9), RunContext())
    ref = _official_robust_pgd(model, x, y, d0, 6 / 255, 1 / 255, 2, levels, 3, torch.Generator().manual_seed(9))
    assert torch.allclose(x + ours, ref, atol=1e-6)
    assert ours.abs().max() <= 6 / 255 + 1e-7 and ((x + ours) >= 0).all() and ((x + ours) <= 1).all()
    assert (ours - d0).abs().max() > 0  # it moved: one signed step per level and PGD step


def test_params_are_the_official_settings():
    p = PUE.Params()
    assert (p.eps, p.alpha, p.steps, p.train_steps, p.batch_size) == (8 / 255, 0.8 / 255, 1, 20, 128)
    assert (p.train_sigma, p.train_sigma_step, p.model_draws, p.input_draws) == (0.25, 0.05, 100, 10)
    assert (p.mode, p.subset_fraction, p.stop_accuracy, p.robust_switch, p.arch) == ("classwise", 0.2, 0.9, 0.5, "resnet18")


def test_conformance():
    check_plugin(PUE)


@pytest.mark.parametrize("mode", ["classwise", "samplewise"])
def test_generates_a_budgeted_poison_and_an_online_surrogate(mode):
    data = synthetic_dataset(n=48)
    attack = _pue(mode=mode, robust_switch=0.0, stop_accuracy=1.0, max_outer=3)
    torch.manual_seed(0)
    p = attack.generate(data, RunContext())
    k = data.num_classes
    assert p.kind == mode
    assert p.delta.shape == ((k, 3, 16, 16) if mode == "classwise" else (48, 3, 16, 16))
    assert p.delta.abs().max() <= 8 / 255 + 1e-6
    assert torch.equal(p.x, release(data.x, p.delta[data.y] if mode == "classwise" else p.delta))
    assert attack.budget().violation(data.x, p.x) is None
    assert p.meta["outer_iterations"] == 3 and p.meta["robust_from"] == 2  # robust once accuracy > 0
    assert p.meta["noise_levels"] == [0.0, 0.05]
    assert isinstance(p.surrogate, nn.Module) and not p.surrogate.training
    with torch.no_grad():
        assert p.surrogate(data.float_batch(torch.arange(4))).shape == (4, k)


def test_the_switch_never_fires_below_the_threshold_and_the_stop_rule_ends_the_loop():
    data = synthetic_dataset(n=48)
    never = _pue(robust_switch=1.0, stop_accuracy=1.0, max_outer=2).generate(data, RunContext())
    assert never.meta["robust_from"] == 0 and never.meta["outer_iterations"] == 2
    # it never trained with weight noise: no `online_*` certificate is made of it
    assert "noise_levels" not in never.meta and never.surrogate is not None
    early = _pue(stop_accuracy=0.01, max_outer=5).generate(data, RunContext())
    assert early.meta["outer_iterations"] == 1 and early.meta["stopped"]


def test_pue_noise_is_a_shortcut_for_its_surrogate():
    """Error-minimizing: the surrogate fits the noisy data better than the clean data."""
    data = synthetic_dataset(n=64, size=8)
    p = _pue(robust_switch=0.3, stop_accuracy=0.99, max_outer=6, train_steps=4, eps=16 / 255, alpha=4 / 255).generate(data, RunContext())
    with torch.no_grad():
        noisy = F.cross_entropy(p.surrogate(p.x.float() / 255), data.y)
        clean = F.cross_entropy(p.surrogate(data.x.float() / 255), data.y)
    assert noisy < clean


def test_surrogate_survives_the_poison_artifact():
    data = synthetic_dataset(n=16)
    model = build_classifier("small-cnn", 3, 4, [0.1, 0.2, 0.3], [0.5, 0.5, 0.5]).eval()
    tensors, meta = poison_to_tensors(Poison(x=data.x, delta=torch.zeros(4, 3, 16, 16), kind="classwise", meta={"a": 1}, surrogate=model))
    back = tensors_to_poison(tensors, meta)
    assert back.meta == {"a": 1} and back.kind == "classwise"
    assert back.surrogate is not None and not back.surrogate.training
    sa, sb = model.state_dict(), back.surrogate.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)  # normalization buffers too
    x = data.float_batch(torch.arange(4))
    with torch.no_grad():
        assert torch.equal(model(x), back.surrogate(x))
    assert tensors_to_poison(*poison_to_tensors(Poison(x=data.x))).surrogate is None


def test_in_a_matrix_the_metric_certifies_the_cached_online_surrogate(tmp_path):
    spec = {
        "name": "t",
        "dataset": {"name": "digits", "subset": 200},
        "profile": "smoke",
        "attacks": [{"name": "pue", "params": {"stop_accuracy": 1.0}}],
        "victims": ["sl"],
        "metrics": ["accuracy", {"name": "certified-learnability", "params": {"draws": 20, "etas": [0.001]}}],
    }
    r = Runner(resolve(parse_matrix(spec), get_registry()), tmp_path, log=lambda s: None, progress=False)
    assert r.run().ok == 1
    first = r.store.records()[0]["metrics"]
    assert {"online_surrogate_acc", "online_noisy_acc_mean", "online_certified@0.001"} <= set(first)
    # a new runner (the poison now comes from the artifact cache) with another metric param
    spec["metrics"][1]["params"]["seed"] = 1
    r2 = Runner(resolve(parse_matrix(spec), get_registry()), tmp_path, log=lambda s: None, progress=False)
    assert r2.run().ok == 1
    again = r2.store.records()[0]["metrics"]
    assert again["online_surrogate_acc"] == first["online_surrogate_acc"]  # the same surrogate, from the cache
    assert not math.isnan(again["online_noisy_acc_mean"])
