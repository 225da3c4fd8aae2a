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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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
            f"{where} was written with record schema {found!r}; this uebench reads schema {SCHEMA_VERSION} "
            f"(and {', '.join(map(str, sorted(READABLE_SCHEMAS)))}): {hint}"
        )
    return upgrade(record)


def spec_key(spec: dict[str, Any]) -> str:
    """Content address of a spec: sha256 of its canonical JSON, 20 hex digits."""
    blob = json.dumps({"schema": SCHEMA_VERSION, **spec}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
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


def _quarantine(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.replace(path, path.with_name(path.name + ".corrupt"))


@contextlib.contextmanager
def file_lock(path: Path, *, blocking: bool = True) -> Iterator[bool]:
    """Advisory exclusive lock on ``path``. Yields ``False`` (without waiting) when ``blocking`` is
    off and another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


class ArtifactCache:
    """Checksummed tensors by content key: poisons, reference models, surrogates."""

    def __init__(self, root: str | Path, warn: Callable[[str], None] = print) -> None:
        self.root = Path(root)
        self.warn = warn

    def dir(self, key: str) -> Path:
        return self.root / "artifacts" / key

    def lock(self, key: str, *, blocking: bool = True) -> contextlib.AbstractContextManager[bool]:
        return file_lock(self.root / "locks" / f"artifact-{key}.lock", blocking=blocking)

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

            tensors = torch.load(io.BytesIO(blob), weights_only=True, map_location="cpu")
        except Exception as e:  # corrupt json, checksum, or torch payload: all mean "recompute"
            self.warn(f"artifact {key} is corrupt ({e}); moving it aside and recomputing")
            _quarantine(data)
            _quarantine(meta_path)
            return None
        return tensors, meta.get("meta", {})

    def save(self, key: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any], spec: dict[str, Any]) -> None:
        import io

        buf = io.BytesIO()
        torch.save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, buf)
        blob = buf.getvalue()
        d = self.dir(key)
        atomic_write_bytes(d / "data.pt", blob)
        atomic_write_json(d / "meta.json", {"sha256": hashlib.sha256(blob).hexdigest(), "spec": spec, "meta": meta})

    def get_or_create(
        self, spec: dict[str, Any], create: Callable[[], tuple[dict[str, torch.Tensor], dict[str, Any]]]
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any], bool]:
        """Load the artifact of ``spec`` or make it with ``create`` (under a lock, once across
        processes). Returns ``(tensors, meta, was_cached)``."""
        key = spec_key(spec)
        with self.lock(key):
            found = self.load(key)
            if found is not None:
                return found[0], found[1], True
            tensors, meta = create()
            self.save(key, tensors, meta, spec)
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


class ResultStore:
    """One JSON file per cell under ``root/cells``."""

    def __init__(self, root: str | Path, warn: Callable[[str], None] = print) -> None:
        self.root = Path(root)
        self.warn = warn

    def path(self, key: str) -> Path:
        return self.root / "cells" / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        p = self.path(key)
        if not p.exists():
            return None
        try:
            return json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
            self.warn(f"result {p} is unreadable ({e}); moving it aside and recomputing the cell")
            _quarantine(p)
            return None

    def put(self, key: str, record: dict[str, Any]) -> None:
        atomic_write_json(self.path(key), record)

    def lock(self, key: str, *, blocking: bool = True) -> contextlib.AbstractContextManager[bool]:
        return file_lock(self.root / "locks" / f"cell-{key}.lock", blocking=blocking)

    def records(self) -> list[dict[str, Any]]:
        """Every cell record, in the current schema (:func:`upgrade_record`)."""
        out = []
        for p in sorted((self.root / "cells").glob("*.json")):
            try:
                rec = json.loads(p.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
                self.warn(f"skipping unreadable result {p}: {e}")
                continue
            out.append(upgrade_record(rec, str(p)))
        return out
