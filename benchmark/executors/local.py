"""The ``local`` executor: several worker processes on this machine share one results directory.

Each worker is an ordinary :class:`~benchmark.runner.Runner` on the same matrix and results root;
the runner's per-cell and per-poison file locks make them split the work (a cell is computed
once, a poison generated once, and a worker that needs a poison another is generating waits for
it). The attacks are ranked by their poison's estimated cost (the cost model's), longest first, and
worker ``i`` starts with ranks ``i, i + n, ...``: the poisons are generated in parallel, the longest
from the start (:meth:`~benchmark.runner.Runner.pending`).

On CUDA there is one worker per GPU (worker ``i`` on ``cuda:i``). On CPU, ``workers`` processes of
the matrix's ``threads`` torch threads each (default: CPUs / threads workers). On the 2-core CI
machine that is only a small gain in throughput (small-CNN training, batch 128: two 1-thread
processes 1,500-1,860 img/s together, one 2-thread process 1,500-1,580 img/s), but it generates
different poisons at the same time; it pays on machines with many cores or GPUs.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import sys
import traceback
from dataclasses import asdict
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from pydantic import Field

from benchmark.config import Resolved
from benchmark.errors import UserError
from benchmark.executor import Executor, RunOptions, usable_cpus
from benchmark.params import Params
from benchmark.registry import LOCAL_WORKER
from benchmark.summary import Summary


class LocalParams(Params):
    """``executor: {name: local, params: {workers: 2}}``; by default one worker per GPU on CUDA,
    else one per ``threads`` (the matrix's torch threads per job) CPU cores."""

    workers: int | None = Field(None, ge=1, le=1024, description="worker processes (default: GPUs on CUDA, else CPUs / threads)")


def _plan_workers(params: LocalParams, device: str, cap: int | None = None, threads: int = 1) -> tuple[int, int, list[str]]:
    """(workers, threads per worker, device of each worker); at most ``cap`` workers (the cells to
    compute). Every worker runs the matrix's ``threads``: the thread count changes float reductions,
    so the executor must not (a cell's numbers are the same inline and here)."""
    import torch

    cpus = usable_cpus()  # the affinity mask's cores, as the threads warning counts them
    gpus = torch.cuda.device_count() if device != "cpu" and torch.cuda.is_available() else 0
    if device.startswith("cuda:"):
        gpus = 1
    workers = params.workers or (gpus if gpus else max(1, cpus // threads))
    if cap is not None:
        workers = max(1, min(workers, cap))
    if gpus and not device.startswith("cuda:"):
        devices = [f"cuda:{i % gpus}" for i in range(workers)]
    else:
        devices = [device if device != "auto" else ("cuda" if gpus else "cpu")] * workers
    return workers, threads, devices


def _die_with_parent(parent: int) -> None:
    """End this worker when the process that started it ends, even by SIGKILL (no orphan goes on
    computing cells nobody waits for, then dies on a broken pipe): the kernel's parent-death
    signal on Linux, a watchdog thread elsewhere."""
    import signal
    import threading

    if sys.platform.startswith("linux"):
        import ctypes
        import ctypes.util

        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            PR_SET_PDEATHSIG = 1
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                if os.getppid() != parent:  # it died before the signal was armed
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        import time

        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="uebench-parent-watch", daemon=True).start()


def _send(conn: Connection, message: tuple[str, Any]) -> None:
    try:
        conn.send(message)
    except OSError:  # the parent is gone (BrokenPipeError): nobody to report to
        pass


def _worker(conn: Connection, matrix: dict[str, Any], file: str | None, results: str, index: int, workers: int,
            threads: int, device: str, verbose: bool, parent: int | None = None, retry_failed: bool = False) -> None:
    """One worker process: resolve the matrix again (plugins come from the same environment), run it."""
    if parent is not None:
        _die_with_parent(parent)
    try:
        import torch

        from benchmark.config import parse_matrix, resolve
        from benchmark.registry import get_registry
        from benchmark.runner import Runner

        torch.set_num_threads(threads)
        m = parse_matrix({**matrix, "device": device, "executor": "inline"}, file=file)
        prefix = f"[worker {index}] "
        runner = Runner(resolve(m, get_registry(), file=file), results, progress=False, verbose=verbose,
                        worker=(index, workers), log=lambda msg: print(prefix + msg, file=sys.stderr, flush=True),
                        retry_failed=retry_failed, tag={"name": "local", "worker": index})
        _send(conn, ("ok", asdict(runner.run())))
    except KeyboardInterrupt:
        _send(conn, ("interrupted", None))
    except UserError as e:
        _send(conn, ("user-error", str(e)))
    except BaseException:  # noqa: BLE001 - reported to the parent, which fails the run
        _send(conn, ("error", traceback.format_exc()))
    finally:
        conn.close()


class Local(Executor):
    """Worker processes on this machine sharing the results directory (see the module doc).

    ``workers``: how many (default: one per GPU on CUDA, else CPUs / the matrix's ``threads``);
    worker ``i`` runs on ``cuda:i`` with GPUs. Ctrl-C stops every worker; finished cells are on
    disk and a rerun resumes. ``bench run M --workers N`` is ``--executor local -E workers=N``.
    """

    name = "local"
    version = "1"
    Params = LocalParams
    params: LocalParams

    def slots(self, resolved: Resolved) -> int:
        return _plan_workers(self.params, resolved.matrix.device, threads=resolved.matrix.threads)[0]

    def run(self, resolved: Resolved, results: str | Path, options: RunOptions) -> Summary:
        return run_local(resolved, results, verbose=options.verbose, log=options.log, retry_failed=options.retry_failed,
                         params=self.params)


def run_local(resolved: Resolved, results: str | Path, *, verbose: bool = False, log: Any = None,
              retry_failed: bool = False, params: LocalParams | None = None) -> Summary:
    """Run the matrix with the ``local`` executor; return the merged :class:`Summary`.

    Ctrl-C stops every worker; finished cells are on disk and a rerun resumes.
    """
    import time

    from benchmark.runner import Runner

    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    if params is None:
        params = LocalParams.model_validate(resolved.matrix.executor.params)
    probe = Runner(resolved, results, log=log, progress=False, retry_failed=retry_failed)
    todo = len(probe.pending())
    if todo == 0:  # nothing to compute: the inline runner reports what is done and what failed
        return probe.run()
    kept = [f"{c.label}: {probe._error(c)}" for c in probe.plan.cells if not probe.needs_work(c) and probe.state(c) == "failed"]
    summary = Summary(planned=len(probe.plan.cells), skipped=len(probe.plan.cells) - todo - len(kept), failed_before=kept)
    t0 = time.perf_counter()
    threads = resolved.matrix.threads
    workers, threads, devices = _plan_workers(params, resolved.matrix.device, cap=todo, threads=threads)
    log(f"local executor: {workers} workers x {threads} threads on {', '.join(sorted(set(devices[:workers])))}; {todo} cells to compute")
    matrix = resolved.matrix.model_dump(mode="json")
    ctx = mp.get_context("spawn")
    procs, pipes, outcomes = [], [], []
    try:  # from the first start on: Ctrl-C anywhere stops every worker started so far
        for i in range(workers):
            parent, child = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_worker, name=f"{LOCAL_WORKER}{i}",
                            args=(child, matrix, resolved.file, str(results), i, workers, threads, devices[i], verbose,
                                  os.getpid(), retry_failed))
            p.start()
            child.close()
            procs.append(p)
            pipes.append(parent)
        for i, (p, conn) in enumerate(zip(procs, pipes)):
            try:
                outcomes.append(conn.recv())
            except EOFError:  # died without reporting (killed, out of memory)
                outcomes.append(("error", f"worker {i} exited without a report (exit code {p.exitcode})"))
            p.join()
    except KeyboardInterrupt:
        # each worker stops on SIGINT by itself (finishing its records, releasing its locks and the
        # semaphores the resource tracker would otherwise report as leaked); terminate only stragglers
        for p in procs:
            if p.is_alive() and p.pid is not None:
                with contextlib.suppress(OSError):
                    os.kill(p.pid, signal.SIGINT)
        for p in procs:
            p.join(timeout=10)
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join()
        raise
    for i, (status, payload) in enumerate(outcomes):
        if status == "user-error":
            raise UserError(payload)
        if status == "interrupted":
            raise KeyboardInterrupt
        if status == "error":
            summary.failed.append(f"worker {i} crashed:\n{payload}")
            continue
        summary.ok += payload["ok"]
        summary.na += payload["na"]
        summary.failed += payload["failed"]  # (a worker's failed_before: kept ones, or a sibling's of this run)
    summary.wall = time.perf_counter() - t0
    return summary
