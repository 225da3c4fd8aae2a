"""The studies beside the evidence (examples/cifar10-quick-*.yaml other than the evidence matrix,
committed under results/): what README.md and docs/ say of each holds on its records."""

from __future__ import annotations

import statistics

from benchmark.records import cell_mean
from tests.committed import accuracy, committed, defended, doc, worst, worst_at


def one_poison(recs: list) -> tuple:
    """The one poison ``recs`` were computed from: its digest's first 8 hex digits, outer iterations,
    and the CPU (torch capability, name) that made it; fails when they saw more than one."""
    found = {(r["poison_meta"]["x_sha256"][:8], r["poison_meta"]["outer_iterations"], r["numerics"]["cpu_capability"],
              r["numerics"]["device_name"]) for r in recs}
    assert len(found) == 1, found
    return next(iter(found))


def test_what_docs_defenses_says_of_apbenchs_jpeg_first_ueraser_holds_on_the_records():
    """docs/defenses.md, the study beside the evidence (examples/cifar10-quick-ueraser-jpeg.yaml):
    APBench's UEraser variant (a random-quality JPEG stage first, plasma at p = 0.8) ends 5 to 7
    points above the default policy on TAP, T-AAP and UT-AAP, clean data gains 4 under it, the
    excess over clean's gain is at most 3, and it ends at least 8 below ISS-JPEG. Change the prose
    when this fails."""
    recs = committed("cifar10-quick-ueraser-jpeg")

    def acc(attack: str, defense: str) -> float:
        return defended(recs, attack, defense)

    variant = [r["defense_spec"]["params"] for r in recs if r["defense"] == "ueraser-lite-jpeg"]
    assert len(variant) == 8 and all(v["policy"][0] == "jpeg" and v["plasma_p"] == 0.8 for v in variant)
    clean_gain = acc("clean", "ueraser-lite-jpeg") - acc("clean", "ueraser-lite")
    assert round(clean_gain) == 4, clean_gain
    for attack in ("tap", "t-aap", "ut-aap"):
        gain = acc(attack, "ueraser-lite-jpeg") - acc(attack, "ueraser-lite")
        assert 5.0 <= round(gain, 1) <= 7.0, (attack, gain)
        assert gain - clean_gain <= 3.0, (attack, gain, clean_gain)
        assert acc(attack, "ueraser-lite-jpeg") <= acc(attack, "iss-jpeg") - 8.0, attack
    text = doc("docs/defenses.md")
    assert "APBench's variant ends 5 to 7 points above the default on each of the three, but clean data gains 4 points under it too" in text
    assert "beyond what clean data gains it adds at most 3 points on the poisons; and it still ends at least 8 points below ISS-JPEG" in text


def test_what_docs_attacks_says_of_the_long_schedules_holds_on_the_records():
    """docs/attacks.md: CP-C with 200 class-wise epochs leaves `simclr` within 2 points of clean and
    above the halfway mark to the random-init floor, TUE with 40 epochs leaves `moco` within 2 points
    of clean, the victims' final contrastive loss within 3% of clean's, and the long CP-C costs `sl`
    more than 10 points beyond the 40-epoch CP-C. Change the prose when this fails."""
    recs = committed("cifar10-quick-long-schedules")

    def acc(attack: str, victim: str) -> float:
        return accuracy(recs, attack, victim)

    def final_loss(attack: str, victim: str) -> float:
        (rec,) = [r for r in recs if (r["attack"], r["victim"], r["defense"], r["seed"]) == (attack, victim, "none", 0)]
        return [c["loss"] for c in rec["curves"] if c.get("phase") == "pretrain"][-1]

    clean, floor = acc("clean", "simclr"), acc("clean", "random-init")
    assert acc("cp-c-e200", "simclr") >= clean - 2 and acc("cp-c-e200", "simclr") > floor + 0.5 * (clean - floor)
    assert acc("tue-e40", "moco") >= acc("clean", "moco") - 2
    for attack, victim in (("cp-c-e200", "simclr"), ("tue-e40", "moco")):
        assert abs(final_loss(attack, victim) / final_loss("clean", victim) - 1) < 0.03, (attack, victim)
    assert acc("cp-c-e200", "sl") < acc("cp-c", "sl") - 10
    settings = {r["attack"]: r["poison_meta"]["settings"] for r in recs if r["attack"] in ("cp-c-e200", "tue-e40")}
    assert settings["cp-c-e200"]["classwise_epochs"] == 200 and settings["tue-e40"]["epochs"] == 40
    text = doc("docs/attacks.md")
    assert "No. Five times the schedule leaves both contrastive probes where they were" in text


