"""Issue 2's evidence at the quick profile on real CIFAR-10 (5k train, 10k test, small CNN):
EM collapses the supervised victim far below clean and random noise; ISS JPEG restores much of it;
the certified (q, eta)-learnability of the EM-trained model is as low as its accuracy.

The victim is the quick `sl` with 10 epochs (tests/conftest.py: SL). Bands from
shared/reference/quick-scale-calibration.md (10 epochs: clean 63.8, EM-S 15.1; 20 epochs: EM-S+JPEG 61.5).
"""

from __future__ import annotations

import pytest

from tests.conftest import SL, acc, run_quick

pytestmark = pytest.mark.slow


def test_em_collapses_sl_and_iss_restores(quick_results):
    # 7 cells, not the full 4 x 3 product, to keep CI short; the attacks' slow test reuses them.
    # clean and em also get the certification metric (quick profile: 100 draws, sigma 0.01, 1k test images)
    r = run_quick(quick_results, attacks=["clean", "em"], victims=[SL], defenses=["none"], metrics=["accuracy", "certified-learnability"])
    cert = {a: {k: round(v, 1) for k, v in r[(a, "sl", "none", 0)]["metrics"].items()} for a in ("clean", "em")}
    print("quick CIFAR-10 certified learnability (%):", cert)
    r.update(run_quick(quick_results, attacks=["random-noise", "em-class"], victims=[SL], defenses=["none"]))
    r.update(run_quick(quick_results, attacks=["em"], victims=[SL], defenses=["iss-gray", "iss-jpeg"]))
    r.update(run_quick(quick_results, attacks=["em-class"], victims=[SL], defenses=["iss-gray"]))
    table = {(a, d): round(acc(r, a, defense=d), 1) for (a, _, d, _) in r}
    print("quick CIFAR-10 SL accuracy (%):", table)
    clean, noise, em = acc(r, "clean"), acc(r, "random-noise"), acc(r, "em")
    assert clean >= 58
    assert noise >= clean - 5  # random noise at 8/255 is no protection
    assert em <= 25 and em <= clean - 30  # EM collapses SL
    assert acc(r, "em", defense="iss-jpeg") >= 45  # JPEG-10 restores much of it
    assert acc(r, "em", defense="iss-jpeg") - em >= 20
    assert acc(r, "em-class") <= 35  # class-wise EM works too...
    assert acc(r, "em-class", defense="iss-gray") >= 50  # ...and grayscale removes it
    assert r[("em", "sl", "none", 0)]["poison_meta"]["stopped"]  # EM reached its 99% stop
    # certification (PUE, NDSS 2025): sigma 0.01 keeps the clean model accurate under weight noise,
    # and the certified (q=0.9, eta) accuracy of the EM-trained model stays near its collapsed accuracy
    assert cert["clean"]["noisy_acc_mean"] >= clean - 5
    assert cert["em"]["certified@0.004"] <= 25 and cert["em"]["certified@0.004"] <= cert["clean"]["certified@0.004"] - 30
