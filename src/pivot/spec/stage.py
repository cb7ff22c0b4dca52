"""The spec values: StageSpec, DepSpec, OutSpec and their kinds, frozen and built once.

Imports of Pivot: `pivot.loaders`, `pivot.outputs` (and `pivot.stage_def` for typing); never graph, plan,
execute or store.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pivot import loaders, outputs

if TYPE_CHECKING:
    from pivot.stage_def import StageParams

__all__ = ["SINGLE_OUTPUT_NAME", "DepSpec", "OutKind", "OutSpec", "Shape", "StageSpec"]

SINGLE_OUTPUT_NAME = "return"
"""The output name of a stage declared `-> Annotated[T, Out(...)]` (no TypedDict)."""


class Shape(enum.Enum):
    """How the paths of one annotation map onto the value the function sees or returns."""

    SINGLE = "single"
    LIST = "list"
    TUPLE = "tuple"


class OutKind(enum.Enum):
    """Which output marker declared an output."""

    OUT = "out"
    METRIC = "metric"
    PLOT = "plot"
    INCREMENTAL = "incremental"
    DIRECTORY = "directory"


@dataclasses.dataclass(frozen=True)
class DepSpec:
    """One declared dependency: a function parameter and the files it is loaded from."""

    name: str
    paths: tuple[str, ...]
    shape: Shape
    loader: loaders.Reader[Any]
    incremental: bool = False


@dataclasses.dataclass(frozen=True)
class OutSpec:
    """One declared output: a TypedDict field (or the single return) and its files."""

    name: str
    paths: tuple[str, ...]
    shape: Shape
    kind: OutKind
    loader: loaders.Writer[Any]
    cache: bool
    marker: outputs.Out[Any]  # as declared, overrides applied (a Plot's x, y and template)


@dataclasses.dataclass(frozen=True)
class StageSpec:
    """Everything Pivot needs to know about a registered stage, extracted once."""

    name: str
    func: Callable[..., Any]
    params_arg: str | None
    params: StageParams | None
    deps: tuple[DepSpec, ...]
    outs: tuple[OutSpec, ...]
    single_output: bool
    state_dir: Path | None = None
    code_objects: Mapping[str, object] = dataclasses.field(default_factory=dict)
    """Declared objects the code manifest includes (loaders, params class), by entry name."""
    resources: Mapping[str, float] = dataclasses.field(default_factory=dict)
    """What the stage needs of a worker (`register(..., resources=...)`), e.g. {"gpu": 1}."""
    command: str | None = None
    """A command stage's shell command, run instead of calling `func` (see `pivot.command`)."""

    @functools.cached_property  # asked several times per stage while planning N stages
    def out_paths(self) -> tuple[str, ...]:
        return tuple(path for out in self.outs for path in out.paths)

    @functools.cached_property
    def dep_paths(self) -> tuple[str, ...]:
        """Paths that make DAG edges (the input side of an IncrementalOut makes none)."""
        return tuple(path for dep in self.deps if not dep.incremental for path in dep.paths)