def test_what_docs_attacks_says_of_cp_c_against_its_fixed_noise_holds_on_the_records():
    """docs/attacks.md, "Is it the generator or the victims?": with its noise steps made negligible
    (the fixed class-wise start), CP-C's generator ends within 1% of the optimized CP-C's final loss
    at 40 and 200 epochs (optimized lower); the fixed noise leaves `sl` within 0.5 of clean where
    CP-C costs it more than 5 / 20, and on `simclr` the optimized noise is about a point below the
    fixed one, the fixed one at clean. Change the prose when this fails."""
    recs = committed("cifar10-quick-long-schedules")

    def acc(attack: str, victim: str) -> float:
        return accuracy(recs, attack, victim)

    def final(attack: str) -> float:
        (loss,) = {r["poison_meta"]["classwise_model_loss"][-1] for r in recs if r["attack"] == attack}
        return loss

    steps = {r["attack"]: r["poison_meta"]["settings"]["classwise_step_size"] for r in recs if "cp-c" in r["attack"]}
    assert steps == {"cp-c": 0.1, "cp-c-e200": 0.1, "cp-c-fixed": 1e-6, "cp-c-e200-fixed": 1e-6}
    gaps = [final(f"{a}-fixed") - final(a) for a in ("cp-c", "cp-c-e200")]
    assert all(0 < g < 0.01 * final(a) for g, a in zip(gaps, ("cp-c", "cp-c-e200"))), gaps
    clean = acc("clean", "sl")
    for fixed, optimized, cost in (("cp-c-fixed", "cp-c", 5), ("cp-c-e200-fixed", "cp-c-e200", 20)):
        assert abs(acc(fixed, "sl") - clean) <= 0.5 and acc(optimized, "sl") < clean - cost
        assert 0.5 <= acc(fixed, "simclr") - acc(optimized, "simclr") <= 1.5
        assert abs(acc(fixed, "simclr") - acc("clean", "simclr")) <= 0.3
    text = doc("docs/attacks.md")
    assert f"(by {gaps[0]:.2f} at 40 epochs, {gaps[1]:.2f} at 200)" in text
    assert "the noise phase finds no shortcut even for the model it is optimized against" in text


def test_what_docs_attacks_says_of_tp_at_five_times_its_schedule_holds_on_the_records():
    """docs/attacks.md, after the long schedules: TP with 50 epochs (seeds 0, 1) takes `sl` and `supcl`
    each more than 10 points below the 10-epoch TP, lowers every unsupervised contrastive probe below
    its clean value (the 10-epoch TP moves none by more than 0.6), and its worst case over the six
    victims is below EM's and CP's worst cases from the evidence, above T-AAP's and TAP's. Change the
    prose when this fails."""
    study = committed("cifar10-quick-long-schedules")
    evidence = committed("cifar10-quick")
    unsupervised = ("simclr", "moco", "byol", "simsiam")

    def acc(attack: str, victim: str) -> float:
        return accuracy(study, attack, victim)

    assert {r["attack_spec"]["params"]["epochs"] for r in study if r["attack"] == "tp-e50"} == {50}
    for v in ("sl", "supcl"):
        assert acc("tp-e50", v) < acc("tp", v) - 10.0, v
    drops = {v: acc("clean", v) - acc("tp-e50", v) for v in unsupervised}
    assert all(d > 0 for d in drops.values()) and all(abs(acc("clean", v) - acc("tp", v)) <= 0.6 for v in unsupervised)
    tp_worst = worst(study, "tp-e50")
    assert tp_worst == acc("tp-e50", "byol") and tp_worst < worst(evidence, "em") and tp_worst < worst(evidence, "cp")
    assert tp_worst > max(worst(evidence, "t-aap"), worst(evidence, "tap"))
    text = doc("docs/attacks.md")
    assert f"by {min(drops.values()):.1f} to {max(drops.values()):.1f} points in the seed means" in text, drops
    assert f"Its worst case over the six victims ({tp_worst:.1f}, at `byol`) is then below EM's ({worst(evidence, 'em'):.1f}) and CP's ({worst(evidence, 'cp'):.1f})" in text
    assert f"by {worst(evidence, 'em') - tp_worst:.1f} points against EM" in text
    assert f"above T-AAP's and TAP's worst cases ({worst(evidence, 't-aap'):.1f} and {worst(evidence, 'tap'):.1f})" in text


