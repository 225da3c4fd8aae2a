"""Results and artifacts on disk: content-addressed, atomic, checksummed, lockable.

Layout under a results root::

    cells/<key>.json           one record per cell (spec, metrics, status, error, provenance)
    artifacts/<key>/data.pt    tensors (poisons, intermediate models); torch.save, loaded weights_only
    artifacts/<key>/meta.json  the spec, free-form metadata and the sha256 of data.pt
    locks/<key>.lock           advisory locks, so two runners on one root never do a job twice

Every write goes to a temporary file that is fsync'ed and renamed into place, so a crash or Ctrl-C
never leaves half a file. A corrupt file is reported, moved aside (``*.corrupt``) and recomputed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where tensors are read or written: `bench claims` and the like need no torch
    import torch

from benchmark.errors import UserError

SCHEMA_VERSION = 1

#: Record schemas this uebench reads, each with how it is brought to the current one. Records
#: written before the ``schema`` field existed are schema 1.
READABLE_SCHEMAS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: lambda record: record}


class SchemaError(UserError):
    """A cell record written by a uebench whose record schema this one cannot read."""


def upgrade_record(record: dict[str, Any], where: str) -> dict[str, Any]:
    """``record`` in the current schema; :class:`SchemaError` naming both versions when its schema
    is unknown here (written by a newer uebench, or an older one no longer read)."""
    found = record.get("schema", 1)
    upgrade = READABLE_SCHEMAS.get(found) if isinstance(found, int) else None
    if upgrade is None:
        newer = isinstance(found, int) and found > SCHEMA_VERSION
        hint = "upgrade uebench to read it" if newer else "recompute it with this uebench (`bench run` the matrix again)"
        raise SchemaError(
            f"{where} was written with record schema {str(found)[:20]}; this uebench reads schema "
            f"{', '.join(map(str, sorted(READABLE_SCHEMAS)))}: {hint}"
        )
    return upgrade(record)


def refuse_file(path: Path, advice: str = "give a directory (new or with earlier results)") -> None:
    """Raise a :class:`~benchmark.errors.UserError` when the results directory ``path`` is a file
    (`bench run` and its dry-run; the commands that read results pass their own ``advice``)."""
    if path.exists() and not path.is_dir():
        raise UserError(f"results directory {str(path)!r} is a file, not a directory; {advice}")


def prepare_results(root: str | Path) -> Path:
    """Make ``root`` a results directory this process can write (its ``cells``, ``artifacts`` and
    ``locks`` folders), or raise a :class:`~benchmark.errors.UserError` saying why it cannot be
    one: a file, not writable, on a read-only file system, a full disk."""
    from benchmark.errors import UserError

    path = Path(root)
    refuse_file(path)
    try:
        for sub in ("cells", "artifacts", "locks"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path / "cells", prefix=".write-check.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        where = e.filename if isinstance(e.filename, str) and not e.filename.endswith(".tmp") else str(path / "cells")
        raise UserError(f"results directory {str(path)!r} is not writable ({where}: {e.strerror or e}); "
                        "bench run writes cells, poisons, locks and LEADERBOARD.md there") from None
    return path


def spec_key(spec: dict[str, Any]) -> str:
    """Content address of a spec: sha256 of its canonical JSON, 20 hex digits."""
    blob = json.dumps({"schema": SCHEMA_VERSION, **spec}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _umask() -> int:
    """This process's umask, read without changing it (``/proc`` on Linux; elsewhere set and restored)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file that is fsync'ed and renamed into place.
    The file gets the mode a plain ``open`` would give it (``0o666`` less the umask: a results
    directory shared with a group stays readable to it), not ``mkstemp``'s private ``0o600``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def _stderr(message: str) -> None:
    """Where a store's warnings go by default: stderr (stdout is for what a command outputs)."""
    import sys

    print(message, file=sys.stderr, flush=True)


