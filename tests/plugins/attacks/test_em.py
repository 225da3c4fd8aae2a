from __future__ import annotations

import torch

from benchmark.interfaces import RunContext, release
from benchmark.params import resolve_params
from plugins.attacks.em import EM, EMClasswise
from tests.conftest import tiny_dataset


def make(cls, **over):
    return cls(resolve_params(cls, "smoke", over))


def test_samplewise_budget_alignment_and_release():
    data = tiny_dataset(n=48, classes=4, size=8)
    torch.manual_seed(0)
    p = make(EM, max_outer=2).generate(data, RunContext(seed=0))
    assert p.kind == "samplewise" and p.delta.shape == data.x.shape
    assert p.delta.abs().max() <= 8 / 255 + 1e-6
    assert torch.equal(p.x, release(data.x, p.delta))  # delta[i] belongs to image i
    assert (p.x.int() - data.x.int()).abs().max() <= 8
    assert p.delta.abs().sum() > 0 and len(p.meta["train_accuracy"]) <= 2


def test_stops_when_accuracy_reached():
    data = tiny_dataset(n=32, classes=4, size=8)
    p = make(EM, stop_accuracy=-1.0, max_outer=5).generate(data, RunContext(seed=0))
    assert p.meta["outer_iterations"] == 1 and p.meta["stopped"]


def test_noise_minimizes_error_of_generator():
    """Error-minimizing: a fresh model trained on the poison fits it faster than one on clean data."""
    from benchmark.models import build_classifier
    from benchmark.training import SGDRecipe, train_supervised

    data = tiny_dataset(n=64, classes=4, size=8)
    # random labels make the clean task unlearnable in a few steps; the noise gives a shortcut
    g = torch.Generator().manual_seed(1)
    data = type(data)(data.x, torch.randint(0, 4, (64,), generator=g), data.classes)
    torch.manual_seed(0)
    p = make(EM, max_outer=8, steps=10, eps=32 / 255, alpha=4 / 255, train_steps=5, batch_size=32).generate(data, RunContext(seed=0))
    losses = {}
    for name, x in (("clean", data.x), ("poison", p.x)):
        torch.manual_seed(0)
        m = build_classifier("small-cnn", 3, 4, [0.5] * 3, [0.25] * 3)
        d = data.with_images(x)
        train_supervised(m, d, SGDRecipe(epochs=3, batch_size=16, lr=0.05), RunContext(seed=0), augment=None)
        with torch.no_grad():
            losses[name] = torch.nn.functional.cross_entropy(m(d.float_batch(torch.arange(64))), d.y).item()
    assert losses["poison"] < losses["clean"]


def test_classwise_one_noise_per_class():
    data = tiny_dataset(n=40, classes=4, size=8)
    p = make(EMClasswise).generate(data, RunContext(seed=0))
    assert p.kind == "classwise" and p.delta.shape == (4, 3, 8, 8)
    assert p.delta.abs().max() <= 8 / 255 + 1e-6
    assert torch.equal(p.x, release(data.x, p.delta[data.y]))


def test_paper_defaults():
    p = EM.Params()
    assert (p.eps, p.alpha, p.steps, p.train_steps, p.batch_size, p.stop_accuracy, p.arch) == (8 / 255, 0.8 / 255, 20, 10, 512, 0.99, "resnet18")
    c = EMClasswise.Params()
    assert (c.steps, c.subset_fraction) == (1, 0.2)


def test_classwise_trains_its_generator_on_the_whole_set(monkeypatch):
    """As the official ``universal_perturbation`` with ``--use_subset``: the model steps draw from the
    whole training set (the noise pass and the stop test from the 25% subset)."""
    from plugins.attacks.em import stratified_fraction

    data = tiny_dataset(n=80, classes=4, size=8)
    seen: set[int] = set()
    model_steps = EMClasswise._model_steps

    def spy(self, model, opt, it, batch, ctx):
        def counted(idx):
            seen.update(idx.tolist())
            return batch(idx)
        return model_steps(self, model, opt, it, counted, ctx)

    monkeypatch.setattr(EMClasswise, "_model_steps", spy)
    make(EMClasswise, subset_fraction=0.25, max_outer=3, train_steps=4, batch_size=8).generate(data, RunContext(seed=0))
    assert seen - set(stratified_fraction(data.y, 0.25, 0).tolist())  # images outside the subset trained it


def test_classwise_random_start_is_seeded_by_the_run(monkeypatch):
    """The class-wise random start draws from the run's ``em.init`` stream, as the sample-wise one,
    not from torch's global RNG: with the generator model's initialization held fixed, the global
    state does not change the poison; another run seed does."""
    from plugins.attacks import em

    build = em.build_classifier

    def fixed_init(*a, **k):  # the model's init, independent of (and not advancing) the global RNG
        with torch.random.fork_rng():
            torch.manual_seed(0)
            return build(*a, **k)

    monkeypatch.setattr(em, "build_classifier", fixed_init)
    data = tiny_dataset(n=40, classes=4, size=8)

    def run(seed: int, global_seed: int) -> torch.Tensor:
        torch.manual_seed(global_seed)
        return make(EMClasswise, random_start=True, max_outer=1, stop_accuracy=-1.0).generate(data, RunContext(seed=seed)).delta

    assert torch.equal(run(0, 1), run(0, 2))
    assert not torch.equal(run(0, 1), run(1, 1))