def test_what_docs_attacks_says_of_aue_at_sixty_epochs_holds_on_the_records():
    """docs/attacks.md, "AUE at the paper's 60 generation epochs": at 60 epochs AUE takes `sl` and
    `supcl` each more than 10 points below the 8-epoch AUE, leaves every unsupervised contrastive probe
    no more than half a point below its clean value (`byol` above it), and its worst case over the six
    victims, at `byol`, is above the 8-epoch AUE's and not below EM's (from the evidence). Change the
    prose when this fails."""
    study = committed("cifar10-quick-aue-e60")
    evidence = committed("cifar10-quick")

    def acc(attack: str, victim: str) -> float:
        cell = cell_mean(study, attack, victim, "none", "accuracy")
        assert cell and len(cell.seeds) == 2, (attack, victim, cell)
        return cell.mean

    runs = [r for r in study if r["attack"] == "aue-e60"]
    assert {r["attack_spec"]["params"]["epochs"] for r in runs} == {60}
    assert {len(r["poison_meta"]["train_accuracy"]) for r in runs} == {60}  # one entry per generation epoch
    for v in ("sl", "supcl"):
        assert acc("aue-e60", v) < acc("aue", v) - 10.0, v
    for v in ("simclr", "moco", "byol", "simsiam"):
        assert acc("aue-e60", v) >= acc("clean", v) - 0.5, v
    assert acc("aue-e60", "byol") > acc("clean", "byol") + 1.5
    assert worst_at(study, "aue-e60") == "byol" and acc("aue-e60", "byol") > worst(study, "aue")
    assert acc("aue-e60", "byol") >= worst(evidence, "em")
    text = doc("docs/attacks.md")
    assert "No, and the longer schedule pulls AUE's worst case the wrong way." in text
    assert "at 60 epochs it fails too" in text


