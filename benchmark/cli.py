"""The ``bench`` command (also ``python -m benchmark``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmark.errors import UserError


def _run(args: argparse.Namespace) -> int:
    """Run every matrix of the file (one, or several YAML documents) in order into one results
    directory; every document is validated before the first cell runs."""
    from benchmark.config import ExecutorSpec, document_name, load_matrices, resolve
    from benchmark.executors import execute
    from benchmark.plan import make_plan
    from benchmark.registry import get_registry
    from benchmark.report import write_leaderboard
    from benchmark.runner import Runner, Summary

    matrices = load_matrices(args.matrix)
    many = len(matrices) > 1
    resolved = []
    for i, matrix in enumerate(matrices):
        if args.device:
            matrix = matrix.model_copy(update={"device": args.device})
        if args.profile:
            matrix = matrix.model_copy(update={"profile": args.profile})
        if args.workers:
            matrix = matrix.model_copy(update={"executor": ExecutorSpec(name="local", params={"workers": args.workers})})
        name = document_name(args.matrix, i) if many else str(args.matrix)
        r = resolve(matrix, get_registry(), file=name)
        try:
            make_plan(r)  # every document's data and keys, before the first cell runs
        except UserError as e:
            raise UserError(f"{name}: {e}" if many else str(e)) from None
        resolved.append(r)
    if args.dry_run:
        for i, r in enumerate(resolved):
            head = f"document {i + 1} of {len(resolved)}: " if many else ""
            print(head + Runner(r, args.results, progress=False).describe())
        return 0
    total = Summary()
    for i, r in enumerate(resolved):
        if many:
            print(f"document {i + 1} of {len(resolved)}: matrix {r.matrix.name!r}", file=sys.stderr)
        try:
            summary = execute(r, args.results, progress=None if not args.quiet else False, verbose=args.verbose)
        except KeyboardInterrupt:
            print(
                f"\ninterrupted: every finished cell is saved in {args.results}/; rerun the same command to resume",
                file=sys.stderr,
            )
            return 130
        if many:
            print(summary.text(), file=sys.stderr)
        total.add(summary)
    print(("all documents: " if many else "") + total.text(), file=sys.stderr)
    board = write_leaderboard(args.results)
    print(f"leaderboard: {board}", file=sys.stderr)
    return total.exit_code


def _leaderboard(args: argparse.Namespace) -> int:
    from benchmark.report import write_leaderboard

    root = Path(args.results)
    if not (root / "cells").is_dir():
        raise UserError(f"{str(root)!r} holds no results (no cells/ folder); run `bench run MATRIX --results {root}` first")
    path = write_leaderboard(root, args.out)
    print(path)
    return 0


def _claims(args: argparse.Namespace) -> int:
    """Check the papers' claims on a results directory; write CLAIMS.md. A failing claim is
    reported, not an error: the exit code is 0 unless the claims file or the results are unreadable."""
    from benchmark.claims import claim_lines, render_text, write_claims

    path, report = write_claims(args.results, args.claims, args.out)
    print("\n".join(claim_lines(report)) if args.lines else render_text(report))
    print(f"claims: {path}", file=sys.stderr)
    return 0


def _audit(args: argparse.Namespace) -> int:
    """Recompute sampled cells from scratch; exit 1 when a value differs beyond the tolerance."""
    from benchmark.audit import audit, commit_seed, render, to_json

    if args.cells < 0 or args.budget <= 0:
        raise UserError("--cells must be >= 0 and --budget > 0 (minutes)")
    seed = commit_seed(args.results) if args.seed_from_commit else args.seed
    print(f"audit: {args.results}, up to {args.cells} cells within {args.budget:g} min of recorded cost, seed {seed} "
          f"(reproduce: bench audit {args.results} --cells {args.cells} --budget {args.budget:g} --seed {seed})", file=sys.stderr)
    res = audit(args.results, cells=args.cells, budget_min=args.budget, seed=seed, threads=args.threads, device=args.device,
                keep=args.keep, data=args.data, strict=args.strict, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(render(res))
    if args.json:
        Path(args.json).write_text(to_json(res) + "\n")
    return 0 if res.ok else 1


def _docs(args: argparse.Namespace) -> int:
    """Rewrite the generated blocks of README.md and docs/*.md from the committed records."""
    from benchmark.docs import update_docs

    changed = update_docs(args.root, check=args.check)
    for p in changed:
        print(f"{'stale' if args.check else 'updated'}: {p}")
    if args.check and changed:
        print("generated blocks are stale: run `bench docs` and commit the result", file=sys.stderr)
        return 1
    if not changed:
        print("generated blocks are up to date", file=sys.stderr)
    return 0


def _plugins(args: argparse.Namespace) -> int:
    from benchmark.registry import get_registry

    rows = []
    for e in get_registry().entries():
        missing = e.missing
        rows.append(
            {
                "kind": e.kind,
                "name": e.name,
                "version": e.version,
                "package": e.package,
                "source": e.source,
                "usable": not missing,
                "note": f"needs {', '.join(missing)}" if missing else "",
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        from tabulate import tabulate

        print(tabulate([[r["kind"], r["name"], r["version"], r["package"], "yes" if r["usable"] else "no", r["note"]] for r in rows],
                       headers=["kind", "name", "version", "package", "usable", "note"]))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench", description="uebench: availability-poisoning benchmark")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a matrix (skips finished cells) and write the leaderboard")
    r.add_argument("matrix", help="matrix YAML file (several `---`-separated documents run in order)")
    r.add_argument("--results", default="results", help="results directory (default: results)")
    r.add_argument("--dry-run", action="store_true", help="list attack jobs and cells, run nothing")
    r.add_argument("--device", help="override the matrix's device (auto, cpu, cuda, cuda:N)")
    r.add_argument("--profile", choices=["paper", "quick", "smoke"], help="override the matrix's profile")
    r.add_argument("--workers", type=int, help="run with the local executor and this many worker processes")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("-v", "--verbose", action="store_true", help="also print the plugins' progress (epochs, outer iterations)")
    r.set_defaults(fn=_run)
    lb = sub.add_parser("leaderboard", help="write LEADERBOARD.md from a results directory")
    lb.add_argument("results", nargs="?", default="results")
    lb.add_argument("--out", help="output file (default: RESULTS/LEADERBOARD.md)")
    lb.set_defaults(fn=_leaderboard)
    cl = sub.add_parser("claims", help="check the papers' claims on a results directory; write CLAIMS.md")
    cl.add_argument("results", nargs="?", default="results")
    cl.add_argument("--claims", help="claims file (default: the project's, benchmark/claims.yaml)")
    cl.add_argument("--out", help="output file (default: RESULTS/CLAIMS.md)")
    cl.add_argument("--lines", action="store_true", help="print `id | source | statement | condition | measured | result` lines")
    cl.set_defaults(fn=_claims)
    au = sub.add_parser("audit", help="recompute sampled cells from scratch and compare them with their records")
    au.add_argument("results", nargs="?", default="results")
    au.add_argument("--cells", type=int, default=2, help="how many cells to recompute (default 2)")
    au.add_argument("--budget", type=float, default=30.0, help="minutes of recorded cost (poison + cell) to spend at most (default 30)")
    au.add_argument("--seed", default="0", help="seed of the choice of cells (default 0)")
    au.add_argument("--seed-from-commit", action="store_true", help="seed the choice with the git commit of RESULTS (reproducible by anyone)")
    au.add_argument("--threads", type=int, help="torch threads (default: each record's own)")
    au.add_argument("--device", default="cpu", help="device to recompute on (default cpu)")
    au.add_argument("--strict", action="store_true", help="require identical values (same machine, same threads)")
    au.add_argument("--data", help="folder to find dataset files in when a record's path does not exist here")
    au.add_argument("--keep", help="recompute into this results directory instead of a temporary one")
    au.add_argument("--json", help="also write the comparisons as JSON to this file")
    au.set_defaults(fn=_audit)
    dc = sub.add_parser("docs", help="rewrite the generated tables of README.md and docs/ from the committed results")
    dc.add_argument("--root", default=".", help="repository root (default: the current directory)")
    dc.add_argument("--check", action="store_true", help="change nothing; exit 1 when a generated block is stale")
    dc.set_defaults(fn=_docs)
    pl = sub.add_parser("plugins", help="list installed plugins")
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(fn=_plugins)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