def _quarantine(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.replace(path, path.with_name(path.name + ".corrupt"))


@contextlib.contextmanager
def file_lock(path: Path, *, blocking: bool = True, holder: dict[str, Any] | None = None) -> Iterator[bool]:
    """Advisory exclusive lock on ``path``. Yields ``False`` (without waiting) when ``blocking`` is
    off and another process holds it.

    The lock is the kernel's ``flock`` on the open file, not the file's existence: it ends with the
    process that holds it, however that process ends (SIGKILL, out of memory, a node's reboot for a
    local file system), so a lock file left behind never blocks a rerun. ``holder`` (who took it:
    pid, host, SLURM job...) is written into the file once the lock is taken, for
    :func:`probe_lock` (``bench status``); it is informative only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            if holder is not None:
                with contextlib.suppress(OSError):
                    f.seek(0)
                    f.truncate()
                    f.write(json.dumps(holder, sort_keys=True, default=str))
                    f.flush()
            yield True
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def probe_lock(path: Path) -> tuple[bool, dict[str, Any] | None]:
    """``(held, holder)``: whether a live process holds the lock file ``path`` now, and what the
    last process that took it wrote there (``None`` if nothing readable). A shared, non-blocking
    probe: it never waits and never takes the lock from anyone."""
    try:
        f = open(path)  # noqa: SIM115 - only a failed open means "no lock"; `with f` below closes it
    except OSError:
        return False, None
    with f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            held = True
        except OSError:
            held = False
        else:
            held = False
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        try:
            info = json.loads(f.read(65536) or "null")
        except (ValueError, OSError, UnicodeDecodeError):
            info = None
    return held, info if isinstance(info, dict) else None


class ArtifactCache:
    """Checksummed tensors by content key: poisons, reference models, surrogates."""

    def __init__(self, root: str | Path, warn: Callable[[str], None] | None = None) -> None:
        self.root = Path(root)
        self.warn = warn or _stderr
        #: the artifacts :meth:`get_or_create` found already made (by another cell, job or run), in
        #: order, each with the seconds its making took: what recomputing a cell alone costs on top
        #: of its own wall time. The runner empties it per cell and records it.
        self.reads: list[dict[str, Any]] = []

    def dir(self, key: str) -> Path:
        return self.root / "artifacts" / key

    def lock_path(self, key: str) -> Path:
        return self.root / "locks" / f"artifact-{key}.lock"

    def lock(self, key: str, *, blocking: bool = True, holder: dict[str, Any] | None = None) -> contextlib.AbstractContextManager[bool]:
        return file_lock(self.lock_path(key), blocking=blocking, holder=holder)

    def load(self, key: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        """``(tensors, meta)`` if a valid artifact is stored under ``key``; ``None`` if absent or corrupt."""
        d = self.dir(key)
        data, meta_path = d / "data.pt", d / "meta.json"
        if not meta_path.exists() or not data.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            blob = data.read_bytes()
            if hashlib.sha256(blob).hexdigest() != meta["sha256"]:
                raise ValueError("checksum mismatch")
            import io

            import torch

            tensors = torch.load(io.BytesIO(blob), weights_only=True, map_location="cpu")
        except Exception as e:  # noqa: BLE001 - corrupt json, checksum, or torch payload: all mean "recompute"
            self.warn(f"artifact {key} is corrupt ({e}); moving it aside and recomputing")
            _quarantine(data)
            _quarantine(meta_path)
            return None
        return tensors, meta.get("meta", {})

    def created_s(self, key: str) -> float | None:
        """Seconds the making of the stored artifact ``key`` took, if it was recorded."""
        try:
            v = json.loads((self.dir(key) / "meta.json").read_text()).get("created_s")
        except (OSError, ValueError):
            return None
        return float(v) if isinstance(v, (int, float)) else None

    def save(self, key: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any], spec: dict[str, Any],
             created_s: float | None = None) -> None:
        import io

        buf = io.BytesIO()
        import torch

        torch.save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, buf)
        blob = buf.getvalue()
        d = self.dir(key)
        atomic_write_bytes(d / "data.pt", blob)
        out: dict[str, Any] = {"sha256": hashlib.sha256(blob).hexdigest(), "spec": spec, "meta": meta}
        if created_s is not None:
            out["created_s"] = round(created_s, 2)
        atomic_write_json(d / "meta.json", out)

    def get_or_create(
        self,
        spec: dict[str, Any],
        create: Callable[[], tuple[dict[str, torch.Tensor], dict[str, Any]]],
        check: Callable[[dict[str, torch.Tensor], dict[str, Any]], str | None] | None = None,
        holder: dict[str, Any] | None = None,
        cost_s: float | None = None,
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any], bool]:
        """Load the artifact of ``spec`` or make it with ``create`` (under a lock, once across
        processes). Returns ``(tensors, meta, was_cached)``.

        ``check(tensors, meta)`` returns why a stored artifact is unusable (a poison that passes
        its checksum but breaks its attack's budget: edited, or written by other code), or ``None``;
        an unusable artifact is moved aside (``*.corrupt``) and made again, once. ``holder`` is
        written into the lock file (see :func:`file_lock`). The seconds the making took are stored
        beside it (``cost_s`` instead, when ``create`` only packages work done before: a metric
        storing its own cell's run), and a found artifact is noted in :attr:`reads` with them."""
        key = spec_key(spec)
        with self.lock(key, holder=holder):
            found = self.load(key)
            if found is not None and check is not None:
                problem = check(*found)
                if problem:
                    self.warn(f"artifact {key} fails its check ({problem}); moving it aside and recomputing")
                    _quarantine(self.dir(key) / "data.pt")
                    _quarantine(self.dir(key) / "meta.json")
                    found = None
            if found is not None:
                self.reads.append({"kind": spec.get("kind"), "key": key, "created_s": self.created_s(key)})
                return found[0], found[1], True
            t0 = time.perf_counter()
            tensors, meta = create()
            self.save(key, tensors, meta, spec, created_s=cost_s if cost_s is not None else time.perf_counter() - t0)
            return tensors, meta, False

    def model(self, spec: dict[str, Any], model: torch.nn.Module, train: Callable[[torch.nn.Module], None]) -> bool:
        """Fill ``model`` with the weights cached for ``spec``, or run ``train(model)`` and cache them.

        For intermediate models an attack trains (TAP's reference classifier...): two attacks or two
        matrices that need the same model (same spec) train it once. Returns whether it was cached.
        """

        def create() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
            train(model)
            return dict(model.state_dict()), {}

        state, _, cached = self.get_or_create({"kind": "model", **spec}, create)
        if cached:
            model.load_state_dict(state)
        model.eval()
        return cached


#: A cell record is a few kB (with curves, tens of kB); anything far larger is not one.
MAX_RECORD_BYTES = 64 * 1024 * 1024
STATUSES = ("ok", "n/a", "failed")
_TEXT_FIELDS = ("dataset", "profile", "attack", "victim", "defense")


def record_problem(rec: Any, key: str | None = None) -> str | None:
    """Why ``rec`` is not a usable cell record (what the runner and the leaderboards rely on), or
    ``None``: a JSON object with a known ``status``, the names of its dataset, profile, attack,
    victim and defense, an integer seed, ``metrics`` mapping names to numbers (empty for a failed or
    n/a cell and only for those, never absent), and, when ``key`` is given, that key (a record copied under another
    cell's name is not that cell's)."""
    if not isinstance(rec, dict):
        return f"a JSON {type(rec).__name__}, not an object"
    if rec.get("status") not in STATUSES:
        return f"status {str(rec.get('status'))[:40]!r} is not one of {', '.join(STATUSES)}"
    if key is not None and rec.get("key") not in (None, key):
        return f"it names cell {str(rec.get('key'))[:40]!r}"
    for name in _TEXT_FIELDS:
        if not isinstance(rec.get(name), str):
            return f"{name!r} is missing or not a string"
    if not isinstance(rec.get("seed"), int) or isinstance(rec.get("seed"), bool):
        return "'seed' is missing or not an integer"
    if "metrics" not in rec:
        return "'metrics' is missing"
    metrics = rec["metrics"]
    if not isinstance(metrics, dict) or not all(
        isinstance(k, str) and (v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))) for k, v in metrics.items()
    ):
        return "'metrics' is not a mapping of names to numbers"
    if rec["status"] == "ok" and not metrics:  # every metric returns at least one value (the runner checks)
        return "an 'ok' record with no metrics"
    return None


class ResultStore:
    """One JSON file per cell under ``root/cells``."""

    def __init__(self, root: str | Path, warn: Callable[[str], None] | None = None) -> None:
        self.root = Path(root)
        self.warn = warn or _stderr
        #: (file name, why) of every file :meth:`records` skipped and moved aside
        self.skipped: list[tuple[str, str]] = []

    def path(self, key: str) -> Path:
        return self.root / "cells" / f"{key}.json"

    def _read(self, p: Path) -> dict[str, Any] | str:
        """The record in ``p``, or why it is not a usable record."""
        try:
            if p.stat().st_size > MAX_RECORD_BYTES:
                return f"larger than {MAX_RECORD_BYTES // 2**20} MiB"
            rec = json.loads(p.read_text())
        except (ValueError, UnicodeDecodeError, OSError, RecursionError) as e:
            return f"unreadable: {type(e).__name__}: {str(e)[:120]}"
        schema = rec.get("schema", 1) if isinstance(rec, dict) else 1
        if not isinstance(schema, int) or isinstance(schema, bool):
            return f"'schema' {str(schema)[:40]!r} is not an integer"
        if schema not in READABLE_SCHEMAS:
            return rec  # another uebench's record: upgrade_record names both schemas, never moves it aside
        return record_problem(rec, p.stem) or rec

    def get(self, key: str) -> dict[str, Any] | None:
        """The record of ``key``; ``None`` if there is none, or if it fails :func:`record_problem`
        (then it is moved aside as ``*.corrupt`` and the cell is recomputed)."""
        p = self.path(key)
        if not p.exists():
            return None
        rec = self._read(p)
        if isinstance(rec, str):
            self.warn(f"result {p} is not a valid record ({rec}); moving it aside and recomputing the cell")
            _quarantine(p)
            return None
        return upgrade_record(rec, str(p))  # another uebench's schema: one line naming both, before any work

    def put(self, key: str, record: dict[str, Any]) -> None:
        atomic_write_json(self.path(key), record)

    def lock_path(self, key: str) -> Path:
        return self.root / "locks" / f"cell-{key}.lock"

    def lock(self, key: str, *, blocking: bool = True, holder: dict[str, Any] | None = None) -> contextlib.AbstractContextManager[bool]:
        return file_lock(self.lock_path(key), blocking=blocking, holder=holder)

    def moved_aside(self) -> list[str]:
        """The names of the files of ``cells/`` moved aside as not valid records (``*.corrupt``)."""
        return sorted(p.name for p in (self.root / "cells").glob("*.corrupt"))

    def records(self) -> list[dict[str, Any]]:
        """Every valid record, in the current schema (:func:`upgrade_record`); an invalid one is skipped with a warning and moved aside (where the
        directory is writable), so the next ``bench run`` recomputes its cell."""
        out = []
        for p in sorted((self.root / "cells").glob("*.json")):
            rec = self._read(p)
            if isinstance(rec, str):
                self.warn(f"skipping result {p}: not a valid record ({rec}); moved aside, the next run recomputes it")
                _quarantine(p)
                self.skipped.append((p.name, rec))
                continue
            out.append(upgrade_record(rec, str(p)))
        return out
