"""Issue 4's evidence at the quick profile on real CIFAR-10 (5k train, 10k test, small CNN):
TAP, AUE, T-AAP, UT-AAP, LSP and OPS each collapse the supervised victim far below clean and
random noise; the ISS asymmetry (Liu et al., ICML 2023): grayscale undoes EM much more than TAP,
JPEG-10 undoes both.

Shares clean / random-noise / EM poisons and cells with tests/slow/test_em_iss_cifar.py through the
session results directory; the victim is the quick `sl` with 10 epochs (tests/conftest.py: SL).
Bands and measured numbers: docs/attacks.md.
"""

from __future__ import annotations

import pytest

from tests.conftest import SL, acc, run_quick

pytestmark = pytest.mark.slow

ATTACKS = ["tap", "aue", "t-aap", "ut-aap", "lsp", "ops"]


def test_supervised_attacks_collapse_sl_and_iss_asymmetry(quick_results):
    r = run_quick(quick_results, attacks=["clean", "random-noise", "em", *ATTACKS], victims=[SL], defenses=["none"])
    r.update(run_quick(quick_results, attacks=["em", "tap"], victims=[SL], defenses=["iss-gray", "iss-jpeg"]))
    table = {(a, d): round(acc(r, a, defense=d), 1) for (a, _, d, _) in r}
    wall = {a: rec["poison_meta"].get("wall_s") for (a, _, d, _), rec in r.items() if d == "none"}
    print("quick CIFAR-10 SL accuracy (%):", table)
    print("poison generation wall time (s):", wall)
    clean, noise = acc(r, "clean"), acc(r, "random-noise")
    assert clean >= 58 and noise >= clean - 5
    floor = min(clean, noise)
    for a in ATTACKS:
        assert acc(r, a) <= floor - 20, (a, table)  # every attack collapses SL
    assert acc(r, "tap") <= 30
    # ISS asymmetry: grayscale helps against EM far more than against TAP; JPEG-10 restores both
    gray_gain_em = acc(r, "em", defense="iss-gray") - acc(r, "em")
    gray_gain_tap = acc(r, "tap", defense="iss-gray") - acc(r, "tap")
    assert gray_gain_em >= gray_gain_tap + 5, table
    assert acc(r, "tap", defense="iss-gray") <= 35
    assert acc(r, "em", defense="iss-jpeg") >= 45
    assert acc(r, "tap", defense="iss-jpeg") >= 40
