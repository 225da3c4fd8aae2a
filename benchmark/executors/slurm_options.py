"""Which ``sbatch`` options the ``slurm`` executor sets itself, and why a user's ``sbatch.*`` key
that sets one of them is refused (one line naming both keys) instead of silently winning or losing.

submitit writes every option as an ``#SBATCH --name=value`` line and SLURM takes the last line of
an option (and any unambiguous abbreviation of its name: ``--part`` is ``--partition``). So an
``sbatch: {time: 30}`` replaced the executor's ``time`` while ``sbatch: {job-name: x}`` lost to its
``job_name``, silently. Options the executor derives from its own params are refused with the
param to set instead; options it needs as they are (the job array, the dependency on the attack
job, the log files, the requeue signal, requeueing itself) are refused with the reason.

Two options the executor does not write are refused for some values only. ``gres`` naming ``gpu``
asks for GPUs as ``gpus`` does (``--gpus-per-node``): next to ``gpus`` > 0 SLURM gets two GPU
requests, so it is refused, pointing to ``gpus``; with ``gpus`` 0 it is the only one (a typed
request, ``gpu:a100:2``) and passes, and so does any other GRES (``tmpdisk:10``). ``export``
without ``ALL`` (``NONE``, ``NIL``, a list of names) gives the job none of the submitting
environment, which the tasks need: this Python environment's ``PATH``, ``PYTHONPATH``,
``UEBENCH_DATA``, ``UEBENCH_PLUGINS`` (neither the executor nor submitit passes ``--export``: the
tasks rely on sbatch's default, ``ALL``); ``ALL`` and ``ALL,NAME=value`` pass. ``SBATCH_EXPORT`` in
the submitting environment overrides the job script's ``--export``: :func:`drops_environment` tells
the executor to refuse it the same way.
"""

from __future__ import annotations

from typing import Any

#: sbatch long option -> the executor's param that sets it (give that param instead)
BY_PARAM: dict[str, str] = {
    "time": "time", "partition": "partition", "cpus-per-task": "cpus", "gpus-per-node": "gpus", "gpus": "gpus",
    "gpus-per-task": "gpus", "mem": "mem", "job-name": "job_name", "signal": "signal_delay_s",
    "output": "folder", "error": "folder",
}

#: sbatch long option -> why the executor sets it itself (no param of its own changes it)
BY_EXECUTOR: dict[str, str] = {
    "array": "the executor makes each attack's cells one job array (cells_per_task, array_parallelism)",
    "dependency": "each cells array waits for its attack job (afterok)",
    "kill-on-invalid-dep": "a failed attack job cancels the cells that wait for it",
    "open-mode": "a requeued task appends to its log",
    "wrap": "submitit writes the job script",
    "nodes": "every task is one process on one node",
    "ntasks": "every task is one process on one node",
    "ntasks-per-node": "every task is one process on one node",
}

#: why ``no-requeue`` (or ``requeue: false``) is refused
NO_REQUEUE = ("the executor resumes a task that reaches its time limit or is preempted by requeueing it "
              "(scontrol requeue), which SLURM refuses for a --no-requeue job: the task would end without "
              "its cells; remove it (max_requeues=0 stops time-limit requeues)")

#: SLURM's single-letter options whose letter could be typed as a key (uppercase keys are refused before)
SHORT = {"t": "time", "p": "partition", "c": "cpus-per-task", "a": "array", "d": "dependency", "o": "output",
         "e": "error", "n": "ntasks", "w": "nodelist"}

#: sbatch options that set memory: SLURM takes one of them (the executor's ``mem`` is ``--mem``)
MEMORY = ("mem-per-cpu", "mem-per-gpu")


def owned(option: str) -> str | None:
    """The option the executor sets that ``option`` (an ``sbatch.*`` key, ``_`` or ``-``) names,
    exactly, as SLURM's short letter, or as an abbreviation sbatch would expand (``part``)."""
    name = SHORT.get(option, option.replace("_", "-"))
    every = (*BY_PARAM, *BY_EXECUTOR)
    if name in every:
        return name
    starts = [o for o in every if o.startswith(name)]
    return min(starts, key=len) if starts else None


