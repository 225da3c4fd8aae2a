"""The project's evidence matrix (examples/cifar10-quick.yaml) keeps the shape the committed results
need: the shared dataset block (it fixes every cache key), the same attacks in every document, the
random-init floor among the victims, certification on the sl x none cells."""

from __future__ import annotations

from pathlib import Path

from benchmark.config import load_matrices

REPO = Path(__file__).resolve().parents[1]
EVIDENCE = REPO / "examples" / "cifar10-quick.yaml"


def test_evidence_matrix_shape():
    docs = load_matrices(EVIDENCE)
    assert len(docs) == 3
    for m in docs:
        d = m.dataset
        assert (d.name, d.label, d.subset, d.holdout, d.test_subset, d.split_seed) == ("npz", "cifar10-5k", 5000, "5%", None, 0)
        assert d.params == {"path": "../shared/data/cifar10-jpeg.npz"}
        assert (m.profile, m.seeds, m.threads, m.attack_seed, m.name) == ("quick", [0, 1], 1, 0, "cifar10-quick")
        assert [a.model_dump() for a in m.attacks] == [a.model_dump() for a in docs[0].attacks]  # the same attacks everywhere
    first, defended, others = docs
    assert [v.name for v in first.victims] == ["sl"] and [d.name for d in first.defenses] == ["none"]
    assert {e.name for e in first.metrics} == {"accuracy", "certified-learnability", "unlearnable-distance"}
    assert [v.name for v in defended.victims] == ["sl"] and "none" not in [d.name for d in defended.defenses]
    assert {"clean", "random-noise", "em", "em-class", "tap"} <= {a.name for a in first.attacks}
    floor = [v for v in others.victims if v.label == "random-init"]
    assert floor and floor[0].name == "simclr" and floor[0].params == {"epochs": 0}
    assert [d.name for d in others.defenses] == ["none"] and "sl" not in [v.name for v in others.victims]
