"""What every plugin (attack, victim, defense, metric, dataset) has in common."""

from __future__ import annotations

import importlib.util
from abc import ABC
from typing import Any, ClassVar

from benchmark.params import Params

# Inside a plugin class `Params` names its class attribute (the plugin's own model); this names the base.
BaseParams = Params


class Plugin(ABC):
    """Base of all plugins.

    Class attributes a plugin sets: ``name`` (the matrix key), ``version`` (bump it when results
    change: it is part of every cache key, with the name, the params and a third-party plugin's
    distribution name), ``Params`` (a :class:`~benchmark.params.Params` model
    whose defaults are the paper's CIFAR-10 settings), ``profiles`` (overrides for ``quick`` and
    ``smoke``) and ``requires`` (importable modules it needs, e.g. ``("kornia",)``).
    """

    kind: ClassVar[str] = "plugin"
    name: ClassVar[str]
    version: ClassVar[str] = "1"
    Params: ClassVar[type[BaseParams]] = BaseParams
    profiles: ClassVar[dict[str, dict[str, Any]]] = {}
    requires: ClassVar[tuple[str, ...]] = ()
    # an instance of ``Params``; a plugin that reads its own fields redeclares it as ``params: Params``
    # below its ``class Params`` so that a type checker sees them (an annotation only: no runtime effect)
    params: BaseParams

    def __init__(self, params: BaseParams | None = None, label: str | None = None) -> None:
        self.params = params if params is not None else self.Params()
        self.label = label

    @property
    def display(self) -> str:
        """How tables and records name this entry: its ``label`` from the matrix, else its name."""
        return self.label or self.name

    @classmethod
    def missing_requirements(cls) -> list[str]:
        """Modules in ``requires`` that cannot be imported here."""
        return [m for m in cls.requires if importlib.util.find_spec(m) is None]

    def spec(self) -> dict[str, Any]:
        """Name, version and validated params: what a cache key is made of. A plugin that an
        installed distribution other than uebench provides adds its ``package`` (the normalized
        distribution name, :func:`benchmark.registry.key_package`): another package's plugin of the
        same name and version is another plugin, with other keys. uebench's own plugins and plain
        modules (no distribution) have no ``package``, so their keys are as they always were."""
        from benchmark.registry import key_package

        spec = {"name": self.name, "version": self.version, "params": self.params.model_dump(mode="json")}
        package = key_package(type(self))
        if package is not None:
            spec["package"] = package
        return spec

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"
