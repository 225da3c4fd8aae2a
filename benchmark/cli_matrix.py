"""The matrix files the ``bench`` commands read: their documents resolved, with the command line's
overrides (``--device``, ``--profile``, ``--executor``, ``-E``, ``--workers``) applied."""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from benchmark.errors import ConfigError, UserError


def executor_override(matrix_executor: Any, name: str | None, pairs: list[str], workers: int | None) -> Any:
    """The matrix's executor block with the command line's ``--executor``, ``--executor-param``
    (``-E key=value``; values are YAML: ``-E gpus=1 -E sbatch.account=lab``) and ``--workers``
    applied. Another executor's name starts from empty params."""

    from benchmark.config import ExecutorSpec
    from benchmark.yaml_file import load_yaml_documents

    spec = matrix_executor
    if workers is not None:  # checked by _workers_arg (>= 1)
        name = name or "local"
        if name != "local":
            raise UserError(f"--workers runs the local executor; it cannot go with --executor {name}")
        pairs = [f"workers={workers}", *pairs]
    if name is not None and name != spec.name:
        spec = ExecutorSpec(name=name)
    params = json.loads(json.dumps(spec.params))  # a deep copy
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"--executor-param takes KEY=VALUE (got {pair[:80]!r})")
        try:  # the matrix files' safe loader: bounded nesting and aliases, no 5,000-digit integers
            docs = load_yaml_documents(text) if text.strip() else [""]
            value = docs[0] if len(docs) == 1 else text
        except ConfigError as e:
            if not str(e).startswith("not valid YAML"):
                raise UserError(f"--executor-param {key}: {e}") from None
            value = text  # not YAML: the text itself
        where = params
        parts = key.split(".")
        for part in parts[:-1]:
            nxt = where.get(part)
            if not isinstance(nxt, dict):
                nxt = where[part] = {}
            where = nxt
        where[parts[-1]] = value
    if params != spec.params or spec is not matrix_executor:
        spec = ExecutorSpec(name=spec.name, params=params)
    return spec


def from_command_line(e: ConfigError, pairs: list[str], executor: str) -> UserError | None:
    """``e``, an error in ``executor.params.KEY``, said to come from ``-E KEY=...`` (not the matrix
    file) when the command line gave that key, with the executors that take it (an unknown key);
    ``None`` when the command line did not give it."""
    from benchmark.errors import clip
    from benchmark.registry import get_registry

    parts = (e.path or "").split(".")
    msg = str(e).removeprefix(f"{e.file}: " if e.file else "").removeprefix(f"{e.path}: ")
    if parts[:2] != ["executor", "params"]:
        return None
    named = re.match(r"(sbatch\.[\w-]+)=", msg) if len(parts) == 2 else None  # a check of the whole params: its key leads
    if len(parts) < 3 and named is None:
        return None
    loc = parts[2:] if named is None else named.group(1).split(".")
    for pair in reversed(pairs):  # the last one given wins
        keys = pair.partition("=")[0].strip().split(".")
        n = min(len(keys), len(loc))
        if keys[:n] == loc[:n]:  # that key, or a key within it (sbatch.account)
            break
    else:
        return None
    key = loc[0]
    if msg.startswith("unknown key "):
        registry = get_registry()
        if msg.endswith(" (allowed: none)"):
            msg = msg.removesuffix(" (allowed: none)") + f": the {executor} executor takes no params"
        others = []
        for other in registry.names("executor"):
            try:
                fields = getattr(registry.entry("executor", other).obj, "Params", None)
            except UserError:
                continue
            if other != executor and key in getattr(fields, "model_fields", {}):
                others.append(other)
        if others:
            msg += (f"; `{key}` is the {' or the '.join(others)} executor's: add "
                    + " or ".join(f"--executor {o}" for o in others))
    return UserError(f"-E {clip(pair, 60)} (--executor-param): {e.path}: {msg}")


