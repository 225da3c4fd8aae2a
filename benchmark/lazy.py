"""A package's flat API imported on first use (PEP 562 module ``__getattr__``).

``benchmark`` and ``benchmark.data`` name their public objects without importing the modules that
define them, so a command that needs none of them (``bench claims``, ``leaderboard``, ``docs``,
``status``: JSON records in, Markdown out) starts without importing torch. The package's
``if TYPE_CHECKING:`` imports are the one list of what lives where: type checkers and editors read
them as written, and :func:`lazy_api` reads the same statements to import a name when it is used.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any


def typing_imports(source: str) -> dict[str, str]:
    """Name -> module of every ``from module import name`` under ``if TYPE_CHECKING:`` in ``source``."""
    where: dict[str, str] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for imp in node.body:
                if isinstance(imp, ast.ImportFrom) and imp.module:
                    where.update({a.asname or a.name: imp.module for a in imp.names})
    return where


def lazy_api(package: dict[str, Any]) -> Callable[[str], object]:
    """The ``__getattr__`` of the package whose ``globals()`` is ``package``: a name its
    ``TYPE_CHECKING`` block imports is imported from there on first access and kept in the package."""
    where: dict[str, str] = {}

    def getattr_(name: str) -> object:
        if not where:
            where.update(typing_imports(Path(package["__file__"]).read_text()))
        if name not in where:
            raise AttributeError(f"module {package['__name__']!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name]), name)
        package[name] = value
        return value

    return getattr_
