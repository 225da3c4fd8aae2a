"""The numeric environments a report's cells were computed in, and the generations of the poisons
they saw: what, besides code, data and seeds, can make two cells of one spec give other numbers.

:func:`environments` names each cell's environment by the ``numerics`` fields that differ across a
results directory (``threads=2``); :func:`poison_generations` finds the poison specs whose cells saw
more than one poison (generated again on another machine, with another outcome). The leaderboard
and the report announce both (:class:`~benchmark.report.records.Results`).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, cast

from benchmark.records import poison_outcomes
from benchmark.report.records import canonical, short_hash, short_value

if TYPE_CHECKING:
    from benchmark.report.records import Cell


def numerics(rec: dict[str, Any]) -> tuple[dict[str, Any], bool] | None:
    """What besides code, data and seeds can change a record's numbers: its ``numerics`` dict and
    its poison's (``poison_meta.numerics``, as ``poison.<field>``, where the record has one: the
    ``clean`` attack has no poison); ``True``: the record's own fields are complete. Else what its
    provenance says (device kind and name, threads, torch and CUDA versions, under the ``numerics``
    field names; ``False``: partial). ``None``: nothing."""
    p = cast("dict[str, Any]", rec.get("provenance") if isinstance(rec.get("provenance"), dict) else {})
    n = rec.get("numerics", p.get("numerics"))
    meta = rec.get("poison_meta")
    pn = meta.get("numerics") if isinstance(meta, dict) else None
    poison = {f"{POISON}{k}": v for k, v in pn.items()} if isinstance(pn, dict) else {}  # the shared poison may have been made elsewhere
    if isinstance(n, dict) and n:
        return {**{str(k): v for k, v in n.items()}, **poison}, True
    if not p:
        return None
    return {"device_kind": str(p.get("device", "?")).split(":")[0], "device_name": p.get("device_name"),
            "threads": p.get("threads"), "torch": p.get("torch"), "cuda": p.get("cuda"), **poison}, False


#: the prefix of a poison's numerics fields in :func:`numerics`
POISON = "poison."


def environments(cells: list[tuple[Cell, dict[str, Any], bool]]) -> tuple[dict[str, str], list[str]]:
    """Names each cell's numeric environment by the fields that differ across ``cells`` (the ok
    ones): ``{cell key: "threads=2, cpu_capability=AVX2"}`` (one environment: every name is ""),
    and the fields compared. Where some records predate the full ``numerics`` dict, only the own
    fields every record has are compared. A poison's fields (``poison.*``) are compared among the
    records that have them: a record without (the ``clean`` attack's, an older one) leaves them out
    of its name and never switches the comparison off."""
    if not cells:
        return {}, []
    own = [{k: v for k, v in n.items() if not k.startswith(POISON)} for _, n, _ in cells]
    fields = set().union(*(set(n) for _, n, _ in cells))
    if not all(full for _, _, full in cells):
        fields = set.intersection(*(set(o) for o in own)) | {f for f in fields if f.startswith(POISON)}
    order = [f for f in dict.fromkeys(k for _, n, _ in cells for k in n) if f in fields]
    differ = [f for f in order if len({canonical(n.get(f)) for _, n, _ in cells if f in n or not f.startswith(POISON)}) > 1]
    poison_differ = [f for f in differ if f.startswith(POISON)]
    names = {}
    for c, n, _ in cells:
        parts = [f"{f}={short_value(n.get(f))}" for f in differ if f in n or not f.startswith(POISON)]
        if poison_differ and not any(f in n for f in poison_differ):
            parts.append("no poison numerics")  # the clean attack (no poison), or an older record
        names[c.key + "|" + c.section] = ", ".join(parts)
    return names, order


def _discrete(meta: dict[str, Any]) -> dict[str, Any]:
    """A poison's outcomes that name it: its digest where recorded, else the discrete ones (iterations
    run, stopped or not) and any trajectory it logged; not its timing, cache flags, numerics or ``reads``
    (the cached inputs it reused, with their creation times: bookkeeping, absent from older records)."""
    return {k: v for k, v in meta.items() if k not in ("wall_s", "numerics", "reads") and "cached" not in k}


def poison_generations(cells: list[Cell]) -> dict[str, Counter[str]]:
    """Poison specs (a cell's ``spec.poison`` key) whose cells saw different poisons: generated more
    than once (another machine, a cleared cache) with different results. A trained poison's float
    reductions differ between CPUs, and a stopping test can flip (PUE stopped after 4 outer iterations
    on one CPU and 5 on another: another poison, 9 points apart). Two generations are told apart by
    the images' digest (``poison_meta.x_sha256``) when every cell has one, else by ``poison_meta``
    without its timing, cache flags, numerics and ``reads`` (so a poison that records nothing but its timing is
    never flagged without digests). Each generation is named by the fields that differ
    (``outer_iterations=4, device_name=Intel(R) Xeon(R) Processor``; ``cpu_capability=AVX512`` tells
    apart two CPUs of one name whose torch dispatches to other kernels); ``{}`` when every poison spec
    was one poison."""
    by_spec: dict[tuple[str, str], list[Cell]] = {}
    for c in cells:
        poison = (c.record.get("spec") or {}).get("poison") if isinstance(c.record.get("spec"), dict) else None
        if c.status == "ok" and isinstance(poison, str) and isinstance(c.record.get("poison_meta"), dict):
            by_spec.setdefault((c.section, poison), []).append(c)
    out: dict[str, Counter[str]] = {}
    for (section, _), group in by_spec.items():
        metas = [cast("dict[str, Any]", c.record["poison_meta"]) for c in group]
        digests = [m.get("x_sha256") for m in metas]
        ids: list[str] = [str(d) for d in digests] if all(isinstance(d, str) for d in digests) else [canonical(_discrete({k: v for k, v in m.items() if k != "x_sha256"})) for m in metas]
        if len(set(ids)) < 2:
            continue
        first: dict[str, dict[str, Any]] = {}  # generation -> what its first cell's poison_meta shows
        for i, m in zip(ids, metas):
            shown = {k: v for k, v in poison_outcomes(m).items() if k != "x_sha256"}  # the digest names nothing a reader can read
            num = m.get("numerics") or {}
            first.setdefault(i, {**shown, "device_name": num.get("device_name") or "not recorded",
                                 "cpu_capability": num.get("cpu_capability") or "not recorded"})  # one name, two ISAs: two CPUs
        differ = [k for k in dict.fromkeys(k for d in first.values() for k in d) if len({canonical(d.get(k)) for d in first.values()}) > 1]
        names = {i: ", ".join(f"{k}={short_value(d.get(k))}" for k in differ) for i, d in first.items()}
        uses = Counter(names.values())
        shared = {n for n, k in uses.items() if not n or k > 1}
        names = {i: (n + ", " if n else "") + f"generation {i[:8] if len(i) == 64 else short_hash(i, 8)}" if n in shared else n
                 for i, n in names.items()}  # generations the fields do not tell apart are named by their digests too
        counts: Counter[str] = Counter(names[i] for i in ids)
        out[f"{section}: {group[0].attack}"] = counts
    return out


def unconverged_poisons(cells: list[Cell]) -> dict[str, str]:
    """The attacks whose poison did not reach its stopping condition (``poison_meta.stopped`` false:
    EM or PUE ended at ``max_outer`` with the surrogate's accuracy on the poisoned data below
    ``stop_accuracy``), per section: ``{"section: attack": "2 cells; 3 outer iterations, last
    accuracy 0.55"}``; ``{}`` when every poison that says so stopped."""
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for c in cells:
        meta = c.record.get("poison_meta")
        if c.status == "ok" and isinstance(meta, dict) and meta.get("stopped") is False:
            by.setdefault((c.section, c.attack), []).append(meta)
    out: dict[str, str] = {}
    for (section, attack), metas in by.items():
        runs = sorted({m["outer_iterations"] for m in metas if isinstance(m.get("outer_iterations"), int)})
        last = sorted({h[-1] for m in metas if isinstance(h := m.get("train_accuracy"), list) and h and isinstance(h[-1], (int, float))})
        detail = [f"{len(metas)} cell{'s' if len(metas) != 1 else ''}"]
        if runs:
            detail.append(f"{', '.join(map(str, runs))} outer iteration{'s' if runs != [1] else ''}")
        if last:
            detail.append(f"last accuracy on the poisoned data {', '.join(f'{a:.4g}' for a in last)}")
        out[f"{section}: {attack}"] = "; ".join(detail)
    return out
