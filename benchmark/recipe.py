"""Training recipes built from a plugin's params.

A recipe is the frozen set of optimizer and schedule settings one training loop reads
(:class:`~benchmark.training.SGDRecipe` for supervised loops,
:class:`~benchmark.ssl.method.PretrainRecipe` and :class:`~benchmark.ssl.probe.ProbeRecipe` for
contrastive pretraining and its probe). A plugin does not copy its params into one field by field:
it names the prefix its recipe keys carry (``""`` for a victim's own recipe, ``"ref_"`` for an
attack's reference model, ``"probe_"``, ``"surrogate_"``) and fixes what its paper does not let a
user change::

    SGDRecipe.from_params(self.params, "ref_", batch_size=128, nesterov=True)
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict


class Recipe(BaseModel):
    """Base of the training recipes: frozen, and unknown fields are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def from_params(cls, params: BaseModel, prefix: str = "", **fixed: Any) -> Self:
        """The recipe whose field ``f`` is ``fixed[f]`` if given, else ``params``'s field
        ``prefix + f`` if ``params`` has one, else the recipe's default. Other params are ignored
        (an attack's ``ref_strength`` is not a recipe setting); a ``fixed`` key that is not a
        recipe field raises pydantic's ``ValidationError``."""
        given = type(params).model_fields
        values = {f: getattr(params, prefix + f) for f in cls.model_fields if prefix + f in given}
        values.update(fixed)
        return cls(**values)
