"""The ``bench`` command (also ``python -m benchmark``)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import NoReturn

from benchmark import cli_results
from benchmark.cli_matrix import load_resolved
from benchmark.errors import UserError, clip
from benchmark.profiles import PROFILES

#: The longest error line printed: a message quoting user input is shortened where it quotes it,
#: and cut here whatever it holds.
MAX_ERROR_CHARS = 1000


def _matrix_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--matrix", metavar="FILE", help="only the cells of this matrix file (every document): not the records "
                   "of settings it no longer has")
    p.add_argument("--profile", choices=PROFILES, help="with --matrix: its cells at this profile (as `bench run --profile` ran it)")


def _run(args: argparse.Namespace) -> int:
    """Run every matrix of the file in order into one results directory."""
    from benchmark.cli_matrix import run_warnings
    from benchmark.executors import execute
    from benchmark.report import write_leaderboard
    from benchmark.runner import Runner
    from benchmark.summary import Summary

    resolved = load_resolved(args.matrix, args)
    many = len(resolved) > 1
    if args.dry_run:
        from benchmark.dry_run import Earlier, describe
        from benchmark.store import refuse_file

        refuse_file(Path(args.results))  # as prepare_results refuses it, writing nothing
        earlier = Earlier()  # what the documents before generate: listed as theirs, priced there
        listings = []  # every document's, before anything is printed: a mistake found there is the one line
        for r in resolved:
            r.executor.check(r)  # what the run would refuse before running anything
        for i, r in enumerate(resolved):
            runner = Runner(r, args.results, progress=False, retry_failed=args.retry_failed)
            head = f"document {i + 1} of {len(resolved)}: " if many else ""
            local = r.executor.name in ("inline", "local")  # a scheduler's jobs run elsewhere
            listings.append(head + describe(runner, every_cell=args.verbose, slots=r.executor.slots(r), here=local, earlier=earlier))
        for warning in run_warnings(resolved, dry_run=True):  # more threads than cores; a download to come
            print(f"warning: {warning}", file=sys.stderr)
        print("\n".join(listings))
        return 0
    from benchmark.store import prepare_results

    prepare_results(args.results)
    for warning in run_warnings(resolved, dry_run=False):
        print(f"warning: {warning}", file=sys.stderr)
    total = Summary()
    submitted = False
    for i, r in enumerate(resolved):
        if many:
            print(f"document {i + 1} of {len(resolved)}: matrix {r.matrix.name!r}", file=sys.stderr)
        try:
            summary = execute(r, args.results, progress=None if not args.quiet else False, verbose=args.verbose,
                              retry_failed=args.retry_failed, wait=args.wait)
        except KeyboardInterrupt as e:
            how, code = stopped_by(e)
            print(f"\n{how}: every finished cell is saved in {args.results}/; rerun the same command to resume", file=sys.stderr)
            return code
        if many:
            print(summary.text(), file=sys.stderr)
        total.add(summary)
        submitted = submitted or bool(summary.submitted or summary.queued)
    print(("all documents: " if many else "") + total.text(), file=sys.stderr)
    if submitted:  # handed to a scheduler: nothing new to tabulate yet
        profile = f" --profile {args.profile}" if args.profile else ""
        print(f"follow it with `bench status {args.results} {args.matrix}{profile}`; the leaderboard is written by "
              f"`bench leaderboard {args.results}` (or by `bench run ... --wait`)", file=sys.stderr)
        return total.exit_code
    board = write_leaderboard(args.results)
    print(f"leaderboard: {board}", file=sys.stderr)
    return total.exit_code


def _docs(args: argparse.Namespace) -> int:
    """Rewrite the generated blocks of README.md and docs/*.md from the committed records."""
    from benchmark.docs import update_docs

    if not (Path(args.root) / "README.md").is_file():
        raise UserError(f"--root {str(args.root)!r} is not a uebench checkout (no README.md there)")
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

    if args.name:  # one plugin: its kind, class, summary, version, params and profiles
        from benchmark.describe_plugin import describe, find, render_text

        info = describe(find(get_registry(), args.name))
        print(json.dumps(info.as_json(), indent=2) if args.json else render_text(info))
        return 0
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


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``error: argument --workers: ...``) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {clip(message, MAX_ERROR_CHARS)} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


def _workers_arg(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= 1024:
        raise argparse.ArgumentTypeError(f"a number of worker processes from 1 to 1024 (got {text[:40]!r})")
    return n


def _device_arg(text: str) -> str:
    from benchmark.config import check_device

    try:
        return check_device(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="bench", description="uebench: availability-poisoning benchmark")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    r = sub.add_parser("run", help="run a matrix (skips finished cells) and write the leaderboard")
    r.add_argument("matrix", help="matrix YAML file (several `---`-separated documents run in order)")
    r.add_argument("--results", default="results", help="results directory (default: results)")
    r.add_argument("--dry-run", action="store_true",
                   help="list attack jobs and cells and estimate wall time and device-hours per device kind; run nothing")
    r.add_argument("--device", type=_device_arg, help="override the matrix's device (auto, cpu, cuda, cuda:N, mps)")
    r.add_argument("--profile", choices=PROFILES, help="override the matrix's profile")
    r.add_argument("--workers", type=_workers_arg, help="run with the local executor and this many worker processes")
    r.add_argument("--executor", help="override the matrix's executor (inline, local, slurm: see `bench plugins`)")
    r.add_argument("-E", "--executor-param", action="append", metavar="KEY=VALUE",
                   help="an executor param (repeatable; YAML values; dotted keys nest): -E partition=gpu -E gpus=1 -E sbatch.account=lab")
    r.add_argument("--retry-failed", action="store_true", help="recompute cells that failed in an earlier run (by default they are kept and reported)")
    r.add_argument("--wait", action="store_true", help="with an executor that submits jobs (slurm): wait until they end, then summarize")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("-v", "--verbose", action="store_true", help="also print the plugins' progress (epochs, outer iterations)")
    r.set_defaults(fn=_run)
    lb = sub.add_parser("leaderboard", help="write LEADERBOARD.md from a results directory")
    lb.add_argument("results", nargs="?", default="results")
    lb.add_argument("--out", help="output file (default: RESULTS/LEADERBOARD.md)")
    _matrix_args(lb)
    lb.set_defaults(fn=cli_results.leaderboard)
    rp = sub.add_parser("report", help="write a static HTML report (tables, figures, cell pages) and CSV/JSON/markdown exports")
    rp.add_argument("results", nargs="?", default="results", help="results directory (default: results)")
    rp.add_argument("-o", "--out", help="output directory (default: RESULTS/report)")
    rp.add_argument("--no-figures", action="store_true", help="tables and pages only (existing figures are left alone)")
    rp.add_argument("--no-poisons", action="store_true", help="no perturbation galleries or t-SNEs (they load the poisons and the data)")
    _matrix_args(rp)
    rp.set_defaults(fn=cli_results.report)
    cl = sub.add_parser("claims", help="check the papers' claims on a results directory; write CLAIMS.md")
    cl.add_argument("results", nargs="?", default="results")
    cl.add_argument("--claims", help="claims file (default: the project's, benchmark/claims.yaml)")
    cl.add_argument("--out", help="output file (default: RESULTS/CLAIMS.md)")
    cl.add_argument("--lines", action="store_true", help="print `id | source | statement | condition | measured | result` lines")
    cl.set_defaults(fn=cli_results.claims)
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
    au.set_defaults(fn=cli_results.audit)
    dc = sub.add_parser("docs", help="rewrite the generated tables of README.md and docs/ from the committed results")
    dc.add_argument("--root", default=".", help="repository root (default: the current directory)")
    dc.add_argument("--check", action="store_true", help="change nothing; exit 1 when a generated block is stale")
    dc.set_defaults(fn=_docs)
    st = sub.add_parser("status", help="done / running / failed / pending cells of a results directory (per matrix)")
    st.add_argument("results", nargs="?", default="results", help="results directory (default: results)")
    st.add_argument("matrix", nargs="?", help="matrix file: its full plan (pending cells too, poisons); "
                    "`bench status MATRIX.yaml` reads the default results directory")
    st.add_argument("--profile", choices=PROFILES, help="compare with MATRIX at this profile (as `bench run MATRIX --profile` ran it)")
    st.add_argument("--all", action="store_true", help="list every running and pending cell (default: the first 20)")
    st.add_argument("--json", action="store_true", help="print JSON")
    st.set_defaults(fn=cli_results.status)
    pr = sub.add_parser("prune", help="move records, poisons and locks of settings MATRIX no longer has into RESULTS/pruned/")
    pr.add_argument("results", help="results directory")
    pr.add_argument("matrix", help="matrix file (every document): what to keep")
    pr.add_argument("--profile", choices=PROFILES, help="keep MATRIX's cells at this profile (as `bench run --profile` ran it)")
    pr.add_argument("--apply", action="store_true", help="move them (default: list what would move)")
    pr.set_defaults(fn=cli_results.prune)
    pl = sub.add_parser("plugins", help="list installed plugins; `bench plugins [KIND] NAME`: one plugin's params and profiles")
    pl.add_argument("name", nargs="*", metavar="[KIND] NAME", help="describe this plugin (KIND when several kinds have "
                    "the name): its summary, version, and every param with its type, default and profile values")
    pl.add_argument("--json", action="store_true", help="print JSON")
    pl.set_defaults(fn=_plugins)
    np_ = sub.add_parser("new-plugin", help="write a ready plugin package (pyproject, module, passing tests, README)")
    np_.add_argument("kind", choices=["attack", "victim", "defense", "metric"], help="the kind of plugin")
    np_.add_argument("name", help="the plugin's name (lowercase, digits, hyphens), e.g. my-attack")
    np_.add_argument("dir", nargs="?", default=None, help="where to write the package (default: ./uebench-NAME)")
    np_.set_defaults(fn=_new_plugin)
    return p


def _new_plugin(args: argparse.Namespace) -> int:
    from benchmark.scaffold import new_plugin, next_steps

    root = new_plugin(args.kind, args.name, args.dir)
    print(next_steps(args.kind, args.name, root))
    return 0


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's time limit, ``kill``): stopped like Ctrl-C, exit code 143."""

    how = "terminated (SIGTERM)"
    exit_code = 143  # 128 + SIGTERM (15)


def stopped_by(e: KeyboardInterrupt) -> tuple[str, int]:
    """What ``bench`` says when ``e`` stopped it, and its exit code: 128 + the signal, as a shell
    reports a process the signal killed. Ctrl-C is "interrupted", 130; a ``KeyboardInterrupt`` that
    names its own (:class:`Terminated`: 143, the slurm executor's ``HungUp``: SIGHUP, 129) says so."""
    how, code = getattr(e, "how", None), getattr(e, "exit_code", None)
    return (how, code) if isinstance(how, str) and isinstance(code, int) else ("interrupted", 130)


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated


def _one_line(message: str) -> str:
    """``message`` cut to at most :data:`MAX_ERROR_CHARS` characters."""
    return clip(message.strip(), MAX_ERROR_CHARS)


#: The arguments that name a file or directory (an empty one is refused).
PATH_ARGS = ("matrix", "results", "out", "claims", "json", "keep", "data", "root")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    empty = [k for k in PATH_ARGS if getattr(args, k, None) == ""]
    if empty:  # "" is the current directory to pathlib: never what was meant
        given = argv if argv is not None else sys.argv[1:]
        flags = [a.split("=")[0] for i, a in enumerate(given)
                 if a.startswith("-") and (a.endswith("=") or (i + 1 < len(given) and given[i + 1] == "" and "=" not in a))]
        name = flags[0] if flags else empty[0].upper()  # an option as typed (-o, --out), else the positional
        print(f"error: {name} is an empty string; give a path", file=sys.stderr)
        return 2
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (bench embedded in another program): leave SIGTERM alone
        previous = None
    try:
        return int(args.fn(args))
    except UserError as e:
        print(f"error: {_one_line(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        how, code = stopped_by(e)
        tail = ": every finished cell is saved; rerun the same command to resume" if isinstance(e, Terminated) else ""
        print(f"\n{how}{tail}", file=sys.stderr)
        return code
    except BrokenPipeError:  # `bench ... | head`: the reader left; stop quietly, as a Unix tool does on SIGPIPE
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail again
        return 141
    except OSError as e:
        if e.filename is None:  # not about a file the user named: a bug, keep its traceback
            raise
        print(f"error: {_one_line(f'cannot use {str(e.filename)!r}: {e.strerror or e}')}", file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
