"""`StageParams`: the pydantic v2 base class for a stage's parameters.

Public module (seeds API). Imports nothing of Pivot's.
"""

from __future__ import annotations

import pydantic

__all__ = ["StageParams"]


class StageParams(pydantic.BaseModel):
    """Base for stage parameters: typed, validated, unknown fields rejected.

    Pydantic deep-copies mutable defaults per instance, so `= []`, `= {}` and `= Model()` are safe.
    """

    model_config = pydantic.ConfigDict(extra="forbid", validate_default=True)
