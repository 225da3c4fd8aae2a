"""``bench prune RESULTS MATRIX``: set aside what a results directory keeps of settings its matrix
no longer has.

A matrix that evolves (a victim's epochs changed, an attack dropped, a defense relabelled with new
params) leaves records no table shows under ``--matrix``, poisons only those records used, and the
lock files of cells that were interrupted. Pruning moves them into ``RESULTS/pruned/<stamp>/`` (the
same layout), never deletes: delete that folder to free the space, or move files back to restore
them. What is pruned, for each matrix (every document of the file, at ``--profile`` when given):

* a **record** of a setting the matrix replaced: made by the matrix (its ``matrix`` name and
  ``profile``), named as one of the plan's cells (attack, victim and defense labels, seed), but not
  that cell (another spec under the same names: new params, another version). A record whose
  names are in no cell of the plan is left alone (counted): several files may share a matrix name
  and a results directory (the quick evidence's do), and a name this file lacks may be another's;
* a **poison** artifact only pruned records used (no record left and no attack job of the plan
  uses it). A poison no record uses at all (another matrix's, still running) is left alone;
* the **lock file** of a cell that is in no plan, has no record and that no live process holds,
  when its last holder was a runner of this matrix at its profile, for a cell under the labels of
  one of the plan's (as records are judged; ``bench status`` lists such cells as interrupted).

Records of other matrices, or of this matrix at another profile, are left alone (counted). A
record whose lock a live process holds is skipped. ``bench prune`` refuses a matrix whose data is
not found here (:func:`benchmark.cli_matrix.data_not_here`): its cells' keys would name other data
(cifar10's download), and every record of the matrix would look replaced.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.store import file_lock, probe_lock


@dataclass
class Pruning:
    """What :func:`survey` found to set aside under a results directory ``root``."""

    root: Path
    records: list[Path] = field(default_factory=list)
    poisons: list[Path] = field(default_factory=list)
    locks: list[Path] = field(default_factory=list)
    #: records of the file's matrices at a profile other than the one compared, by profile
    other_profiles: dict[str, int] = field(default_factory=dict)
    #: records skipped because a live process holds their lock
    busy: list[Path] = field(default_factory=list)
    #: records of the file's matrices whose names no cell of the plan has (another file's, or dropped)
    unnamed: int = 0
    #: the size of the records and poisons found
    bytes: int = 0
    #: the poison each record to move used
    poison_of: dict[Path, str] = field(default_factory=dict)
    #: how listings name each record to move ("attack × victim × defense (seed s)"), read when
    #: surveyed: :func:`apply` moves the file
    names: dict[Path, str] = field(default_factory=dict)
    #: records that would be moved only because the data found here has other contents (another
    #: copy of the dataset): (record, its content, the content here); ``bench prune`` refuses them
    other_data: list[tuple[Path, str, str]] = field(default_factory=list)

    def empty(self) -> bool:
        """Nothing to set aside."""
        return not (self.records or self.poisons or self.locks)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return None
    return rec if isinstance(rec, dict) else None


def _of_plans(holder: dict[str, Any], profiles: dict[str, set[str]], labels: set[str]) -> bool:
    """Whether a lock's holder was a runner of these plans' settings: their matrix name, at one of
    their profiles, for a cell under the labels of one of theirs (as records are judged). A holder
    that predates a field (``profile``: before 2026-12-07) is judged without it."""
    name = holder.get("matrix")
    if name not in profiles:
        return False
    profile, what = holder.get("profile"), holder.get("what")
    return (profile is None or profile in profiles[name]) and (what is None or what in labels)


def _other_copy(recorded: Any, here: dict[str, Any] | None) -> tuple[str, str] | None:
    """(content recorded, content here) when a record's dataset spec differs from the plan's only in
    the ``content`` digest of the data found (another copy of the same dataset), else ``None``."""
    if not isinstance(recorded, dict) or here is None or recorded.get("content") == here.get("content"):
        return None
    same = {k: v for k, v in recorded.items() if k != "content"} == {k: v for k, v in here.items() if k != "content"}
    return (str(recorded.get("content")), str(here.get("content"))) if same else None


def survey(root: Path, plans: list[Any]) -> Pruning:
    """What to prune in ``root`` for ``plans`` (:class:`~benchmark.plan.Plan`, one per document)."""
    out = Pruning(root)
    profiles: dict[str, set[str]] = {}
    for plan in plans:
        profiles.setdefault(plan.resolved.matrix.name, set()).add(plan.resolved.matrix.profile)
    cells = {c.key for plan in plans for c in plan.cells}
    names = {(c.job.attack.display, c.victim.display, c.defense.display, c.seed) for plan in plans for c in plan.cells}
    jobs = {j.key for plan in plans for j in plan.jobs}
    labels = {f"cell {c.label}" for plan in plans for c in plan.cells}
    data = {(plan.resolved.matrix.name, plan.resolved.matrix.profile): plan.dataset_spec for plan in plans}
    used: set[str] = set()  # poisons of the records kept
    pruned_poisons: set[str] = set()
    for path in sorted((root / "cells").glob("*.json")):
        rec = _read(path)
        if rec is None:  # not a record this command judges: `bench run` moves invalid ones aside
            continue
        poison = rec.get("spec", {}).get("poison") if isinstance(rec.get("spec"), dict) else None
        name, profile = str(rec.get("matrix")), rec.get("profile")
        ours = name in profiles and profile in profiles[name]
        if name in profiles and not ours:
            out.other_profiles[str(profile)] = out.other_profiles.get(str(profile), 0) + 1
        replaced = (rec.get("attack"), rec.get("victim"), rec.get("defense"), rec.get("seed")) in names
        if ours and path.stem not in cells and not replaced:
            out.unnamed += 1
        if not ours or path.stem in cells or not replaced:
            if isinstance(poison, str):
                used.add(poison)
            continue
        if probe_lock(root / "locks" / f"cell-{path.stem}.lock")[0]:
            out.busy.append(path)
            if isinstance(poison, str):
                used.add(poison)
            continue
        if (copy := _other_copy(rec.get("dataset_spec"), data.get((name, profile)))) is not None:
            out.other_data.append((path, *copy))
            continue
        out.records.append(path)
        out.names[path] = f"{rec.get('attack')} × {rec.get('victim')} × {rec.get('defense')} (seed {rec.get('seed')})"
        if isinstance(poison, str):
            pruned_poisons.add(poison)
            out.poison_of[path] = poison
    for key in sorted(pruned_poisons - used - jobs):
        d = root / "artifacts" / key
        if d.is_dir() and not probe_lock(root / "locks" / f"artifact-{key}.lock")[0]:
            out.poisons.append(d)
    for lock in sorted((root / "locks").glob("cell-*.lock")):
        key = lock.name[len("cell-"):-len(".lock")]
        if key in cells or (root / "cells" / f"{key}.json").exists():
            continue
        held, holder = probe_lock(lock)
        if not held and holder is not None and _of_plans(holder, profiles, labels):
            out.locks.append(lock)
    files = [*out.records, *(f for d in out.poisons for f in d.iterdir() if f.is_file())]
    out.bytes = sum(f.stat().st_size for f in files)
    return out


def apply(p: Pruning) -> Path:
    """Move what ``p`` found into ``root/pruned/<UTC stamp>/`` (its ``cells``, ``artifacts`` and
    ``locks``); returns that folder. Each record moves under its lock (and with it), so a runner
    that took it meanwhile keeps it."""
    dest = p.root / "pruned" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for sub in ("cells", "artifacts", "locks"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    moved = []
    for rec in p.records:
        lock = p.root / "locks" / f"cell-{rec.stem}.lock"
        with file_lock(lock, blocking=False) as mine:
            if mine:
                os.replace(rec, dest / "cells" / rec.name)
                os.replace(lock, dest / "locks" / lock.name)  # the record's lock goes with it
                moved.append(rec)
            else:  # a runner took it since the survey: it stays, and so does its poison
                p.busy.append(rec)
    kept = {p.poison_of.get(rec) for rec in p.records if rec not in moved}
    p.records, poisons, p.poisons = moved, p.poisons, []
    for d in poisons:
        if d.name in kept:
            continue
        with file_lock(p.root / "locks" / f"artifact-{d.name}.lock", blocking=False) as mine:
            if mine:
                os.replace(d, dest / "artifacts" / d.name)
                p.poisons.append(d)
    for lock in p.locks:
        os.replace(lock, dest / "locks" / lock.name)
    return dest


def render(p: Pruning, applied: Path | None, limit: int = 10) -> str:
    """What was (``applied``: where to) or would be set aside, and what was left alone."""
    mb = p.bytes / 2**20
    verb = "moved" if applied else "would move"
    lines = [f"{verb} {len(p.records)} records, {len(p.poisons)} poisons ({mb:.1f} MiB) and {len(p.locks)} "
             f"lock files of settings the matrix replaced" + (f" to {applied}" if applied else "")]
    for path in p.records[:limit]:
        lines.append(f"  {p.names.get(path, '?')}  {path.stem}")
    if len(p.records) > limit:
        lines.append(f"  ... and {len(p.records) - limit} more")
    for profile, n in sorted(p.other_profiles.items()):
        lines.append(f"left alone: {n} records of this matrix at profile {profile} (`--profile {profile}` prunes against that plan)")
    if p.busy:
        lines.append(f"left alone: {len(p.busy)} records whose cell a live process holds")
    if p.unnamed:
        lines.append(f"left alone: {p.unnamed} records of this matrix name under labels no cell of this file has "
                     "(another file's with the same name, or a setting dropped: move those by hand)")
    if applied:
        lines.append(f"delete {applied} to free the space, or move its files back to restore them")
    elif not p.empty():
        lines.append("nothing moved: add --apply to move them")
    return "\n".join(lines)