def test_what_docs_attacks_says_of_pue_on_two_cpus_holds_on_the_records():
    """docs/attacks.md, "PUE on two CPUs": the evidence's PUE row is one poison, an Intel Xeon's
    (AVX-512), and results/cifar10-quick-pue-epyc-avx2 the 44 cells of an AMD EPYC's (AVX2), the same
    keys. Against the EPYC's, the Xeon's undefended `sl` cell reads 3.7 and 3.8 points higher;
    the defenses that keep the noise's pattern 2 to 6 higher; those that remove it or train past it
    within 3; grayscale, mixup and recovery inside the small radius at least 5 higher; the UEraser
    pair at least 16 higher and within 5 of AT (20 below it on the EPYC's). What holds on both is
    checked on both. Change the prose when this fails."""
    evidence = committed("cifar10-quick")
    epyc = committed("cifar10-quick-pue-epyc-avx2")
    xeon = [r for r in evidence if r["attack"] == "pue"]
    assert len(epyc) == 44 and {r["attack"] for r in epyc} == {"pue"}
    assert {r["key"] for r in epyc} <= {r["key"] for r in xeon}  # the same cells, every one recomputed

    assert one_poison(xeon) == ("ba860657", 4, "AVX512", "Intel(R) Xeon(R) Processor")
    assert one_poison(epyc) == ("7966698b", 4, "AVX2", "AMD EPYC")
    assert {round(r["poison_meta"]["wall_s"]) for r in xeon} == {74, 84}  # made twice, byte-identical

    def seeds(recs: list, defense: str) -> list[float]:
        got = {r["seed"]: 100 * r["metrics"]["accuracy"] for r in recs if r["victim"] == "sl" and r["defense"] == defense}
        assert sorted(got) == [0, 1], defense
        return [got[0], got[1]]

    diff = {d: [b - a for a, b in zip(seeds(epyc, d), seeds(xeon, d))] for d in {r["defense"] for r in epyc}}
    assert [round(x, 1) for x in diff.pop("none")] == [3.7, 3.8]
    follow = ("cutout", "gaussian-noise", "cutmix", "iss-bdr")
    alike = ("iss-jpeg", "at", "gaussian-blur", "median-filter", "finetune", "i-bau", "sau", "scratch", "recovery", "recovery-out")
    higher = ("iss-gray", "mixup", "recovery-in")
    erasers = ("ueraser-lite", "ueraser")
    assert set(diff) == set(follow + alike + higher + erasers)
    assert all(2.0 <= x <= 6.0 for d in follow for x in diff[d]), {d: diff[d] for d in follow}
    assert all(abs(x) <= 3.0 for d in alike for x in diff[d]), {d: diff[d] for d in alike}
    assert all(x >= 5.0 for d in higher for x in diff[d]), {d: diff[d] for d in higher}
    assert all(x >= 16.0 for d in erasers for x in diff[d]), {d: diff[d] for d in erasers}
    for d in erasers:
        assert abs(defended(xeon, "pue", d) - defended(xeon, "pue", "at")) <= 5.0, d
        assert defended(epyc, "pue", d) <= defended(epyc, "pue", "at") - 20.0, d
    for recs in (xeon, epyc):  # what holds on both poisons
        assert defended(recs, "pue", "none") <= defended(evidence, "clean", "none") - 30.0
        assert abs(accuracy(recs, "pue", "simclr") - accuracy(evidence, "clean", "simclr")) <= 1.0
        assert defended(recs, "pue", "recovery-in") < defended(recs, "pue", "recovery-out")
        assert defended(recs, "pue", "finetune") < defended(recs, "pue", "scratch")
        assert defended(recs, "pue", "at") > defended(evidence, "clean", "at")
    text = doc("docs/attacks.md")
    assert "it read alike on both poisons, within 3 points on every seed" in text
    assert "Undefended, the Intel Xeon's poison leaves `sl` 3.7 and 3.8 points higher on the two seeds" in text
    assert "its 44 cells are kept in `results/cifar10-quick-pue-epyc-avx2/`" in text and "byte-identical in 74 s (84 s the first time)" in text
    assert "within 5 points of adversarial training, where on the EPYC's poison they end 20 points below it" in text
    text = doc("docs/defenses.md")
    assert "the UEraser pair regained at most 19 points and ended 20 below adversarial training" in text
    assert all(defended(epyc, "pue", d) <= defended(epyc, "pue", "none") + 19.0 for d in erasers)




def test_what_docs_attacks_says_of_classwise_em_on_two_cpus_holds_on_the_records():
    """docs/attacks.md, "Class-wise EM on two CPUs": the evidence's class-wise EM row is one poison,
    an Intel Xeon's (AVX-512, 9 outer iterations), and results/cifar10-quick-em-class-epyc-avx2 the
    42 cells of an AMD EPYC's (AVX2, 8), the same keys. Unlike PUE's, they read alike: every shared
    cell within 2 points on every seed. Change the prose when this fails."""
    evidence = committed("cifar10-quick")
    epyc = committed("cifar10-quick-em-class-epyc-avx2")
    xeon = [r for r in evidence if r["attack"] == "em-class"]
    assert len(epyc) == 42 and {r["attack"] for r in epyc} == {"em-class"}
    assert {r["key"] for r in epyc} <= {r["key"] for r in xeon}
    assert not [r for r in epyc if r["victim"] == "sl" and r["defense"] == "none"]

    assert one_poison(xeon) == ("9f191865", 9, "AVX512", "Intel(R) Xeon(R) Processor")
    assert one_poison(epyc) == ("fcd2ce38", 8, "AVX2", "AMD EPYC")
    by_key = {r["key"]: 100 * r["metrics"]["accuracy"] for r in xeon}
    diff = [by_key[r["key"]] - 100 * r["metrics"]["accuracy"] for r in epyc]
    assert max(abs(x) for x in diff) <= 2.0, diff
    mean = sum(diff) / len(diff)
    text = doc("docs/attacks.md")
    assert f"on every one of the 42 cells they share the Xeon's poison ends within 2 points of the EPYC's (mean {mean:+.1f})" in text


