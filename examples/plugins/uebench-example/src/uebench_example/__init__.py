"""uebench-example: the Orthogonal Projection defense as an external uebench plugin package.

uebench finds it through the ``uebench`` entry point in pyproject.toml; nothing in uebench
imports it.
"""

from __future__ import annotations

from benchmark import hookimpl

from uebench_example.orthogonal_projection import OrthogonalProjection, fit_linear, project_out

__all__ = ["OrthogonalProjection", "fit_linear", "project_out"]


@hookimpl
def register_defenses() -> list[type]:
    return [OrthogonalProjection]
