"""Pivot: typed Python pipelines that re-run exactly what changed.

The public surface. Names resolve on first use (PEP 562) so that `pivot --help` does not pay for
pydantic; `from pivot import Out` works as usual.
"""

import importlib as _importlib
import typing as _typing

# `_interrupt` first of ours: Ctrl-C while the `pivot` command is starting exits 130.
from pivot import _interrupt as _interrupt
from pivot import errors
from pivot.errors import *  # noqa: F403  (the exception tree is public)

# Helpers are imported under private names so that the module's public names are exactly
# `__all__` (tests/unit/test_public_api.py pins it).
if _typing.TYPE_CHECKING:
    from pivot import loaders, outputs, pipeline, stage_def
    from pivot.outputs import Dep, DirectoryOut, IncrementalOut, Metric, Out, PlaceholderDep, Plot
    from pivot.pipeline import Pipeline
    from pivot.stage_def import StageParams
    from pivot.stage_progress import progress

__version__ = "0.1.0"

_LAZY = {
    "Dep": "pivot.outputs",
    "DirectoryOut": "pivot.outputs",
    "IncrementalOut": "pivot.outputs",
    "Metric": "pivot.outputs",
    "Out": "pivot.outputs",
    "PlaceholderDep": "pivot.outputs",
    "Plot": "pivot.outputs",
    "Pipeline": "pivot.pipeline",
    "StageParams": "pivot.stage_def",
    "progress": "pivot.stage_progress",
}
_MODULES = ("loaders", "outputs", "pipeline", "stage_def")

__all__ = [
    "Dep",
    "DirectoryOut",
    "IncrementalOut",
    "Metric",
    "Out",
    "Pipeline",
    "PlaceholderDep",
    "Plot",
    "StageParams",
    "__version__",
    "errors",
    "loaders",
    "outputs",
    "pipeline",
    "progress",
    "stage_def",
    *errors.__all__,
]


def __getattr__(name: str) -> _typing.Any:
    if name in _LAZY:
        value = getattr(_importlib.import_module(_LAZY[name]), name)
    elif name in _MODULES:
        value = _importlib.import_module(f"pivot.{name}")
    else:
        raise AttributeError(f"module 'pivot' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