def test_what_the_readme_says_of_cp_and_tp_generated_in_bf16_holds_on_the_records():
    """README.md, the contrastive poisons' speed: TP and CP-C generated in bf16 on an AMX CPU leave
    `sl` 0.8 to 2.8 points below their float32 generations (benchmarks/results/precision-cpu-amx-cp-tp-
    cb9dbbb, the same cell keys as the evidence). Change the prose when this fails."""
    from benchmark.records import load_records
    from benchmarks.precision import compare
    from tests.committed import REPO

    bf16 = load_records(REPO / "benchmarks/results/precision-cpu-amx-cp-tp-cb9dbbb")
    rows = compare(bf16, committed("cifar10-quick"))  # pairs each bf16 record with the evidence's of the same key
    assert sorted(r["cell"] for r in rows) == sorted(f"{a} × sl × none (seed {s})" for a in ("tp", "cp-c") for s in (0, 1))
    assert {r["dtype"] for r in rows} == {"bfloat16-autocast"} and {r["numerics"]["dtype"] for r in committed("cifar10-quick") if r["key"] in {b["key"] for b in bf16}} == {"float32"}
    lower = [-r["diff"] for r in rows]
    assert f"{min(lower):.1f} to {max(lower):.1f} points lower" == "0.8 to 2.8 points lower", lower
    assert "they leave `sl` 0.8 to 2.8 points lower than their float32 generations" in doc("README.md")


def test_what_docs_defenses_says_of_i_baus_matched_fine_tuning_holds_on_the_records():
    """docs/defenses.md, the study beside the evidence (examples/cifar10-quick-ibau-baseline.yaml):
    fine-tuning on I-BAU's own optimizer and steps (`finetune-ibau`) ends within 6 points of I-BAU on
    every row, `finetune` (SAU's budget) 9 to 16 points above it; I-BAU ends above its matched
    baseline on clean data and 1 to 6 points below it on the four poisons, with a seed std up to 6.4.
    Each attack's cells share one poison with the evidence matrix's. Change the prose when this fails."""
    recs = committed("cifar10-quick-ibau-baseline")

    def acc(attack: str, defense: str) -> float:
        return defended(recs, attack, defense)

    matched = [r["defense_spec"]["params"] for r in recs if r["defense"] == "finetune-ibau"]
    assert len(matched) == 10 and all((m["lr"], m["amsgrad"], m["batch_size"], m["epochs"]) == (0.001, False, 100, 5) for m in matched)
    for attack in ("clean", "em", "tap", "pue", "tp"):
        ibau, own, sau_budget = acc(attack, "i-bau"), acc(attack, "finetune-ibau"), acc(attack, "finetune")
        assert abs(ibau - own) <= 6.0 and 9.0 <= round(sau_budget - ibau, 1) <= 16.0, (attack, ibau, own, sau_budget)
        if attack == "clean":
            assert ibau > own
        else:
            assert 1.0 <= round(own - ibau) <= 6.0, (attack, ibau, own)
        digests = {r["poison_meta"]["x_sha256"] for r in recs if r["attack"] == attack and r["poison_meta"].get("x_sha256")}
        assert len(digests) <= 1, (attack, digests)
    stds = [statistics.stdev(cell_mean(recs, a, "sl", d, "accuracy").values) for a in ("em", "tap", "pue", "tp") for d in ("i-bau", "finetune-ibau")]
    assert round(max(stds), 1) == 6.4
    text = doc("docs/defenses.md")
    assert "`finetune-ibau` ends within 6 points of I-BAU on every row, where `finetune` ends 9 to 16 points above it" in text
    assert "on the four poisons it ends 1 to 6 points below it, within two seeds' spread (std up to 6.4 points)" in text
