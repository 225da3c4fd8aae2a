"""No defense: the baseline column."""

from __future__ import annotations

from benchmark.interfaces import Defense


class NoDefense(Defense):
    """The data user trains on the released data as it is (stage ``none``): no countermeasure, the
    baseline column of every table; the victim sees uint8 ``[N, C, H, W]`` unchanged."""

    name = "none"
    stage = "none"


PLUGINS = [NoDefense]
