from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import plugins.attacks.cp as cp_module
from benchmark.interfaces import RunContext, release
from benchmark.models import build_classifier
from benchmark.ssl.objectives import BYOLObjective, MoCoObjective, SimCLRObjective
from plugins.attacks.cp import CP
from tests.conftest import REPO, tiny_dataset
from tests.plugins.attacks.helpers import (
    check_deterministic,
    check_loss_decreases,
    check_permutation,
    check_release,
    config_error,
    identity_views,
    make,
)


@pytest.fixture
def data():
    return tiny_dataset(n=32, classes=4, size=8)


@pytest.mark.parametrize("objective", ["simclr", "moco", "byol"])
def test_samplewise_budget_and_release(data, objective):
    attack = make(CP, objective=objective)
    check_release(attack, data, attack.generate(data, RunContext(seed=0)))


def test_deterministic(data):
    check_deterministic(make(CP), data)


def test_samplewise_delta_follows_its_image(data, monkeypatch):
    identity_views(monkeypatch, cp_module)
    attack = make(CP, batch_size=32, bn_groups=1, epochs=2, classwise_epochs=2)
    check_permutation(attack, data)


def test_classwise_maps_delta_by_label(data):
    attack = make(CP, mode="classwise")
    p = attack.generate(data, RunContext(seed=0))
    assert p.kind == "classwise" and p.delta.shape == (4, 3, 8, 8)
    assert p.delta.abs().max() <= 8 / 255 + 1e-6
    assert torch.equal(p.x, release(data.x, p.delta[data.y]))
    # classes differ (each class has its own noise) and CP-S starts from exactly this result
    assert not torch.equal(p.delta[0], p.delta[1])
    s, _meta, cached = make(CP).classwise_delta(data, RunContext(seed=0))
    assert torch.equal(s, p.delta) and not cached


def test_samplewise_starts_from_cached_classwise(data, tmp_path):
    from benchmark.store import ArtifactCache

    ctx = RunContext(seed=0, cache=ArtifactCache(tmp_path))
    first = make(CP).generate(data, ctx)
    again = make(CP).generate(data, ctx)
    assert not first.meta["classwise_cached"] and again.meta["classwise_cached"]
    assert torch.equal(first.x, again.x)  # the model is seeded: the same poison with or without the cache
    uniform = make(CP, init="uniform").generate(data, RunContext(seed=0))
    assert "classwise_cached" not in uniform.meta and not torch.equal(uniform.delta, first.delta)


def test_paper_defaults_are_the_readme_commands():
    s = CP().settings()
    assert (s["objective"], s["mode"], s["init"], s["epochs"], s["pgd_steps"], s["step_size"], s["release_epoch"]) == (
        "simclr", "samplewise", "classwise", 200, 5, 0.1, 160
    )
    assert (s["classwise_epochs"], s["classwise_model_steps"], s["classwise_noise_steps"], s["classwise_pgd_steps"]) == (1000, 20, 20, 1)
    assert (s["lr"], s["temperature"], s["batch_size"], s["bn_groups"], s["weight_decay"]) == (0.5, 0.5, 512, 4, 1e-4)
    assert s["loss_scale"] == pytest.approx(0.5 / 0.07 / 4) and s["eps"] == pytest.approx(8 / 255)
    m = CP(CP.Params(objective="moco")).settings()
    assert (m["lr"], m["temperature"], m["queue_size"], m["key_momentum"], m["key_grad"], m["release_epoch"]) == (0.3, 0.2, 4096, 0.99, True, 200)
    assert m["loss_scale"] == pytest.approx(0.2 / 0.07)
    b = CP(CP.Params(objective="byol")).settings()
    assert (b["lr"], b["pgd_steps"], b["step_size"], b["proj_hidden"], b["proj_dim"], b["target_momentum"], b["loss_scale"]) == (
        1.0, 1, 0.02, 4096, 256, 0.999, 1.0
    )


@pytest.mark.parametrize("objective", ["simclr", "moco", "byol"])
def test_contrastive_loss_decreases_over_noise_steps(objective):
    torch.manual_seed(0)
    x = tiny_dataset(n=16, classes=4, size=16).float_batch(torch.arange(16))
    enc = build_classifier("small-cnn", 3, 4, [0.5] * 3, [0.25] * 3)
    if objective == "simclr":
        obj = SimCLRObjective(enc, hidden=32, out=16, temperature=0.5)
    elif objective == "moco":
        obj = MoCoObjective(enc, hidden=32, out=16, temperature=0.2, queue_size=64, momentum=0.99, key_grad=True,
                            ema_in_noise_phase=True, generator=torch.Generator().manual_seed(0))
    else:
        obj = BYOLObjective(enc, hidden=32, out=16, momentum=0.99)
    obj(x, x.flip(3), torch.zeros(16, dtype=torch.long)).backward()  # one train-mode pass: BN statistics
    check_loss_decreases(obj, x, eps=8 / 255, alpha=2 / 255)


def test_moco_key_grad_sends_gradient_through_the_key_branch():
    torch.manual_seed(0)
    x = torch.rand(8, 3, 16, 16)
    grads = {}
    for key_grad in (False, True):
        torch.manual_seed(0)
        enc = build_classifier("small-cnn", 3, 4, [0.5] * 3, [0.25] * 3)
        obj = MoCoObjective(enc, hidden=16, out=8, temperature=0.2, queue_size=32, momentum=0.99, key_grad=key_grad,
                            ema_in_noise_phase=True, generator=torch.Generator().manual_seed(0))
        v1, v2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        with obj.noise_phase():
            obj(v1, v2, torch.zeros(8, dtype=torch.long)).backward()
        grads[key_grad] = v2.grad
    assert grads[False] is None and grads[True].abs().sum() > 0


def test_misplaced_objective_params_are_config_errors():
    msg = config_error(CP, objective="byol", queue_size=1024)
    assert msg.startswith("attacks[0].params.queue_size: queue_size applies only to objective 'moco', not 'byol'")
    assert "\n" not in msg
    assert "temperature" in config_error(CP, objective="byol", temperature=0.5)
    assert "target_momentum" in config_error(CP, objective="simclr", target_momentum=0.99)
    assert "key_grad" in config_error(CP, objective="simclr", key_grad=True)
    assert "eps" in config_error(CP, eps=2.0)
    assert "init" in config_error(CP, mode="classwise", init="classwise")
    CP(CP.Params(objective="moco", queue_size=1024, key_grad=False))  # in place: fine


def test_misplaced_param_in_a_matrix_exits_2_with_one_line(tmp_path):
    m = tmp_path / "m.yaml"
    m.write_text("dataset: digits\nattacks: [{name: cp, params: {objective: simclr, queue_size: 64}}]\nvictims: [sl]\n")
    p = subprocess.run([sys.executable, "-m", "benchmark", "run", str(m), "--dry-run"], cwd=REPO, capture_output=True, text=True,
                       env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "queue_size applies only to objective 'moco'" in lines[0], p.stderr
