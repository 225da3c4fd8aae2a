"""Parameter profiles: the one definition of their names (no imports, so the CLI's parser uses it
without loading pydantic).

``paper``: the paper's CIFAR-10 settings (a plugin's ``Params`` defaults); ``quick``: the paper's
qualitative effect on a CPU in minutes; ``smoke``: seconds, to check the path runs.
"""

from __future__ import annotations

from typing import Literal, get_args

#: a profile name
Profile = Literal["paper", "quick", "smoke"]
#: the profile names, in order of cost
PROFILES: tuple[Profile, ...] = get_args(Profile)
