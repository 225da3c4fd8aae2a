"""No defense: the baseline column."""

from __future__ import annotations

from benchmark.interfaces import Defense


class NoDefense(Defense):
    """The data user trains on the released data as it is (stage ``none``)."""

    name = "none"
    stage = "none"


PLUGINS = [NoDefense]
