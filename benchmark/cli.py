"""The ``bench`` command (also ``python -m benchmark``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmark.errors import UserError


def _run(args: argparse.Namespace) -> int:
    from benchmark.config import ExecutorSpec, load_matrix, resolve
    from benchmark.executors import execute
    from benchmark.registry import get_registry
    from benchmark.report import write_leaderboard
    from benchmark.runner import Runner

    matrix = load_matrix(args.matrix)
    if args.device:
        matrix = matrix.model_copy(update={"device": args.device})
    if args.profile:
        matrix = matrix.model_copy(update={"profile": args.profile})
    if args.workers:
        matrix = matrix.model_copy(update={"executor": ExecutorSpec(name="local", params={"workers": args.workers})})
    resolved = resolve(matrix, get_registry(), file=str(args.matrix))
    if args.dry_run:
        print(Runner(resolved, args.results, progress=False).describe())
        return 0
    try:
        summary = execute(resolved, args.results, progress=None if not args.quiet else False, verbose=args.verbose)
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: every finished cell is saved in {args.results}/; rerun the same command to resume",
            file=sys.stderr,
        )
        return 130
    print(summary.text(), file=sys.stderr)
    board = write_leaderboard(args.results)
    print(f"leaderboard: {board}", file=sys.stderr)
    return summary.exit_code


def _leaderboard(args: argparse.Namespace) -> int:
    from benchmark.report import write_leaderboard

    root = Path(args.results)
    if not (root / "cells").is_dir():
        raise UserError(f"{str(root)!r} holds no results (no cells/ folder); run `bench run MATRIX --results {root}` first")
    path = write_leaderboard(root, args.out)
    print(path)
    return 0


def _plugins(args: argparse.Namespace) -> int:
    from benchmark.registry import get_registry

    rows = []
    for e in get_registry().entries():
        missing = [] if e.error else e.missing
        rows.append(
            {
                "kind": e.kind,
                "name": e.name,
                "version": e.version if not e.error else "",
                "package": e.package,
                "package_version": e.package_version,
                "source": e.source,
                "usable": not missing and not e.error,
                "error": e.error,
                "note": f"broken: {e.error}" if e.error else (f"needs {', '.join(missing)}" if missing else ""),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        from tabulate import tabulate

        print(tabulate([[r["kind"], r["name"], r["version"], f"{r['package']} {r['package_version']}".strip(),
                         "yes" if r["usable"] else "no", r["note"]] for r in rows],
                       headers=["kind", "name", "version", "package", "usable", "note"]))
    broken = sum(1 for r in rows if r["error"])
    if broken:
        print(f"{broken} broken plugin{'s' if broken > 1 else ''}: every matrix that does not use "
              f"{'them' if broken > 1 else 'it'} runs", file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench", description="uebench: availability-poisoning benchmark")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a matrix (skips finished cells) and write the leaderboard")
    r.add_argument("matrix", help="matrix YAML file")
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
