"""How far the unlearnable distance's cheap approximations are from its faithful procedure, on one
(clean, EM) pair of quick-profile runs (CIFAR-10 JPEG-75 copy, 5k subset, small-CNN ``sl``, seed 0).

Stages (each resumable; results under ``--out``):

- ``train``: the clean and the EM cells' victims, trained exactly as the runner trains them (the
  evidence matrix's dataset block, poison from ``--results``' cache or generated there), with a
  snapshot of the model at every epoch: ``<out>/<attack>.pt``;
- ``faithful``: S⁺/S⁻ of every layer at every epoch with the paper profile (10 full-pass rounds each
  way, the training batch size 128, crop+flip, L₀ = running loss): one JSON per (run, epoch), so
  an interrupted run resumes;
- ``approx``: the same snapshots scored by each variant of :data:`VARIANTS` (quick is one of them);
- ``report``: UD, β, #LP of every variant next to the faithful procedure's, as markdown.

    PYTHONPATH=$PWD python benchmarks/ud_approximation.py --stage train
    PYTHONPATH=$PWD python benchmarks/ud_approximation.py --stage faithful     # hours on one core
    PYTHONPATH=$PWD python benchmarks/ud_approximation.py --stage approx
    PYTHONPATH=$PWD python benchmarks/ud_approximation.py --stage report
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmark.config import parse_matrix, resolve
from benchmark.fitting import defend_and_fit
from benchmark.registry import get_registry
from benchmark.runner import Runner
from benchmark.sal import model_sharpness, sal_value, unlearnable_distance
from benchmark.training import accuracy
from plugins.metrics.unlearnable_distance import EpochSnapshots, RunSharpness, UnlearnableDistance

MATRIX = {
    "name": "ud-approximation",
    "dataset": {"name": "npz", "label": "cifar10-5k", "path": "/work/shared/data/cifar10-jpeg.npz", "subset": 5000, "holdout": "5%"},
    "profile": "quick",
    "seeds": [0],
    "threads": 1,
    "attacks": ["clean", "em"],
    "victims": ["sl"],
    "defenses": ["none"],
    "metrics": ["accuracy"],
}
RUNS = ("clean", "em")
FAITHFUL = {"every": 1, "iterations": 10, "augment": True, "scoring_images": None, "steps": None, "reference_loss": "running"}
#: approximations scored on the same snapshots: name -> metric params (the rest: paper defaults)
VARIANTS: dict[str, dict[str, Any]] = {
    "quick": dict(UnlearnableDistance.profiles["quick"]),
    "quick-every1": {**UnlearnableDistance.profiles["quick"], "every": 1},
    "quick-L0eval": {**UnlearnableDistance.profiles["quick"], "reference_loss": "eval"},
    "quick-augment": {**UnlearnableDistance.profiles["quick"], "augment": True},
    "quick-10rounds": {**UnlearnableDistance.profiles["quick"], "iterations": 10},
    "sub1024-aug-10rounds-every1": {"scoring_images": 1024, "every": 1},
}


def runner(results: str) -> Runner:
    return Runner(resolve(parse_matrix(MATRIX), get_registry()), results, log=lambda m: print(m, flush=True))


def stage_train(out: Path, results: str) -> None:
    r = runner(results)
    for job in r.plan.jobs:
        path = out / f"{job.attack.name}.pt"
        if path.exists():
            continue
        (cell,) = job.cells
        poison = r.poison(job)
        ctx = r.ctx(cell.seed)
        snaps = EpochSnapshots(every=1)
        ctx.trace.subscribe(snaps)
        t0 = time.perf_counter()
        model, train = defend_and_fit(r.splits().train.with_images(poison.x), cell.victim, cell.defense, ctx)
        acc = accuracy(model, r.splits().test, ctx)
        print(f"{job.attack.name}: trained in {time.perf_counter() - t0:.0f} s, test accuracy {acc:.4f}", flush=True)
        torch.save(
            {"template": snaps.template, "epochs": snaps.epochs, "losses": snaps.losses, "states": snaps.states,
             "x": train.x, "y": train.y, "classes": train.classes, "accuracy": acc, "batch_size": cell.victim.params.batch_size},
            path,
        )


def load_run(out: Path, name: str) -> tuple[EpochSnapshots, Any, int]:
    from benchmark.data.dataset import ImageDataset

    blob = torch.load(out / f"{name}.pt", weights_only=False)
    snaps = EpochSnapshots(1)
    snaps.template, snaps.epochs, snaps.losses, snaps.states = blob["template"], blob["epochs"], blob["losses"], blob["states"]
    return snaps, ImageDataset(blob["x"], blob["y"], tuple(blob["classes"])), blob["batch_size"]


def metric(params: dict[str, Any]) -> UnlearnableDistance:
    return UnlearnableDistance(UnlearnableDistance.Params(**params))


def stage_faithful(out: Path, runs: list[str], epochs: list[int] | None) -> None:
    m = metric(FAITHFUL)
    ctx = runner("/tmp/ud-approx-unused").ctx(0)
    for name in runs:
        snaps, train, bs = load_run(out, name)
        s = m.sharpness(bs)
        data = m.scoring_set(train, ctx)
        net = snaps.template
        # the quick profile's epochs first (4, 8, ...), then the ones between: a partial run
        # still compares like with like, and spans the whole training
        order = sorted(range(len(snaps.epochs)), key=lambda i: (snaps.epochs[i] % 4 != 0, snaps.epochs[i] % 2 != 0, snaps.epochs[i]))
        for i in order:
            epoch, loss, state = snaps.epochs[i], snaps.losses[i], snaps.states[i]
            path = out / "faithful" / f"{name}-{epoch:03d}.json"
            if path.exists() or (epochs and epoch not in epochs):
                continue
            net.load_state_dict(state)
            t0 = time.perf_counter()
            r = model_sharpness(net, data, s, ctx, base_loss=loss, seed=ctx.seed * 10_007 + epoch)
            rec = {"layers": r.layers, "s_plus": r.s_plus.tolist(), "s_minus": r.s_minus.tolist(), "base_loss": r.base_loss,
                   "train_images": r.count.train, "eval_images": r.count.eval, "seconds": time.perf_counter() - t0}
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(rec))
            print(f"faithful {name} epoch {epoch}: {rec['seconds']:.0f} s, SAL {[round(v, 4) for v in sal_value(r.s_plus, r.s_minus).tolist()]}", flush=True)


def faithful_run(out: Path, name: str) -> RunSharpness | None:
    files = sorted((out / "faithful").glob(f"{name}-*.json"))
    if not files:
        return None
    recs = [json.loads(f.read_text()) for f in files]
    return RunSharpness(
        recs[0]["layers"], [int(f.stem.rsplit("-", 1)[1]) for f in files], [r["base_loss"] for r in recs],
        torch.tensor([r["s_plus"] for r in recs], dtype=torch.float64), torch.tensor([r["s_minus"] for r in recs], dtype=torch.float64),
    )


def stage_approx(out: Path, variants: list[str]) -> None:
    ctx = runner("/tmp/ud-approx-unused").ctx(0)
    for v in variants:
        path = out / "approx" / f"{v}.json"
        if path.exists():
            continue
        m = metric(VARIANTS[v])
        rec: dict[str, Any] = {"params": VARIANTS[v]}
        for name in RUNS:
            full, train, bs = load_run(out, name)
            snaps = EpochSnapshots(m.params.every)
            for e, loss, st in zip(full.epochs, full.losses, full.states):
                if e % snaps.every == 0 or e == full.epochs[-1]:
                    snaps.epochs.append(e)
                    snaps.losses.append(loss)
                    snaps.states.append(st)
            snaps.template = full.template
            t0 = time.perf_counter()
            run = m.score(snaps, train, bs, ctx)
            rec[name] = {"epochs": run.epochs, "s_plus": run.s_plus.tolist(), "s_minus": run.s_minus.tolist(), "base_loss": run.base_loss,
                         "train_images": run.count.train, "eval_images": run.count.eval, "seconds": time.perf_counter() - t0}
            print(f"{v} {name}: {rec[name]['seconds']:.0f} s", flush=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rec))


def _restrict(run: RunSharpness, epochs: list[int]) -> RunSharpness:
    rows = [run.epochs.index(e) for e in epochs]
    return RunSharpness(run.layers, epochs, [run.base_loss[i] for i in rows], run.s_plus[rows], run.s_minus[rows])


def _decisions(clean: RunSharpness, em: RunSharpness) -> torch.Tensor:
    """The learnable-layer decisions (SAL > β, β from the clean run) of both runs, ``[2, T, L]``."""
    beta = unlearnable_distance(em.sal, clean.sal)["ud_beta"]
    return torch.stack([clean.sal > beta, em.sal > beta])


def stage_report(out: Path) -> None:
    """UD of the faithful procedure and of every variant: over the epochs each scored, and over the
    epochs both scored (like with like), with the share of (run, epoch, layer) learnable-layer
    decisions on which the variant agrees with the faithful procedure."""
    fc, fe = faithful_run(out, "clean"), faithful_run(out, "em")
    common = sorted(set(fc.epochs) & set(fe.epochs)) if fc is not None and fe is not None else []
    if common:
        fc, fe = _restrict(fc, common), _restrict(fe, common)
        u = unlearnable_distance(fe.sal, fc.sal)
        print(f"faithful procedure (paper profile), epochs {common}:")
        print(f"  UD(EM) {u['ud']:.3f}, #LP(EM) {u['ud_lp']:.2f}, #LP(clean) {u['ud_lp_clean']:.2f}, beta {u['ud_beta']:.4f}")
        secs = sum(json.loads(f.read_text())["seconds"] for f in (out / "faithful").glob("*.json"))
        print(f"  {len(list((out / 'faithful').glob('*.json')))} scored (run, epoch) pairs in {secs:,.0f} s")
        print()
    print("| procedure | scored epochs | UD(EM) | #LP(EM) | #LP(clean) | β | s (both runs) | UD(EM) on the faithful's epochs | decisions agreeing with the faithful |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    differ: list[str] = []
    for f in sorted((out / "approx").glob("*.json")):
        rec = json.loads(f.read_text())
        runs = {n: RunSharpness([], rec[n]["epochs"], rec[n]["base_loss"], torch.tensor(rec[n]["s_plus"]), torch.tensor(rec[n]["s_minus"])) for n in RUNS}
        u = unlearnable_distance(runs["em"].sal, runs["clean"].sal)
        secs = sum(rec[n]["seconds"] for n in RUNS)
        shared = [e for e in common if e in runs["clean"].epochs]
        like, agree = "", ""
        if shared:
            vc, ve = _restrict(runs["clean"], shared), _restrict(runs["em"], shared)
            like = f"{unlearnable_distance(ve.sal, vc.sal)['ud']:.3f} ({len(shared)} ep)"
            mine, theirs = _decisions(vc, ve), _decisions(_restrict(fc, shared), _restrict(fe, shared))
            agree = f"{(mine == theirs).double().mean():.2f}"
            word = {True: "learnable", False: "not learnable"}
            differ += [f"{f.stem}: {RUNS[r]} epoch {shared[t]} layer {layer + 1} {word[bool(mine[r, t, layer])]} (faithful: {word[bool(theirs[r, t, layer])]})"
                       for r, t, layer in (mine != theirs).nonzero().tolist()]
        print(f"| {f.stem} | {len(runs['clean'].epochs)} | {u['ud']:.3f} | {u['ud_lp']:.2f} | {u['ud_lp_clean']:.2f} | {u['ud_beta']:.4f} | {secs:,.0f} | {like} | {agree} |")
    if differ:
        print()
        print("decisions that differ from the faithful procedure's (run, epoch, layer; each variant's own β):")
        for line in differ:
            print(f"  {line}")
    if common:
        print()
        print("faithful SAL per epoch, layers in order (clean | em), and L0 (clean | em):")
        for i, e in enumerate(common):
            print(f"  {e:3d}: {[round(v, 3) for v in fc.sal[i].tolist()]} | {[round(v, 3) for v in fe.sal[i].tolist()]}  L0 {fc.base_loss[i]:.3f} | {fe.base_loss[i]:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stage", choices=("train", "faithful", "approx", "report"), required=True)
    ap.add_argument("--out", default="/tmp/ud-approx")
    ap.add_argument("--results", default="/work/evidence/cifar10-quick", help="where the poisons are cached / generated")
    ap.add_argument("--runs", default=",".join(RUNS))
    ap.add_argument("--epochs", default="", help="faithful: only these epochs (comma-separated)")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    if a.stage == "train":
        stage_train(out, a.results)
    elif a.stage == "faithful":
        stage_faithful(out, a.runs.split(","), [int(e) for e in a.epochs.split(",") if e])
    elif a.stage == "approx":
        stage_approx(out, [v for v in a.variants.split(",") if v])
    else:
        stage_report(out)


if __name__ == "__main__":
    main()
