"""Run a plan: generate each poison once, then every cell; never lose a finished result.

Finished cells are skipped on a rerun; a failed cell is recorded with its error and the others go
on; an interrupted run resumes where it stopped. Two runners on one results directory coordinate
through per-job locks (a cell another runner holds is retried at the end).
"""

from __future__ import annotations

import copy
import sys
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmark.config import Resolved
from benchmark.cost import longest_poison_first
from benchmark.data.dataset import DataSplits, ImageDataset, data_checksum
from benchmark.data.split import load_splits
from benchmark.device import pick_device
from benchmark.errors import DatasetError, UserError
from benchmark.fitting import defense_context
from benchmark.interfaces import Budget, CellArtifacts, Poison, RunContext
from benchmark.output_checks import (
    CountingHooks,
    PluginError,
    default_budget_note,
    hooks_problem,
    logits_problem,
    loss_problem,
    metric_problem,
    plugin_call,
    poison_problem,
    transform_problem,
)
from benchmark.packages import package_of, package_warning, plugin_packages
from benchmark.plan import AttackJob, Cell, Plan, make_plan
from benchmark.plugin_failure import PLUGIN_FAILURES, error_line, error_text, left_alone
from benchmark.poison_artifact import poison_digest, poison_to_tensors, tensors_to_poison
from benchmark.provenance import numerics, provenance
from benchmark.reuse import review_reuse
from benchmark.runtime import tune_cpu_allocator
from benchmark.same_poison import Index, find_same_poison, index_poisons, same_poison_for
from benchmark.store import SCHEMA_VERSION, ArtifactCache, ResultStore, spec_key
from benchmark.summary import Summary, metrics_text, unconverged_note
from benchmark.trace import CurveRecorder

DONE = ("ok", "n/a")