#: sbatch options that ask for GPUs: the executor sets ``--gpus-per-node`` only when its ``gpus`` > 0
GPUS = ("gpus-per-node", "gpus", "gpus-per-task")


def gpu_gres(value: object) -> bool:
    """Whether a ``--gres`` value (``gpu:a100:2,tmpdisk:10``; ``gres/gpu:1`` or ``gres:gpu:1`` in
    TRES form) asks for GPUs."""
    for item in str(value).split(","):
        name = item.strip().lower()
        for prefix in ("gres/", "gres:"):
            name = name.removeprefix(prefix)
        if name.split(":")[0] == "gpu":
            return True
    return False


def drops_environment(value: object) -> bool:
    """Whether an ``--export`` value (or ``SBATCH_EXPORT``) gives the job less than the whole
    submitting environment: ``NONE``, ``NIL`` or a list of names without ``ALL``. ``ALL`` and
    ``ALL,NAME=value`` keep it (SLURM reads the keywords in any case)."""
    if value is True:  # ``export: true`` is a bare --export, which sbatch refuses without a value
        return True
    return "ALL" not in (item.strip().upper() for item in str(value).split(","))


#: why a GPU ``gres`` is refused next to ``gpus`` > 0 (formatted with ``key`` and ``gpus``)
GPU_GRES = ("sbatch.{key}={value} asks for GPUs, which the executor asks for from its own 'gpus' ({gpus}, --gpus-per-node): "
            "give gpus instead, or for a GPU type set gpus 0 and keep sbatch.{key}")

#: why an ``export`` without ALL is refused (formatted with ``what``: ``sbatch.export=NONE``, ``SBATCH_EXPORT=NONE``)
NO_ENVIRONMENT = ("{what} is refused: without ALL the job gets only the variables named (none with NONE or NIL, and a bare "
                  "export is no value), not the rest of the submitting environment, which the tasks need (this Python "
                  "environment's PATH, PYTHONPATH, UEBENCH_DATA, UEBENCH_PLUGINS); give ALL or ALL,NAME=value")


def check_sbatch(sbatch: dict[str, Any], mem: str | None, gpus: int = 0) -> None:
    """Raise ``ValueError`` (one line naming both keys) for an ``sbatch.*`` key that sets an option
    the executor sets itself, for ``no-requeue`` / ``requeue: false``, for a second memory option
    next to ``mem``, and for an ``export`` without ``ALL``. The GPU options (and a ``gres`` naming
    ``gpu``) are the executor's only when its ``gpus`` > 0: with ``gpus`` 0 a typed request
    (``sbatch: {gpus-per-node: "a100:2"}`` or ``{gres: "gpu:a100:2"}``, which the integer ``gpus``
    cannot say) passes."""
    for key, value in sbatch.items():
        name = key.replace("_", "-")
        if name == "no-requeue" or (name == "requeue" and value is False):
            raise ValueError(f"sbatch.{key} is refused: {NO_REQUEUE}")
        if name == "export" and drops_environment(value):
            raise ValueError(NO_ENVIRONMENT.format(what=f"sbatch.{key}={value}"))
        if name == "gres" and gpus and gpu_gres(value):
            raise ValueError(GPU_GRES.format(key=key, value=value, gpus=gpus))
        if name == "requeue":
            continue  # the executor asks for --requeue itself: the same
        option = owned(key)
        if option in GPUS and not gpus:
            continue
        if option in GPUS:
            raise ValueError(f"sbatch.{key} sets --{option}, which the executor sets from its own 'gpus' ({gpus}): give "
                             f"gpus instead of sbatch.{key}, or for a GPU type set gpus 0 and keep sbatch.{key} (e.g. a100:{gpus})")
        if option in BY_PARAM:
            param = BY_PARAM[option]
            raise ValueError(f"sbatch.{key} sets --{option}, which the executor sets from its own {param!r}: "
                             f"give {param} instead of sbatch.{key}")
        if option in BY_EXECUTOR:
            raise ValueError(f"sbatch.{key} sets --{option}, which the executor sets itself: {BY_EXECUTOR[option]}")
        if mem is not None and name in MEMORY:
            raise ValueError(f"sbatch.{key} and the executor's 'mem' (--mem) both set the memory, and SLURM takes "
                             "only one: give one of them")
