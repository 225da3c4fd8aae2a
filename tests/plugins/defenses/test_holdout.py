"""finetune and scratch: the baselines of the model-stage defenses, on the same hold-out (spec §1.5)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from benchmark.config import parse_matrix, resolve
from benchmark.errors import ConfigError
from benchmark.interfaces import RunContext
from benchmark.models import build_classifier
from benchmark.registry import get_registry
from plugins.defenses.holdout import FineTune, Scratch
from plugins.defenses.sau import SAU
from tests.conftest import tiny_dataset
from tests.test_cli import bench


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_classifier("small-cnn", 3, 4, [0.5] * 3, [0.25] * 3).eval()


def test_finetune_defaults_are_saus_budget_and_it_is_sau_without_the_shared_term():
    p = FineTune.Params()
    assert (p.epochs, p.batch_size, p.lr, p.amsgrad, p.bn, p.augment, p.shuffle) == (100, 256, 1e-4, True, "eval", False, True)
    assert FineTune.profiles["quick"] == {k: SAU.profiles["quick"][k] for k in ("epochs", "batch_size")}
    hold = tiny_dataset(n=16, size=16)
    model = _model()
    ft = FineTune(FineTune.Params(epochs=3, batch_size=16, lr=1e-3)).repair(model, hold, RunContext())
    sau = SAU(SAU.Params(epochs=3, batch_size=16, lr=1e-3, lambda_share=0.0, pgd_steps=1)).repair(model, hold, RunContext())
    start = model.state_dict()
    for (k, a), b in zip(ft.state_dict().items(), sau.state_dict().values()):
        # one full batch: the same Adam steps on the same clean loss. SAU forwards [x; x'] as one batch
        # of 2B, so its float rounding differs a little, and Adam's normalization magnifies that
        # where a gradient is near zero: equal to 1 % of how far the weights moved.
        assert (a - b).abs().max() <= 0.01 * (a - start[k]).abs().max() + 1e-7, k


def test_finetune_lowers_the_holdout_loss_keeps_bn_and_the_victim():
    hold = tiny_dataset(n=24, size=16)
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = hold.float_batch(torch.arange(len(hold)))
    ft = FineTune(FineTune.Params(epochs=5, batch_size=8, lr=1e-3, shuffle=False)).repair(model, hold, RunContext())
    with torch.no_grad():
        assert F.cross_entropy(ft(x), hold.y) < F.cross_entropy(model(x), hold.y)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert all(torch.equal(ft.state_dict()[k], before[k]) for k in before if "running" in k)


def test_scratch_reinitializes_then_learns_the_holdout():
    assert Scratch.Params().epochs == 200 and Scratch.profiles["quick"] == {"epochs": 100, "batch_size": 64}
    hold = tiny_dataset(n=40, size=16)
    model = _model()
    ctx = RunContext(seed=1)
    events = []
    ctx.trace.subscribe(events.append)
    a = Scratch(Scratch.Params(epochs=15, batch_size=8)).repair(model, hold, ctx)
    b = Scratch(Scratch.Params(epochs=15, batch_size=8)).repair(model, hold, RunContext(seed=1))
    sa, sm = a.state_dict(), model.state_dict()
    assert all(torch.equal(sa[k], b.state_dict()[k]) for k in sa)
    assert all(not torch.equal(sa[k], sm[k]) for k in sa if k.endswith("weight"))
    assert torch.equal(sa["mean"], sm["mean"]) and torch.equal(sa["std"], sm["std"])  # the input normalization stays
    assert events == []  # its own training is not the victim's curve
    with torch.no_grad():
        assert (a(hold.float_batch(torch.arange(40))).argmax(1) == hold.y).float().mean() > 0.5


def test_model_stage_defense_without_a_holdout_is_a_config_error():
    m = parse_matrix({"dataset": "digits", "attacks": ["clean"], "victims": ["sl"], "defenses": ["none", "i-bau"]})
    with pytest.raises(ConfigError, match=r"defenses\[1\]: defense 'i-bau' repairs a model with clean data: set dataset.holdout"):
        resolve(m, get_registry())
    for name in ("sau", "finetune", "scratch", "recovery"):  # every model-stage defense gets the hold-out
        m = parse_matrix({"dataset": "digits", "attacks": ["clean"], "victims": ["sl"], "defenses": [name]})
        with pytest.raises(ConfigError, match=rf"defenses\[0\]: defense '{name}' repairs a model with clean data"):
            resolve(m, get_registry())


def test_bad_holdouts_exit_2_with_one_line_naming_the_key(tmp_path):
    cases = {
        "holdout: 1700": "dataset.holdout: dataset 'digits': a hold-out of 1700 does not fit in the 1057 training images outside the subset of 200",
        "holdout: '0.01%'": "dataset.holdout: dataset 'digits': a hold-out of 0.01% of the 200 training images is 0 images",
    }
    for i, (line, want) in enumerate(cases.items()):
        m = tmp_path / f"m{i}.yaml"
        m.write_text(f"dataset: {{name: digits, subset: 200, {line}}}\nattacks: [clean]\nvictims: [sl]\ndefenses: [finetune]\nprofile: smoke\n")
        p = bench("run", str(m), "--results", str(tmp_path / "r"))
        assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
        assert p.stderr.strip().splitlines()[-1] == f"error: {m}: {want}"