class Runner:
    """Executes a :class:`Plan` inline against a results root."""

    def __init__(
        self,
        resolved: Resolved,
        results: str | Path,
        *,
        log: Callable[[str], None] | None = None,
        progress: bool | None = None,
        verbose: bool = False,
        worker: tuple[int, int] = (0, 1),
        reuse_victims: bool = True,
        retry_failed: bool = False,
        since: float | None = None,
        tag: dict[str, Any] | None = None,
    ) -> None:
        self.r = resolved
        self.worker = worker
        self.retry_failed = retry_failed
        # with retry_failed, failures recorded from this time on (by another runner of this run, or
        # by an earlier attempt of a requeued SLURM task) are kept, not computed a second time
        self.since = since if since is not None else time.time()
        # who computes (executor, worker, SLURM job): in every record and lock this runner writes
        self.tag: dict[str, Any] = dict(tag or {"name": "inline"})
        self.plan: Plan = make_plan(resolved)
        self.root = Path(results)
        self.log = log or (lambda m: print(m, file=sys.stderr, flush=True))
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.plugin_log = self.log if verbose else (lambda m: None)
        self.store = ResultStore(self.root, warn=self.log)
        self.cache = ArtifactCache(self.root, warn=self.log)
        self.device = pick_device(resolved.matrix.device)
        torch.set_num_threads(resolved.matrix.threads)  # every job, whatever the executor
        if self.device.type == "cpu":
            tune_cpu_allocator()
        self._splits: DataSplits | None = None
        self.dataset_sha256: str | None = None
        self._poisons: dict[str, Poison | BaseException] = {}  # a plugin's failure (sys.exit too) is kept: raised again
        #: trained victims of plain-training cells, by (poison, victim, seed): see :meth:`fit_victim`
        # trained victims kept for the next cell: (model, curves, RNG state, key of the cell that trained it)
        self._victims: OrderedDict[str, tuple[nn.Module, list[dict[str, Any]], dict[str, Any], str]] = OrderedDict()
        self.reuse_victims = reuse_victims
        self._hooks = CountingHooks()  # the train hooks the last fit_victim gave its victim, counting calls
        self._reused: str | None = None  # the key of the cell whose victim the last fit_victim call reused

    # -------------------------------------------------------------------------------- queries
    def state(self, cell: Cell) -> str:
        """``done``, ``failed`` or ``todo``: see :func:`benchmark.status.cell_state`."""
        from benchmark.status import cell_state

        return cell_state(self.store, cell, self.r.metrics)

    def is_done(self, cell: Cell) -> bool:
        return self.state(cell) == "done"

    def needs_work(self, cell: Cell) -> bool:
        """Whether this run computes ``cell``: it is not done, and it is not a failure kept from an
        earlier run (``retry_failed`` recomputes those, once per run)."""
        st = self.state(cell)
        if st == "failed" and self.retry_failed:
            return not self._failed_since(cell, self.since)
        return st == "todo"

    def pending(self) -> list[Cell]:
        """Cells this run computes, attack by attack. With ``n`` workers (the local executor) the
        attacks are ranked by their poison's estimated generation time, longest first, and worker
        ``i`` takes ranks ``i, i + n, ...`` first: the workers generate different poisons at the same
        time, and the longest starts at once instead of after the cheap attacks' cells
        (longest-processing-time-first: in the quickstart, worker 1 no longer idles while worker 0
        makes the EM poison; benchmarks/README.md, "Quickstart time", says what one run measured)."""
        i, n = self.worker
        ranked = longest_poison_first(self.r, self.plan.jobs) if n > 1 else list(range(len(self.plan.jobs)))
        order = [ranked[r] for r in sorted(range(len(ranked)), key=lambda r: ((r - i) % n, r))]
        return [c for j in order for c in self.plan.jobs[j].cells if self.needs_work(c)]

    def holder(self, what: str) -> dict[str, Any]:
        """What this runner writes into a lock it takes (see :func:`benchmark.store.probe_lock`)."""
        import os
        import socket

        return {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "matrix": self.r.matrix.name, "profile": self.r.matrix.profile, "what": what, "executor": self.tag}

    def poisons_to_generate(self, index: Index | None = None) -> set[str]:
        """Keys of the poisons this run generates: those a pending applicable cell needs that the cache
        holds neither under their key nor as the same poison under another (copied: :func:`~benchmark.same_poison.find_same_poison`,
        which compares training digests once the data are loaded). ``index``: the stored poisons, if read."""
        need = {c.job.key for c in self.plan.cells if self.needs_work(c) and c.defense.applies_to(c.victim)}
        missing = {k for k in need if not (self.cache.dir(k) / "meta.json").exists()}
        if not missing:
            return missing
        index = index_poisons(self.cache) if index is None else index
        digest = data_checksum(self._splits.train) if self._splits is not None else None
        jobs = {j.key: j for j in self.plan.jobs}
        return {k for k in missing if find_same_poison(index, jobs[k].spec, k, digest) is None}

    # ------------------------------------------------------------------------------ execution
    def splits(self) -> DataSplits:
        """The matrix's data, loaded once. A source that cannot load it (a wrong path, a subset larger
        than the data, a dataset plugin that crashes) stops the run with one line: it is the same
        for every cell."""
        if self._splits is None:
            try:
                self._splits, self.dataset_sha256 = load_splits(self.r)
            except (UserError, KeyboardInterrupt):
                raise
            except PLUGIN_FAILURES as e:  # a dataset plugin's own failure (sys.exit too), shown in one line
                from benchmark.registry import one_line

                raise DatasetError(f"dataset {self.r.matrix.dataset.display!r} ({self.r.dataset.name}) failed to load: {one_line(e)}") from None
        return self._splits

    def ctx(self, seed: int) -> RunContext:
        return RunContext(
            device=self.device,
            seed=seed,
            profile=self.r.matrix.profile,
            cache=self.cache,
            log=self.plugin_log,
            data_key=spec_key(self.plan.dataset_spec),
            precision=self.r.matrix.precision,
        )

    def poison(self, job: AttackJob) -> Poison:
        """The job's poison: from the cache, or generated now (under a lock) and budget-checked."""
        if job.key in self._poisons:
            p = self._poisons[job.key]
            if isinstance(p, BaseException):
                raise p
            return p
        train = self.splits().train
        with plugin_call(f"attack {job.attack.display!r} (budget)"):
            budget = job.attack.budget()  # from the validated params, before generate could change them
        if not isinstance(budget, Budget):
            raise PluginError(f"attack {job.attack.name!r}: budget() returned {type(budget).__name__} {str(budget)[:40]}, "
                              "not a benchmark.Budget (e.g. Budget('linf', 8 / 255))")
        package = package_of(job.attack)
        digest = None if (self.cache.dir(job.key) / "meta.json").exists() else data_checksum(train)  # a miss: digested once
        same = None if digest is None else same_poison_for(self.cache, job, train, digest, budget, self.log)

        def create() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
            if same is not None:
                self.log(f"poison {job.attack.name} ({job.key}): the same poison as artifact {same.key} (same training "
                         "images; the specs differ only in what the attack never sees): copied, not generated")
                return same.tensors, same.meta
            self.log(f"generating poison {job.attack.name} ({job.key}) on {len(train)} images")
            t0 = time.perf_counter()
            torch.manual_seed(self.r.matrix.attack_seed)
            n0 = len(self.cache.reads)
            clean = digest or data_checksum(train)  # none yet if the cached poison failed its check
            # the budget is measured from these images: they must be the clean ones (else the next cell loads them again)
            with left_alone(train, f"attack {job.attack.name!r}", "the training set", "generate", lambda: self._forget(everything=False),
                            " and return a new Poison", before=clean), plugin_call(f"attack {job.attack.display!r} (generate)"):
                p = job.attack.generate(train, self.ctx(self.r.matrix.attack_seed))
            reads = list({a["key"]: a for a in self.cache.reads[n0:]}.values())
            bad = poison_problem(train, p, budget)
            if bad:
                raise PluginError(f"attack {job.attack.name!r} {bad}{default_budget_note(job.attack) if bad.startswith('broke its budget') else ''}")
            tensors, meta = poison_to_tensors(p)
            meta["wall_s"] = round(time.perf_counter() - t0, 2)
            # what the generation found made by other jobs (CP-C's class-wise delta, TAP's reference):
            # regenerating this poison alone makes them again (bench audit prices it with these)
            meta["reads"] = reads
            meta["numerics"] = numerics(self.device, self.r.matrix.precision)  # the poison is shared: cells say how it was made
            meta["x_sha256"] = poison_digest(tensors["x"])  # which generation: one spec made twice (another CPU) may differ
            meta["train_sha256"] = clean  # the training set it was made from (benchmark.same_poison checks it)
            if package:
                meta["package"] = package  # a third party's release: in no key
            self.log(f"poison {job.attack.name} done in {meta['wall_s']:.1f} s{unconverged_note(meta, job.attack.params)}")
            return tensors, meta

        def check(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> str | None:
            """A cached poison (checksummed, but possibly edited or written by other code) must
            still be uint8 images of the training set's shape within the attack's budget."""
            x = tensors.get("x")
            if not isinstance(x, torch.Tensor):
                return "it holds no poisoned images 'x'"
            return budget.violation(train.x, x)

        try:
            tensors, meta, cached = self.cache.get_or_create(job.spec, create, check=check, cost_s=same.cost_s if same else None,
                                                            holder=self.holder(f"poison {job.attack.display}"))
            warning = package_warning(job.attack, meta.get("package")) if cached else None
            if warning:
                self.log(warning)
            p = tensors_to_poison(tensors, meta)
        except (KeyboardInterrupt, UserError):
            raise
        except PLUGIN_FAILURES as e:  # one failure per poison: the job's other cells fail with it, not generate again
            self._poisons[job.key] = e
            raise
        self._poisons[job.key] = p
        return p

    def fit_victim(self, cell: Cell, train: ImageDataset, ctx: RunContext, curves: CurveRecorder, reuse: bool = True) -> nn.Module:
        """The cell's trained victim. A victim trained without any defense in its training (see
        :meth:`~benchmark.interfaces.Defense.leaves_training_alone`) is kept in memory, with its curves and torch's RNG state after
        training, so the next cell of the same poison, victim and seed with another such defense
        (``none``, then ``i-bau``, ``sau``, ``finetune``...) starts from a copy instead of training
        it again: the same model, curves and RNG state as a fresh training, so the same numbers.
        Not when a metric observes the training (``reuse=False``): it must see every epoch."""
        self._reused = None
        with plugin_call(f"defense {cell.defense.display!r} (train_hooks)"):
            self._hooks = CountingHooks(cell.defense.train_hooks(ctx))
        if not (reuse and self.reuse_victims and cell.defense.leaves_training_alone()):
            return cell.victim.fit(train, ctx, self._hooks)
        key = spec_key({"kind": "victim", "poison": cell.job.key, "victim": cell.victim.spec(), "seed": cell.seed})
        if key in self._victims:
            self._victims.move_to_end(key)
            model, events, rng, trained_by = self._victims[key]
            curves.events.extend(copy.deepcopy(events))
            torch.set_rng_state(rng["cpu"])
            if "cuda" in rng:
                torch.cuda.set_rng_state_all(rng["cuda"])
            self.plugin_log(f"{cell.label}: reusing the victim trained for an earlier cell")
            self._reused = trained_by
            return copy.deepcopy(model)
        model = cell.victim.fit(train, ctx, cell.defense.train_hooks(ctx))
        rng = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        self._victims[key] = (copy.deepcopy(model), copy.deepcopy(curves.events), rng, cell.key)
        while len(self._victims) > max(2, len(self.r.matrix.seeds)):
            self._victims.popitem(last=False)
        return model

    def _forget(self, everything: bool = True) -> None:
        """Drop what a plugin wrote into in place: the data (and the poisons' images and the victims
        trained on them, unless not ``everything``); the next cell loads them again."""
        self._splits = None
        if everything:
            self._poisons.clear()
            self._victims.clear()

    @staticmethod
    def _require(problem: str | None, who: str) -> None:
        if problem:
            raise PluginError(f"{who} {problem}")

    def run_cell(self, cell: Cell) -> dict[str, Any]:
        """Compute one cell and return its record (status ``ok``, ``n/a`` or ``failed``)."""
        r = self.r
        rec: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "key": cell.key,
            "spec": cell.spec,
            "matrix": r.matrix.name,
            **self.labels(cell),  # the matrix's labels, else the plugin names
            "dataset_spec": self.plan.dataset_spec,  # what the data is (the key's part)
            "dataset_source": r.dataset.spec(),  # where it was read from here
            "attack_spec": cell.job.attack.spec(),
            "victim_spec": cell.victim.spec(),
            "defense_spec": cell.defense.spec(),
            "seed": cell.seed,
            "metric_plugins": [m.name for m in r.metrics],  # also on failed cells: the tables they belong to
            "attack_seed": r.matrix.attack_seed,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "executor": self.tag,
            "provenance": provenance(self.device),
            "plugin_packages": plugin_packages(cell, r.metrics),  # a third party's package version is in no key
            "numerics": numerics(self.device, self.r.matrix.precision),  # what besides code, data and seeds can change a number
        }
        t0 = time.perf_counter()
        if not cell.defense.applies_to(cell.victim):
            note = cell.defense.applies_note
            why = f" ({note})" if note else ""
            rec.update(
                status="n/a", error=f"defense {cell.defense.display!r} does not apply to victim {cell.victim.display!r}{why}", metrics={},
                not_applicable=note,
            )
            return rec
        try:
            splits = self.splits()
            poison = self.poison(cell.job)
            rec["poison_meta"] = poison.meta
            self.cache.reads.clear()  # from here on: what this cell reads that others made (a metric's reference...)
            rec["dataset_sha256"] = self.dataset_sha256
            ctx = self.ctx(cell.seed)
            curves = CurveRecorder()
            ctx.trace.subscribe(curves)
            observed = {}
            for m in r.metrics:
                with plugin_call(f"metric {m.name!r} (observer)"):
                    listener = m.observer(ctx)
                if listener is not None:
                    observed[m.name] = listener
                    ctx.trace.subscribe(listener)
            torch.manual_seed(cell.seed)
            train = splits.train.with_images(poison.x)
            # the poison's images, shared with the next cells: read-only
            with left_alone(train, f"defense {cell.defense.display!r}", "the training set", "transform", self._forget,
                            " and return new tensors"), plugin_call(f"defense {cell.defense.display!r} (transform)"):
                defended = cell.defense.transform(train, defense_context(ctx))  # as benchmark.fitting.defend_and_fit
            self._require(transform_problem(train, defended), f"defense {cell.defense.display!r}")
            train = defended
            t_fit = time.perf_counter()
            with left_alone(train, f"victim {cell.victim.display!r}", "the training set", "fit", self._forget, " and return new tensors"), \
                    plugin_call(f"victim {cell.victim.display!r} (fit)" + (f" with defense {cell.defense.display!r}" if cell.defense.stage == "train" else "")):
                model = self.fit_victim(cell, train, ctx, curves, reuse=not observed)
            with plugin_call(f"victim {cell.victim.display!r} (its model's forward)"):
                self._require(logits_problem(model, splits.test, ctx, "fit"), f"victim {cell.victim.display!r}")
            self._require(loss_problem(curves.events), f"victim {cell.victim.display!r} with defense {cell.defense.display!r}:")
            hooks = hooks_problem(self._hooks.calls, curves.events) if cell.defense.stage == "train" else None
            if hooks and cell.victim.paradigm != "supervised":
                raise PluginError(f"defense {cell.defense.display!r} is a train-stage defense, which acts through "
                                  f"hooks.loss, but applies to the {cell.victim.paradigm} victim {cell.victim.display!r}, "
                                  "whose loop has none: make its applies_to refuse such victims (as the built-ins do)")
            if hooks:
                raise PluginError(f"victim {cell.victim.display!r} {hooks}, so the train-stage defense {cell.defense.display!r} "
                                  f"{'changed nothing' if self._hooks.calls == 0 else 'missed training steps'} (call hooks.loss "
                                  "for every batch, as benchmark.training.train_supervised does)")
            timing: dict[str, Any] = {"victim_s": round(time.perf_counter() - t_fit, 2), "victim_reused": self._reused is not None}
            if self._reused is not None:
                timing["victim_from"] = self._reused  # the cell that trained it: what recomputing this one alone repeats
            if cell.defense.stage == "model":
                assert splits.holdout is not None
                t_rep = time.perf_counter()
                # the clean hold-out, shared with the next cells: read-only (else the next cell loads it again)
                with left_alone(splits.holdout, f"defense {cell.defense.display!r}", "the clean hold-out", "repair",
                                lambda: self._forget(everything=False), ": change a copy"), plugin_call(f"defense {cell.defense.display!r} (repair)"):
                    model = cell.defense.repair(model, splits.holdout, ctx)  # its "repair" epochs join the curves
                    self._require(logits_problem(model, splits.test, ctx, "repair"), f"defense {cell.defense.display!r}")
                self._require(loss_problem(curves.events), f"defense {cell.defense.display!r}:")
                timing["repair_s"] = round(time.perf_counter() - t_rep, 2)
            rec["timing"] = timing
            rec["curves"] = curves.events
            art = CellArtifacts(
                model=model, splits=splits, train=train, poison=poison, victim=cell.victim, defense=cell.defense,
                curves=curves.events, observed=observed,
            )
            metrics: dict[str, float] = {}
            units: dict[str, dict[str, str]] = {}  # output key -> the metric that made it and its declared scale
            for m in r.metrics:
                try:
                    values = m.compute(art, ctx)
                except (KeyboardInterrupt, UserError):
                    raise
                except PLUGIN_FAILURES as e:
                    raise PluginError(f"metric {m.name!r} failed: {type(e).__name__}: {e}") from e
                self._require(metric_problem(values, m.unit_of), f"metric {m.name!r}")
                for k in values:
                    if k in units:
                        raise PluginError(f"metric {m.name!r} returned {k!r}, which metric {units[k]['metric']!r} "
                                          "already returned: output names must differ")
                for k, v in values.items():
                    metrics[k] = float(v)
                    units[k] = {"metric": m.name, "unit": m.unit_of(k)}
            if self.cache.reads:  # made by other cells: recomputing this one alone makes them again (bench audit)
                timing["artifacts"] = list({a["key"]: a for a in self.cache.reads}.values())
            rec.update(status="ok", metrics=metrics, metric_units=units, metric_specs=[m.spec() for m in r.metrics], error=None)
        except (KeyboardInterrupt, UserError):
            raise
        except PLUGIN_FAILURES as e:  # a plugin's crash (even sys.exit) fails this cell only
            # the whole message (the log and the summary print its first line, bounded), naming the plugin call that raised it
            rec.update(status="failed", metrics={}, error=error_text(e), traceback=traceback.format_exc())
        rec["wall_s"] = round(time.perf_counter() - t0, 2)
        return rec

    def run(self, cells: list[Cell] | None = None) -> Summary:
        """Compute the pending cells (of ``cells`` only, when given: an array task's share); a cell
        another runner holds is done last, once that runner let it go."""
        from tqdm import tqdm

        t0 = time.perf_counter()
        chosen = self.plan.cells if cells is None else cells
        summary = Summary(planned=len(chosen))
        keys = {c.key for c in chosen}
        todo = [c for c in self.pending() if c.key in keys]
        kept = {c.key for c in todo}
        for cell in chosen:
            if cell.key not in kept and self.state(cell) == "failed":
                summary.failed_before.append(f"{cell.label}: {self._error(cell)}")
        summary.skipped = summary.planned - len(todo) - len(summary.failed_before)
        if summary.skipped:
            self.log(f"{summary.skipped} of {summary.planned} cells already done; computing {len(todo)}")
        if summary.failed_before:
            self.log(f"{len(summary.failed_before)} cells failed in an earlier run; keeping them "
                     "(`bench run --retry-failed` recomputes them)")
        if todo:
            self.splits()  # a dataset that cannot load stops the run here, once, before any work
        for line in review_reuse(self.store, [c for c in chosen if c.key not in kept], matrix=self.r.matrix.name, labels=self.labels,
                                 dataset_sha256=self.dataset_sha256, dtype=numerics(self.device, self.r.matrix.precision)["dtype"],
                                 metrics=self.r.metrics):
            self.log(line)  # reused cells: renamed as the matrix names them now; other data or precision: a warning
        bar = tqdm(total=len(todo), disable=not self.progress, unit="cell", file=sys.stderr)
        deferred: list[Cell] = []
        try:
            for blocking, queue in ((False, todo), (True, deferred)):
                for cell in list(queue):
                    with self.store.lock(cell.key, blocking=blocking, holder=self.holder(f"cell {cell.label}")) as got:
                        if not got:
                            deferred.append(cell)  # another runner has it; look again at the end
                            continue
                        if not self.needs_work(cell):  # finished by another runner meanwhile
                            if self.state(cell) == "failed":  # and it failed there: reported, kept
                                summary.failed_before.append(f"{cell.label}: {self._error(cell)}")
                            else:
                                summary.skipped += 1
                            bar.update(1)
                            continue
                        rec = self.run_cell(cell)
                        self.store.put(cell.key, rec)
                    self._report(cell, rec, summary, bar)
        finally:
            bar.close()
        summary.wall = time.perf_counter() - t0
        return summary

    def labels(self, cell: Cell) -> dict[str, Any]:
        """What a record of ``cell`` is named by (:data:`benchmark.reuse.LABELS`): the matrix's labels."""
        m = self.r.matrix
        return {"profile": m.profile, "dataset": m.dataset.display, "attack": cell.job.attack.display,
                "victim": cell.victim.display, "defense": cell.defense.display}

    def _failed_since(self, cell: Cell, since: float) -> bool:
        """Whether ``cell``'s failure was recorded at ``since`` or later."""
        try:
            return self.store.path(cell.key).stat().st_mtime >= since
        except OSError:
            return False

    def _error(self, cell: Cell) -> str:
        rec = self.store.get(cell.key) or {}
        return error_line(rec["error"]) if rec.get("error") else "failed"

    def _report(self, cell: Cell, rec: dict[str, Any], summary: Summary, bar: Any) -> None:
        bar.update(1)
        n = summary.ok + summary.na + len(summary.failed) + 1
        head = f"[{n}] {cell.label}"
        if rec["status"] == "ok":
            summary.ok += 1
            self.log(f"{head}: {metrics_text(rec)} ({rec['wall_s']:.0f} s)")
        elif rec["status"] == "n/a":
            summary.na += 1
            self.log(f"{head}: n/a ({error_line(rec['error'])})")
        else:
            summary.failed.append(f"{cell.label}: {error_line(rec['error'])}")  # one line: the record keeps the rest
            self.log(f"{head}: FAILED {error_line(rec['error'])}")
