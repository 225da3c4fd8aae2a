"""Errors a user can fix. The CLI prints them as one message, exit code 2, no traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A mistake in the user's input (config, plugin name, dataset path, ...).

    The message must say what was found, where, and what is allowed.
    """


class ConfigError(UserError):
    """A matrix file failed validation. ``where`` names the file and the key path."""

    def __init__(self, message: str, *, file: str | None = None, path: str | None = None) -> None:
        self.file = file
        self.path = path
        prefix = ""
        if file:
            prefix += f"{file}: "
        if path:
            prefix += f"{path}: "
        super().__init__(prefix + message)


class PluginNotFound(UserError):
    """An unknown plugin name, with the closest registered names."""

    def __init__(self, kind: str, name: str, known: Iterable[str], hint: str = "") -> None:
        known = sorted(known)
        self.kind, self.name, self.known = kind, name, known
        msg = f"unknown {kind} {shorten(name)}"
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5) if len(name) <= 200 else []
        if close:
            msg += f"; did you mean {', '.join(repr(c) for c in close)}?"
        msg += f" (known {kind}s: {', '.join(known) or 'none'}){hint}"
        super().__init__(msg)


class DatasetError(UserError):
    """A dataset that cannot be found or read; the message says how to get it."""


def did_you_mean(value: str, allowed: Iterable[str]) -> str:
    if len(value) > 200:  # difflib is quadratic; nothing that long is a typo of a key
        return ""
    close = difflib.get_close_matches(value, list(allowed), n=3, cutoff=0.5)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def shorten(value: object, limit: int = 80) -> str:
    """``repr(value)`` for an error message, at most ``limit`` characters, computed with bounded
    work (a rejected value may be huge or deeply nested: an alias-expanded YAML document)."""
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxstring, r.maxother, r.maxlong = 3, limit, limit, limit
    r.maxdict = r.maxlist = r.maxtuple = r.maxset = r.maxfrozenset = r.maxdeque = r.maxarray = 6
    text = r.repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clip(text: str, limit: int = 200) -> str:
    """``text`` cut to at most ``limit`` characters (for messages quoting a parser or a plugin)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
