from __future__ import annotations

import copy

import pytest
import torch

from benchmark.config import parse_matrix, resolve
from benchmark.interfaces import RunContext
from benchmark.models import build_classifier
from benchmark.params import resolve_params
from benchmark.registry import get_registry
from benchmark.runner import Runner
from benchmark.testing import check_plugin
from benchmark.training import accuracy
from benchmark.weight_noise import distance, snapshot
from plugins.defenses.recovery import Recovery
from tests.conftest import tiny_dataset


def _recovery(**kw) -> Recovery:
    return Recovery(resolve_params(Recovery, "smoke", kw))


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_classifier("small-cnn", 3, 4, [0.5] * 3, [0.25] * 3).eval()


def test_params_are_the_official_recipe():
    p = Recovery.Params()
    assert (p.eta, p.onto, p.project, p.epochs, p.batch_size, p.lr, p.momentum, p.weight_decay, p.grad_clip, p.augment) == (
        1.0, "sphere", True, 60, 128, 0.01, 0.9, 5e-4, 5.0, False,
    )  # fmt: skip
    assert Recovery.stage == "model"


def test_conformance():
    check_plugin(Recovery)


@pytest.mark.parametrize("eta", [0.05, 0.5])
def test_fine_tuned_model_lies_on_the_eta_sphere_and_the_input_is_untouched(eta):
    model = _model()
    before = copy.deepcopy(model.state_dict())
    out = _recovery(eta=eta, epochs=3).repair(model, tiny_dataset(n=48), RunContext())
    assert float(distance(out, snapshot(model))) == pytest.approx(eta, rel=1e-4)
    assert all(torch.equal(before[k], model.state_dict()[k]) for k in before)
    assert not out.training


def test_ball_only_shrinks_and_no_projection_is_plain_fine_tuning():
    model, data = _model(), tiny_dataset(n=48)
    free = _recovery(project=False, epochs=2).repair(model, data, RunContext())
    moved = float(distance(free, snapshot(model)))
    assert moved > 0.05
    inside = _recovery(onto="ball", eta=10 * moved, epochs=2).repair(model, data, RunContext())
    assert all(torch.equal(a, b) for a, b in zip(inside.state_dict().values(), free.state_dict().values()))  # never binds
    small = _recovery(onto="ball", eta=moved / 10, epochs=2).repair(model, data, RunContext())
    assert float(distance(small, snapshot(model))) == pytest.approx(moved / 10, rel=1e-4)


def test_a_larger_ball_regains_more():
    holdout, test = tiny_dataset(n=64, size=8), tiny_dataset(n=64, size=8, seed=3)
    model = _model()  # untrained: chance accuracy (BN running statistics still adapt, in train mode)
    tiny = accuracy(_recovery(eta=1e-4, epochs=4, lr=0.05).repair(model, holdout, RunContext()), test, RunContext())
    large = accuracy(_recovery(eta=5.0, epochs=4, lr=0.05).repair(model, holdout, RunContext()), test, RunContext())
    assert tiny <= 0.5 and large >= tiny + 0.4


def test_in_a_matrix_with_a_holdout_labelled_inside_and_outside(tmp_path):
    spec = {
        "name": "t",
        "dataset": {"name": "digits", "subset": 200, "holdout": 40},
        "profile": "smoke",
        "attacks": ["clean"],
        "victims": ["sl"],
        "defenses": [
            "none",
            {"name": "recovery", "label": "recovery-in", "params": {"eta": 0.001}},
            {"name": "recovery", "label": "recovery-out", "params": {"eta": 2.0}},
        ],
        "metrics": ["accuracy"],
    }
    r = Runner(resolve(parse_matrix(spec), get_registry()), tmp_path, log=lambda s: None, progress=False)
    assert r.run().ok == 3
    by = {rec["defense"]: rec["metrics"]["accuracy"] for rec in r.store.records()}
    assert set(by) == {"none", "recovery-in", "recovery-out"}
    assert all(0 <= v <= 1 for v in by.values())
