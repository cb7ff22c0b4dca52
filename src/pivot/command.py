"""Command stages: a shell command run from the project root, with declared deps, outs and params.

A command stage is a normal `StageSpec` whose `command` is set and whose function is
`run_command` (module-level, so it pickles to workers by reference); the plan fingerprints it by
its command string, and its params are the values of the keys it reads from free-form params
files (DVC's `params:`). Imports of Pivot: spec, outputs, loaders, stage_def.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pydantic

from pivot import loaders, outputs
from pivot.spec import DepSpec, OutKind, OutSpec, Shape, StageSpec, normalise_path
from pivot.stage_def import StageParams

__all__ = ["CommandOut", "CommandParams", "command_spec", "run_command"]


class CommandParams(StageParams):
    """A command stage's params: any keys (such as `train.lr`) with the values it was given."""

    model_config = pydantic.ConfigDict(extra="allow", validate_default=True)


@dataclasses.dataclass(frozen=True)
class CommandOut:
    """One output a command writes: a file, or a directory when the path ends with '/'."""

    path: str
    kind: OutKind = OutKind.OUT
    cache: bool = True


def run_command(command: str) -> None:
    """Run `command` with /bin/sh in the current directory (the project root, set by the worker).

    A non-zero exit raises `subprocess.CalledProcessError`: the stage failed as if its own code
    had raised, and the worker reports it with the command's captured output.
    """
    subprocess.run(command, shell=True, check=True)


def _out_spec(index: int, out: CommandOut, stage: str) -> OutSpec:
    path = normalise_path(out.path, stage=stage, role="output")
    reader = loaders.PathOnly()
    marker: outputs.Out[Any]
    if path.endswith("/"):
        kind, marker = OutKind.DIRECTORY, outputs.DirectoryOut(path, reader, cache=out.cache)
    elif out.kind is OutKind.PLOT:
        kind, marker = OutKind.PLOT, outputs.Plot(path, reader, cache=out.cache)
    else:
        kind, marker = out.kind, outputs.Out(path, reader, cache=out.cache)
    return OutSpec(f"out{index}", (path,), Shape.SINGLE, kind, reader, out.cache, marker)


def command_spec(
    name: str,
    command: str,
    *,
    deps: Sequence[str] = (),
    outs: Sequence[CommandOut] = (),
    params: Mapping[str, Any] | None = None,
    state_dir: Path | None = None,
) -> StageSpec:
    """The spec of a stage that runs `command`; paths are validated like annotation paths."""
    dep_paths = tuple(
        dict.fromkeys(normalise_path(path, stage=name, role="dependency") for path in deps)
    )
    dep_specs = (DepSpec("deps", dep_paths, Shape.LIST, loaders.PathOnly()),) if dep_paths else ()
    return StageSpec(
        name=name,
        func=run_command,
        params_arg=None,
        params=CommandParams.model_validate(dict(params)) if params else None,
        deps=dep_specs,
        outs=tuple(_out_spec(index, out, name) for index, out in enumerate(outs)),
        single_output=False,
        state_dir=state_dir,
        code_objects={"command": command},  # the code manifest entry: its text is its code
        command=command,
    )
