"""The validated params of every registered plugin at every profile: what cache keys are made of.

``tests/test_params.py`` compares them against ``tests/data/plugin_specs.json`` so an edit that
was meant to leave keys alone (bounds on a ``Params`` field, a refactor) cannot change them
unnoticed. After an intended change (a new param, a new default, a version bump), regenerate::

    PYTHONPATH=$PWD python3 -m tests.spec_snapshot
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SNAPSHOT = Path(__file__).parent / "data" / "plugin_specs.json"
KINDS = ("attack", "victim", "defense", "metric", "dataset")


def current_specs() -> dict[str, Any]:
    """``{"attack/em": {"version": "2", "paper": {...}, "quick": {...}, "smoke": {...}}, ...}``."""
    from benchmark.errors import ConfigError
    from benchmark.params import PROFILES, resolve_params
    from benchmark.registry import Registry, make_plugin_manager

    registry = Registry(make_plugin_manager(entry_points=False))
    out: dict[str, Any] = {}
    for kind in KINDS:
        for name in registry.names(kind):
            cls = registry.entry(kind, name).obj
            row: dict[str, Any] = {"version": str(cls.version)}
            for profile in PROFILES:
                try:
                    row[profile] = resolve_params(cls, profile, {}).model_dump(mode="json")
                except ConfigError as e:  # a param the user must give (a dataset's path)
                    row[profile] = f"needs params: {e}"
            out[f"{kind}/{name}"] = row
    return out


if __name__ == "__main__":
    SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
    SNAPSHOT.write_text(json.dumps(current_specs(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {SNAPSHOT}")
