"""Every registered plugin passes the conformance checks at its smoke profile (new plugins are
covered automatically)."""

from __future__ import annotations

import pytest
import torch

from benchmark.models import build_classifier
from benchmark.registry import get_registry, reset_registry
from benchmark.testing import check_plugin

reset_registry()
_R = get_registry()
PLUGINS = [(k, n) for k in ("attack", "victim", "defense", "metric") for n in _R.names(k)]
MODELS = _R.names("model")
reset_registry()


@pytest.mark.parametrize(("kind", "name"), PLUGINS, ids=[f"{k}:{n}" for k, n in PLUGINS])
def test_plugin_conforms(kind, name):
    check_plugin(get_registry().get(kind, name))


@pytest.mark.parametrize("arch", MODELS)
def test_architecture_builds(arch):
    model = build_classifier(arch, 3, 10, [0.5] * 3, [0.25] * 3)
    out = model(torch.rand(2, 3, 32, 32).contiguous(memory_format=torch.channels_last))
    assert out.shape == (2, 10)
    out.sum().backward()


def test_plugins_import_the_core_never_each_other() -> None:
    """What two built-in plugins share lives in ``benchmark/``: no module under ``plugins/`` imports
    another one (the rule a third-party plugin author copies)."""
    import ast

    from tests.conftest import REPO

    for path in sorted((REPO / "plugins").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n == "plugins" or n.startswith("plugins.") for n in names), (path, names)