def load_resolved(path: str, args: argparse.Namespace | None = None) -> list[Any]:
    """The matrix file's matrices (one, or several ``---``-separated YAML documents), resolved, with
    the command line's overrides (``args``); every document's data and keys are checked before
    anything runs, and errors name the document."""
    from benchmark.config import document_name, load_matrices, resolve
    from benchmark.plan import make_plan
    from benchmark.registry import get_registry

    matrices = load_matrices(path)
    many = len(matrices) > 1
    out = []
    for i, matrix in enumerate(matrices):
        if args is not None:
            if args.device:  # checked by _device_arg
                matrix = matrix.model_copy(update={"device": args.device})
            if args.profile:
                matrix = matrix.model_copy(update={"profile": args.profile})
            ex = executor_override(matrix.executor, args.executor, args.executor_param or [], args.workers)
            if ex is not matrix.executor:
                matrix = matrix.model_copy(update={"executor": ex})
        name = document_name(path, i) if many else str(path)
        try:
            r = resolve(matrix, get_registry(), file=name)
        except ConfigError as e:
            given = (args.executor_param or []) if args is not None else []
            raise (from_command_line(e, given, matrix.executor.name) or e) from None
        if args is not None:
            try:
                make_plan(r)
            except UserError as e:
                raise UserError(f"{name}: {e}" if many else str(e)) from None
        out.append(r)
    return out


def profile_only(profile: str | None) -> argparse.Namespace | None:
    """The overrides of a command that takes a matrix file only to read its plan: the profile, if given."""
    if not profile:
        return None
    return argparse.Namespace(device=None, profile=profile, executor=None, executor_param=[], workers=None)


def run_warnings(resolved: list[Any], *, dry_run: bool) -> list[str]:
    """What ``bench run`` warns of before it starts, each once: more torch threads (the matrix's
    ``threads`` times the workers that run on this machine) than CPU cores here, and (``dry_run``)
    a dataset it would download first (:meth:`~benchmark.data.source.DatasetSource.download_note`)."""
    from benchmark.executor import usable_cpus

    out: dict[str, None] = {}
    cores = usable_cpus()
    for r in resolved:
        if r.executor is not None and r.executor.name in ("inline", "local"):  # a scheduler's jobs run elsewhere
            threads, workers = r.matrix.threads, max(1, r.executor.slots(r))
            if threads * workers > cores:
                hint = (f"set threads to at most {cores // workers}" if workers <= cores
                        else f"give at most {cores} workers of 1 thread")
                out[(f"threads: {threads} x {workers} worker{'s' if workers > 1 else ''} = {threads * workers} torch threads "
                     f"on {cores} CPU core{'s' if cores > 1 else ''} here: they would slow each other down; {hint}")] = None
        if dry_run and (text := download_note(r)):
            out[text] = None
    return list(out)


def download_note(r: Any) -> str | None:
    """The dataset's :meth:`~benchmark.data.source.DatasetSource.download_note` for the resolved
    matrix ``r``: one line when its data is not found here (``bench run`` would download it first),
    else ``None``."""
    note = getattr(r.dataset, "download_note", None)
    try:
        text = note() if callable(note) else None
    except Exception:  # noqa: BLE001 - a third-party dataset's note is advice: its failure is the run's to report
        return None
    return str(text) if text else None


def data_not_here(resolved: list[Any]) -> list[tuple[str, str]]:
    """``(what, note)`` for each document whose data is not found here (:func:`download_note`).
    Its cells' keys then name the data ``bench run`` would download, not the data its records were
    made with: the commands that match records to a plan say so (``status``, ``--matrix``) or
    refuse (``prune``). ``what`` names the file (and the document, in a file of several) and its
    dataset: ``"m.yaml: dataset 'cifar10-5k'"``."""
    out = []
    for r in resolved:
        if text := download_note(r):
            ds = r.matrix.dataset
            out.append((f"{r.file or r.matrix.name}: dataset {ds.label or ds.name!r}", text))
    return out


def warn_data_not_here(resolved: list[Any]) -> None:
    """Warn on stderr, one line per document, when :func:`data_not_here` finds a document whose
    data is not here: its finished cells may show as not started."""
    import sys

    for what, note in data_not_here(resolved):
        print(f"warning: {what} is not found here, so its cells' keys may not match the records "
              f"(finished cells may show as not started): {note}", file=sys.stderr)
