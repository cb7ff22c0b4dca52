"""`Pipeline`: a named registry of stages, with registration-time validation and composition.

Public module (seeds API). Imports of Pivot: `pivot.spec` and DEFINE modules, `pivot.errors`.
"""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pivot.errors import OutputConflictError, StageNameError
from pivot.spec import StageSpec, check_module_level, extract_spec

__all__ = ["Pipeline"]

_STAGE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+=-]*$")


def _caller_root(depth: int) -> Path:
    """Directory of the file that called Pipeline(...): where its state dir lives."""
    filename = sys._getframe(depth).f_globals.get("__file__")
    return Path(filename).resolve().parent if filename else Path.cwd()


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _STAGE_NAME.match(name):
        raise StageNameError(
            f"invalid stage name {name!r}: use letters, digits and _ . @ + = - (e.g. "
            "'train' or 'train@v2'), starting with a letter, digit or '_'"
        )


def _parents(path: str) -> list[str]:
    parts = path.rstrip("/").split("/")
    return ["/".join(parts[:depth]) + "/" for depth in range(1, len(parts))]


def _conflict(path: str, taken: str, new: str, other: str) -> OutputConflictError:
    if path == taken:
        return OutputConflictError(
            f"output {path!r} of stage '{new}' is already specified in stage '{other}'. Each file "
            "has one producer: use out_path_overrides to give one of them another path"
        )
    inner, outer = (path, taken) if path.startswith(taken) else (taken, path)
    return OutputConflictError(
        f"output {inner!r} lies inside directory output {outer!r} (stages '{new}' and "
        f"'{other}'). Move it outside that directory"
    )


def _check_outputs(new: StageSpec, owners: Mapping[str, str]) -> None:
    """Two stages may not share an output, nor write inside another's output directory.

    `owners` maps every output path already registered to its stage (one lookup per parent
    directory, so registering N stages stays linear).
    """
    for path in new.out_paths:
        for taken in [path, *_parents(path)]:
            if taken in owners and (taken == path or taken.endswith("/")):
                raise _conflict(path, taken, new.name, owners[taken])
        if path.endswith("/"):
            inside = next((p for p in owners if p.startswith(path)), None)
            if inside is not None:
                raise _conflict(path, inside, new.name, owners[inside])


class Pipeline:
    """A named collection of stages; `pipeline.py` binds one as `pipeline`."""

    def __init__(self, name: str, *, root: str | Path | None = None) -> None:
        self.name = name
        self.root = Path(root).resolve() if root is not None else _caller_root(2)
        self._stages: dict[str, StageSpec] = {}
        self._owners: dict[str, str] = {}  # output path -> stage name

    @property
    def state_dir(self) -> Path:
        """Where this pipeline's lock files live (kept by stages included elsewhere)."""
        return self.root / ".pivot"

    @property
    def stages(self) -> Mapping[str, StageSpec]:
        """The registered stages by name, in registration order (a read-only copy)."""
        return dict(self._stages)

    def __len__(self) -> int:
        return len(self._stages)

    def __iter__(self) -> Iterator[StageSpec]:
        return iter(list(self._stages.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._stages

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, stages={list(self._stages)})"

    def register(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        params: Any = None,
        dep_path_overrides: Mapping[str, Any] | None = None,
        out_path_overrides: Mapping[str, Any] | None = None,
    ) -> StageSpec:
        """Validate `func` as a stage and add it; every definition error is raised here."""
        stage_name = name if name is not None else getattr(func, "__name__", repr(func))
        check_module_level(func, what="stage", stage=stage_name)  # before the name: '<lambda>'
        _check_name(stage_name)
        if stage_name in self._stages:
            raise StageNameError(
                f"stage '{stage_name}' already exists in pipeline '{self.name}'. Rename one with "
                f"register(..., name='{stage_name}@v2')"
            )
        spec = extract_spec(
            func,
            name=stage_name,
            params=params,
            dep_path_overrides=dep_path_overrides,
            out_path_overrides=out_path_overrides,
            state_dir=self.state_dir,
        )
        _check_outputs(spec, self._owners)
        self._add(spec)
        return spec

    def _add(self, spec: StageSpec) -> None:
        self._stages[spec.name] = spec
        self._owners.update(dict.fromkeys(spec.out_paths, spec.name))

    def include(self, other: Pipeline) -> None:
        """Copy `other`'s stages in as they are now (point-in-time, deep copy, same state dir)."""
        if other is self:
            raise StageNameError(
                f"pipeline '{self.name}' cannot include itself; use a separate Pipeline instance"
            )
        if not isinstance(other, Pipeline):
            raise TypeError(f"include() takes a Pipeline, got {type(other).__name__}")
        incoming = copy.deepcopy(other._stages)
        clash = next((name for name in incoming if name in self._stages), None)
        if clash is not None:
            raise StageNameError(
                f"stage '{clash}' already exists in pipeline '{self.name}' (including pipeline "
                f"'{other.name}'). Rename it with register(..., name=...) in one of them"
            )
        owners = dict(self._owners)
        for spec in incoming.values():
            _check_outputs(spec, owners)
            owners.update(dict.fromkeys(spec.out_paths, spec.name))
        for spec in incoming.values():
            self._add(spec)
