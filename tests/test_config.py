from __future__ import annotations

import pytest

from benchmark.config import load_matrix, parse_matrix, resolve
from benchmark.errors import ConfigError, UserError
from benchmark.registry import get_registry

GOOD = """
name: t
dataset: {name: digits, subset: 200}
profile: smoke
attacks: [clean, {name: em, params: {eps: 4/255}}]
victims: [sl]
"""


def write(tmp_path, text):
    p = tmp_path / "m.yaml"
    p.write_text(text)
    return p


def test_good_matrix_resolves(tmp_path):
    m = load_matrix(write(tmp_path, GOOD))
    r = resolve(m, get_registry(), file="m.yaml")
    assert [a.name for a in r.attacks] == ["clean", "em"]
    em = r.attacks[1]
    assert em.params.eps == pytest.approx(4 / 255)
    assert em.params.max_outer == 2  # smoke profile underneath explicit params
    assert [d.name for d in r.defenses] == ["none"] and [m.name for m in r.metrics] == ["accuracy"]
    assert m.dataset.subset == 200 and m.dataset.params == {}


def test_dataset_flat_params():
    m = parse_matrix({"dataset": {"name": "cifar10", "root": "~/d", "download": True, "subset": 10}, "attacks": ["clean"], "victims": ["sl"]})
    assert m.dataset.params == {"root": "~/d", "download": True} and m.dataset.subset == 10


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD.replace("profile: smoke", "profil: smoke"), "m.yaml: profil: unknown key 'profil'; did you mean 'profile'?"),
        (GOOD.replace("profile: smoke", "profile: fast"), "m.yaml: profile: "),
        (GOOD.replace("victims: [sl]", "victims: [sll]"), "m.yaml: victims[0].name: unknown victim 'sll'; did you mean 'sl'"),
        (GOOD.replace("eps: 4/255", "epss: 4/255"), "m.yaml: attacks[1].params.epss: unknown key 'epss'; did you mean 'eps'"),
        (GOOD.replace("eps: 4/255", "eps: big"), "m.yaml: attacks[1].params.eps: "),
        (GOOD.replace("victims: [sl]", ""), "m.yaml: victims: this key is required"),
        (GOOD.replace("{name: em, params: {eps: 4/255}}", "{name: em, parms: {}}"), "m.yaml: attacks[1].parms: unknown key 'parms'; did you mean 'params'?"),
        (GOOD.replace("[clean, {name: em, params: {eps: 4/255}}]", "[em, {name: em, params: {eps: 8/255}}]"), "m.yaml: attacks[1]: duplicate of attacks[0]"),
        ("attacks: [clean\n  victims", "m.yaml: not valid YAML at line"),
        ("- a\n- b\n", "m.yaml: a matrix must be a mapping"),
        (GOOD.replace("name: digits,", "name: digitz,"), "m.yaml: dataset.name: unknown dataset 'digitz'; did you mean 'digits'?"),
    ],
)
def test_bad_configs_one_clear_message(tmp_path, text, expected):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        resolve(load_matrix(p), get_registry(), file="m.yaml")
    assert str(e.value).replace(str(p), "m.yaml").startswith(expected), str(e.value)


def test_missing_file():
    with pytest.raises(UserError, match="does not exist"):
        load_matrix("/nonexistent/matrix.yaml")


def test_holdout_count_or_percentage_and_threads():
    base = {"attacks": ["clean"], "victims": ["sl"]}
    assert parse_matrix({"dataset": {"name": "digits", "holdout": "5 %"}, **base}).dataset.holdout == "5%"
    assert parse_matrix({"dataset": {"name": "digits", "holdout": 90}, **base}).dataset.holdout == 90
    for bad in ("5", "150%", "0%", -3):
        with pytest.raises(ConfigError, match="dataset.holdout"):
            parse_matrix({"dataset": {"name": "digits", "holdout": bad}, **base})
        with pytest.raises(ConfigError, match="dataset.test_from_train: .*test_from_train must be"):
            parse_matrix({"dataset": {"name": "npz", "test_from_train": bad}, **base})
    assert parse_matrix({"dataset": {"name": "npz", "test_from_train": "20 %"}, **base}).dataset.test_from_train == "20%"
    m = parse_matrix({"dataset": "digits", **base})
    assert m.threads == 1  # one torch thread per job by default, whatever the executor
    with pytest.raises(ConfigError, match="threads"):
        parse_matrix({"dataset": "digits", "threads": 0, **base})


def test_labels_name_entries_in_tables_and_same_name_entries_are_told_apart():
    from benchmark.config import resolve

    base = {"dataset": "digits", "attacks": ["clean"]}
    r = resolve(parse_matrix({**base, "victims": ["sl", {"name": "sl", "params": {"arch": "vgg19"}},
                                                   {"name": "simclr", "label": "random-init", "params": {"epochs": 0}}]}), get_registry())
    assert [v.display for v in r.victims] == ["sl", "sl(arch=vgg19)", "random-init"]
    with pytest.raises(ConfigError, match=r"victims\[0\] and victims\[1\] would both show as 'x'"):
        resolve(parse_matrix({**base, "victims": [{"name": "sl", "label": "x"}, {"name": "simclr", "label": "x"}]}), get_registry())


def test_a_large_matrix_parses_with_libyaml(tmp_path):
    """A 1 MB matrix (150k seeds) took 11 s in PyYAML's pure-Python parser; libyaml's parser with
    the bounds check (one pass over its events) takes about a third of that. Measured as a ratio in
    one run (the machine is shared)."""
    import time

    import yaml

    text = "dataset: digits\nattacks: [clean]\nvictims: [sl]\nseeds: [" + ", ".join(map(str, range(150_000))) + "]\n"
    assert len(text) > 1_000_000
    p = write(tmp_path, text)
    t0 = time.perf_counter()
    m = load_matrix(p)
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    yaml.safe_load(text)
    pure = time.perf_counter() - t0
    assert len(m.seeds) == 150_000 and m.seeds[-1] == 149_999
    assert ours < 0.6 * pure, (ours, pure)
MULTI = """# a comment block before the first document is not a matrix
---
name: one
dataset: digits
profile: smoke
attacks: [clean]
victims: [sl]
---
name: two
dataset: digits
profile: smoke
attacks: [clean]
victims: [sl]
defenses: [iss-bdr]
"""


def test_multi_document_file_loads_every_matrix_in_order(tmp_path):
    from benchmark.config import load_matrices

    p = write(tmp_path, MULTI)
    ms = load_matrices(p)
    assert [m.name for m in ms] == ["one", "two"] and ms[1].defenses[0].name == "iss-bdr"
    with pytest.raises(ConfigError, match="holds 2 matrices"):
        load_matrix(p)
    assert [m.name for m in load_matrices(write(tmp_path, GOOD))] == ["t"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MULTI.replace("defenses: [iss-bdr]", "defenses: [iss-bdr]\nseedz: [1]"), "m.yaml, document 2: seedz: unknown key 'seedz'"),
        (MULTI.replace("victims: [sl]\n---", "victims: [sll]\n---"), "m.yaml, document 1: victims[0].name: unknown victim 'sll'"),
        ("# only a comment\n---\n", "m.yaml: is empty"),
    ],
)
def test_multi_document_errors_name_the_document(tmp_path, text, expected):
    from benchmark.config import document_name, load_matrices

    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        for i, m in enumerate(load_matrices(p)):
            resolve(m, get_registry(), file=document_name(p, i))
    assert str(e.value).replace(str(p), "m.yaml").startswith(expected), str(e.value)
