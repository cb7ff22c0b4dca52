"""StageSpec: the frozen value extracted once from a stage function, and its validation rules.

`stage` holds the values, `extraction` reads a function's hints into them, `overrides` applies
registration path overrides, `checks` holds the definition checks. Imports of Pivot: DEFINE
modules and `pivot.errors`; never graph, plan, execute or store.
"""

from pivot.spec.checks import (
    check_module_level,
    check_resources,
    check_stage_callable,
    normalise_path,
)
from pivot.spec.extraction import extract_spec
from pivot.spec.stage import SINGLE_OUTPUT_NAME, DepSpec, OutKind, OutSpec, Shape, StageSpec

__all__ = [
    "SINGLE_OUTPUT_NAME",
    "DepSpec",
    "OutKind",
    "OutSpec",
    "Shape",
    "StageSpec",
    "check_module_level",
    "check_resources",
    "check_stage_callable",
    "extract_spec",
    "normalise_path",
]
