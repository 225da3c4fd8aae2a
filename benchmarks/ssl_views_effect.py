"""Would torchvision's views change the contrastive evidence? The failing claims, recomputed with them.

``ssl_views.py`` found uebench's contrastive views easier than torchvision's: ``random_resized_crop``
shrinks a crop that does not fit where torchvision draws again, and the hue is a YIQ rotation where
torchvision shifts the HSV hue. ``benchmark.augment`` now has the torchvision versions
(``torchvision_resized_crop``, ``hsv_hue_shift``; tests/test_augment.py checks them against
torchvision pixel for pixel), but switching the plugins to them changes every contrastive victim's
and attack's numbers (a recomputation of the contrastive evidence: many CPU hours). This script
measures first whether the switch matters for the claims that fail at quick scale: it runs the
cells of ``cp-hurts-simclr`` and ``tue-hurts-moco`` (clean, CP-S and TUE poisons made with the
views, the simclr and moco encoders pretrained with them; quick profile, seeds 0 and 1: its kNN
probe reads un-augmented images, so the random-init floor cannot change)
with the views patched in, and sets them beside the committed records of the same cells.

    PYTHONPATH=$PWD python benchmarks/ssl_views_effect.py run cp --results /tmp/views-effect &
    PYTHONPATH=$PWD python benchmarks/ssl_views_effect.py run tue --results /tmp/views-effect
    PYTHONPATH=$PWD python benchmarks/ssl_views_effect.py summary --results /tmp/views-effect \\
        --out benchmarks/results/ssl-views-effect-COMMIT

The records it writes carry the plugins' current versions although the views differ: they stay in
a scratch directory (``--results`` may not lie under ``results/``) and only the summary is committed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for p in (REPO, REPO / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from common import use_torchvision_views


#: The evidence's dataset block, read from the evidence's own matrix (the same keys as its cells;
#: its relative path made absolute, since the scratch matrix lies elsewhere).
def _evidence_dataset() -> dict[str, Any]:
    import yaml

    doc = next(yaml.safe_load_all((REPO / "examples" / "cifar10-quick.yaml").read_text()))
    ds = dict(doc["dataset"])
    ds["path"] = str((REPO / ds["path"]).resolve())  # relative to the checkout, as `bench run` is run from it
    return ds


DATASET = _evidence_dataset()
#: Each part: the attacks and victims of one claim (run as one process each: both fit two cores).
PARTS: dict[str, dict[str, Any]] = {
    "cp": {"attacks": ["clean", "cp"], "victims": ["simclr", {"name": "simclr", "label": "random-init", "params": {"epochs": 0}}]},
    "tue": {"attacks": ["clean", "tue"], "victims": ["moco"]},
}
EVIDENCE = REPO / "results" / "cifar10-quick" / "cells"
#: (claim, victim, attack): the cells the summary sets side by side
ROWS = (("cp-hurts-simclr", "simclr", "clean"), ("cp-hurts-simclr", "simclr", "cp"), ("both (no views: unchanged by construction)", "random-init", "clean"),
        ("tue-hurts-moco", "moco", "clean"), ("tue-hurts-moco", "moco", "tue"))


def run(part: str, results: Path) -> int:
    import yaml

    from benchmark.cli import main as bench

    if results.resolve().is_relative_to((REPO / "results").resolve()):
        raise SystemExit("--results: use a scratch directory; these records must not join the evidence")
    results.mkdir(parents=True, exist_ok=True)
    doc = {"name": "cifar10-quick", "dataset": DATASET, "profile": "quick", "seeds": [0, 1], "threads": 1,
           **PARTS[part], "defenses": ["none"], "metrics": ["accuracy"]}
    path = results / f"matrix-{part}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    use_torchvision_views()
    return bench(["run", str(path), "--results", str(results)])


def _cells(root: Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Per (victim, attack) of the undefended cells: each seed's probe accuracy (%), final
    pretraining loss and, for a poison, its generator's final noise loss."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for f in sorted(root.glob("*.json")):
        rec = json.loads(f.read_text())
        if (rec.get("status") != "ok" or rec.get("defense") != "none" or "accuracy" not in (rec.get("metrics") or {})
                or rec.get("profile") != "quick" or rec.get("dataset") != DATASET["label"] or rec.get("seed") not in (0, 1)):
            continue  # only the cells this script recomputes: the evidence directory may hold others later
        pre = [c["loss"] for c in rec.get("curves") or [] if c.get("phase") == "pretrain" and c.get("loss") is not None]
        noise = (rec.get("poison_meta") or {}).get("noise_loss") or [None]
        out.setdefault((rec["victim"], rec["attack"]), []).append(
            {"seed": rec["seed"], "accuracy": 100 * float(rec["metrics"]["accuracy"]), "pretrain_loss": pre[-1] if pre else None,
             "poison_noise_loss": noise[-1], "cpu": (rec.get("numerics") or {}).get("device_name")})
    return out


def _ms(v: list[float], digits: int = 1) -> str:
    if not v:
        return "—"
    return f"{statistics.fmean(v):.{digits}f}" + (f" ± {statistics.stdev(v):.{digits}f}" if len(v) > 1 else "")


def summary(results: Path, out: Path) -> int:
    new, old = _cells(results / "cells"), _cells(EVIDENCE)
    rows = [{"claim": claim, "victim": victim, "attack": attack, "uebench_views": old.get((victim, attack), []),
             "torchvision_views": new.get((victim, attack), [])} for claim, victim, attack in ROWS]

    def col(r: dict[str, Any], side: str, key: str, digits: int) -> str:
        vals = [c[key] for c in r[side] if c[key] is not None]
        return _ms(sorted(set(vals)) if key == "poison_noise_loss" else vals, digits)  # one poison serves both seeds

    def cpus(side: str) -> str:
        return ", ".join(sorted({str(c["cpu"]) for r in rows for c in r[side]})) or "none"

    lines = [("Cells of the two contrastive claims that fail at quick scale, CIFAR-10 (JPEG-75 copy), 5k training "
              "subset, full 10k test set, quick profile, mean ± std over seeds 0 and 1: the committed evidence "
              "(uebench's views) against the same cells recomputed with torchvision's views (`ssl_views_effect.py`; "
              "the poisons regenerated with them too). Probe accuracy in %; the pretraining loss of the last epoch "
              "(harder views, higher loss); the poison generator's last noise loss. Cells computed on: uebench views "
              f"{cpus('uebench_views')}; torchvision views {cpus('torchvision_views')}."),
             "", ("| claim | victim | attack | accuracy, uebench views | accuracy, torchvision views | "
                 "pretraining loss, uebench | pretraining loss, torchvision | poison noise loss, uebench | poison noise loss, torchvision |"),
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['claim']} | {r['victim']} | {r['attack']} | {col(r, 'uebench_views', 'accuracy', 1)} | "
                     f"{col(r, 'torchvision_views', 'accuracy', 1)} | {col(r, 'uebench_views', 'pretrain_loss', 3)} | "
                     f"{col(r, 'torchvision_views', 'pretrain_loss', 3)} | {col(r, 'uebench_views', 'poison_noise_loss', 3)} | "
                     f"{col(r, 'torchvision_views', 'poison_noise_loss', 3)} |")

    def verdict(side: str, victim: str, attack: str) -> str:
        get = {(r["victim"], r["attack"]): [c["accuracy"] for c in r[side]] for r in rows}
        v, clean, floor = get.get((victim, attack)), get.get((victim, "clean")), get.get(("random-init", "clean"))
        if not (v and clean and floor):
            return "not measured"
        bar = statistics.fmean(floor) + 0.5 * (statistics.fmean(clean) - statistics.fmean(floor))
        return f"{'holds' if statistics.fmean(v) <= bar else 'fails'} ({statistics.fmean(v):.1f} vs bar {bar:.1f})"

    lines += ["", "The claims' test (`v <= floor + 0.5 * (clean - floor)`, benchmark/claims.yaml) on each side:", "",
              "| claim | uebench views | torchvision views |", "|---|---|---|"]
    for claim, victim, attack in (("cp-hurts-simclr", "simclr", "cp"), ("tue-hurts-moco", "moco", "tue")):
        lines.append(f"| {claim} | {verdict('uebench_views', victim, attack)} | {verdict('torchvision_views', victim, attack)} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    print("\n".join(lines))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run one part's cells with torchvision's views")
    r.add_argument("part", choices=sorted(PARTS))
    r.add_argument("--results", type=Path, required=True)
    s = sub.add_parser("summary", help="set the recomputed cells beside the committed records")
    s.add_argument("--results", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True, help="path without suffix: writes .md and .json")
    args = ap.parse_args(argv)
    return run(args.part, args.results) if args.cmd == "run" else summary(args.results, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
