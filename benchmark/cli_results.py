"""The ``bench`` commands over a results directory: ``status``, ``prune``, ``leaderboard``,
``report``, ``claims`` and ``audit`` (argument checks, then the work in their own modules)."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from benchmark.cli_matrix import data_not_here, load_resolved, profile_only, warn_data_not_here
from benchmark.errors import UserError
from benchmark.records import READ_ADVICE, not_a_folder_of_results, results_root
from benchmark.store import refuse_file


def status(args: argparse.Namespace) -> int:
    from benchmark.status import Survey, render, to_json

    if args.matrix is None and Path(args.results).suffix in (".yaml", ".yml") and Path(args.results).is_file():
        args.results, args.matrix = "results", args.results  # `bench status MATRIX.yaml`: the default results
    root = Path(args.results)
    refuse_file(root, READ_ADVICE)
    if not root.is_dir():
        raise UserError(f"results directory {str(root)!r} does not exist")
    not_a_folder_of_results(root)
    if args.profile and not args.matrix:
        raise UserError("--profile needs MATRIX: it says which profile of the matrix's plan to compare with")
    survey = Survey(root, warn=lambda m: print(f"warning: {m}", file=sys.stderr))
    if args.matrix:
        resolved = load_resolved(args.matrix, profile_only(args.profile))
        warn_data_not_here(resolved)
        statuses = [survey.of_matrix(r) for r in resolved]
        if not args.profile and not any(s.done or s.failed or s.running for s in statuses):  # run at another profile?
            from benchmark.report.records import other_profiles

            other = other_profiles(survey.store.records(), {r.matrix.name: r.matrix.profile for r in resolved})
            if other:
                print(f"note: {str(root)!r} holds this matrix's cells at profile {', '.join(other)}: "
                      f"`bench status {args.results} {args.matrix} --profile {other[0]}` compares with those", file=sys.stderr)
    else:
        statuses = survey.of_results()
    print(to_json(statuses) if args.json else render(statuses, root, limit=0 if args.all else 20))
    return 0


def prune(args: argparse.Namespace) -> int:
    """List (``--apply``: move) what RESULTS keeps of settings MATRIX no longer has. Refused, moving
    nothing, when a document's data is not found here: its cells' keys would name other data, and
    every record of the matrix would look replaced."""
    from benchmark.plan import make_plan
    from benchmark.prune import apply, render, survey

    root = results_root(args.results)
    resolved = load_resolved(args.matrix, profile_only(args.profile))
    if missing := data_not_here(resolved):
        what, note = missing[0]
        raise UserError(f"not pruning: {what} is not found here, and its cells' keys depend on the data found "
                        f"(every record of the matrix would look replaced); nothing moved. {note}")
    found = survey(root, [make_plan(r) for r in resolved])
    if found.other_data:
        path, theirs, here = found.other_data[0]
        raise UserError(f"not pruning: {len(found.other_data)} records of {args.matrix} (e.g. {path.stem}) were made with "
                        f"other data than found here ({theirs[:19]}... there, {here[:19]}... here: another copy of the "
                        "dataset), so every one would look replaced; nothing moved. Point $UEBENCH_DATA or the dataset's "
                        "root at the copy they were made with, or move records by hand")
    dest = apply(found) if args.apply and not found.empty() else None
    print(render(found, dest))
    if dest is not None and (root / "LEADERBOARD.md").is_file():
        from benchmark.report import write_leaderboard

        print(f"rewrote {write_leaderboard(root)}")
    return 0


def out_file(value: str | None, flag: str, default: Path | None = None) -> None:
    """Refuse, before any work, an output FILE that cannot be one: a directory, a path ending in
    ``/``, or one under a file; without ``value``, the ``default`` the command would write. A
    missing parent folder is created when the file is written."""
    if value is None:
        if default is not None and default.is_dir():
            raise UserError(f"{str(default)!r} is a directory; move it, or write elsewhere with {flag} FILE")
        return
    p = Path(value)
    if not value or value.endswith(("/", os.sep)) or p.is_dir():
        raise UserError(f"{flag} {value!r} is a directory; give a file path")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{flag} {value!r}: {str(parent)!r} is a file, not a directory")
            break


def matrix_keys(args: argparse.Namespace) -> tuple[set[str] | None, dict[str, str] | None]:
    """The keys of the cells of ``--matrix`` (every document, at ``--profile`` when given), and its
    documents' names and profiles (to say where its cells are when none is at that profile); ``(None,
    None)`` without it: the tables then show every record of the directory."""
    if args.profile and not args.matrix:
        raise UserError("--profile needs --matrix: it says at which profile the matrix's cells are chosen")
    if not args.matrix:
        return None, None
    from benchmark.plan import make_plan

    resolved = load_resolved(args.matrix, profile_only(args.profile))
    warn_data_not_here(resolved)
    return {c.key for r in resolved for c in make_plan(r).cells}, {r.matrix.name: r.matrix.profile for r in resolved}


def leaderboard(args: argparse.Namespace) -> int:
    from benchmark.report import write_leaderboard

    root = results_root(args.results)
    out_file(args.out, "--out", root / "LEADERBOARD.md")
    keys, matrices = matrix_keys(args)
    try:
        path = write_leaderboard(root, args.out, keys=keys, matrices=matrices)
    except OSError as e:
        where = e.filename or args.out or root / "LEADERBOARD.md"
        raise UserError(f"cannot write the leaderboard to {str(where)!r}: {e.strerror or e}; "
                        "write it elsewhere with --out FILE") from None
    print(path)
    return 0


def report(args: argparse.Namespace) -> int:
    from benchmark.report import write_report

    root = results_root(args.results)
    out = Path(args.out) if args.out else root / "report"
    if out.exists() and not out.is_dir():
        raise UserError(f"-o {str(out)!r} is a file; give a directory for the report")
    keys, matrices = matrix_keys(args)
    report = write_report(root, out, figures=not args.no_figures, poisons=not args.no_poisons,
                          log=lambda m: print(m, file=sys.stderr), keys=keys, matrices=matrices)
    print(report.text())
    return 0


def claims(args: argparse.Namespace) -> int:
    """Check the papers' claims on a results directory; write CLAIMS.md. A failing claim is
    reported, not an error: the exit code is 0 unless the claims file or the results are unreadable,
    RESULTS is a folder of results directories (no claim measured there, its subdirectories hold
    results: they are named), or a claim's condition cannot be evaluated on the measured values (a
    division by zero: the claims file's arithmetic, which its author fixes)."""
    from benchmark.claims import claim_lines, render_text, write_claims

    out_file(args.out, "--out", Path(args.results) / "CLAIMS.md")
    path, report = write_claims(args.results, args.claims, args.out)
    print("\n".join(claim_lines(report)) if args.lines else render_text(report))
    print(f"claims: {path}", file=sys.stderr)
    return 0


def audit(args: argparse.Namespace) -> int:
    """Recompute sampled cells from scratch; exit 1 when a value differs beyond the tolerance."""
    from benchmark.audit import audit, commit_seed, render, to_json

    if args.cells < 0 or not args.budget > 0 or not math.isfinite(args.budget):
        raise UserError("--cells must be >= 0 and --budget a finite number > 0 (minutes)")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be >= 1 (got {args.threads}); leave it out for each record's own")
    out_file(args.json, "--json")  # checked now: an audit can take hours before it writes
    if args.keep is not None and Path(args.keep).exists() and not Path(args.keep).is_dir():
        raise UserError(f"--keep {args.keep!r} is a file; give a directory to recompute into")
    if args.keep is not None and any((Path(args.keep) / "cells").glob("*.json")):  # the audited directory itself, a copy of it...
        raise UserError(f"--keep {args.keep!r} already holds records: the audit would find its cells done and compare "
                        "records with themselves; give a new or empty directory")
    if args.data is not None and not Path(args.data).is_dir():
        raise UserError(f"--data {args.data!r} is not a directory")
    results_root(args.results)
    from benchmark.config import check_device
    from benchmark.device import pick_device

    try:
        check_device(args.device)
    except ValueError as e:
        raise UserError(f"--device: {e}") from None
    pick_device(args.device)  # one a record asks for must exist here: an audit that skips every cell is no audit
    seed = commit_seed(args.results) if args.seed_from_commit else args.seed
    print(f"audit: {args.results}, up to {args.cells} cells within {args.budget:g} min of recorded cost, seed {seed} "
          f"(reproduce: bench audit {args.results} --cells {args.cells} --budget {args.budget:g} --seed {seed})", file=sys.stderr)
    res = audit(args.results, cells=args.cells, budget_min=args.budget, seed=seed, threads=args.threads, device=args.device,
                keep=args.keep, data=args.data, strict=args.strict, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(render(res))
    if args.json:
        from benchmark.store import atomic_write_bytes

        atomic_write_bytes(Path(args.json), (to_json(res) + "\n").encode())  # creates a missing parent folder
    return 0 if res.ok else 1
