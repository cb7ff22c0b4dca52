"""`Pipeline`: a named registry of stages, with registration-time validation and composition.

Public module (seeds API). Imports of Pivot: `pivot.spec` and DEFINE modules, `pivot.errors`.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pivot.errors import OutputConflictError, StageNameError
from pivot.spec import StageSpec, check_resources, check_stage_callable, extract_spec

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
    inner, outer = (path, taken) if path.startswith(taken.rstrip("/")) else (taken, path)
    if outer.endswith("/"):
        return OutputConflictError(
            f"output {inner!r} lies inside directory output {outer!r} (stages '{new}' and "
            f"'{other}'). Move it outside that directory"
        )
    return OutputConflictError(
        f"output {outer!r} is a file, but output {inner!r} would need it to be a directory "
        f"(stages '{new}' and '{other}'). Rename one of them (out_path_overrides)"
    )


class _OutputIndex:
    """Every registered output path -> its stage, and every parent directory of one -> a path
    under it, so each check is a few dict lookups (registering N stages stays linear)."""

    def __init__(self) -> None:
        self.owners: dict[str, str] = {}
        self.under: dict[str, str] = {}  # "dir/" -> an output path inside it

    def copy(self) -> _OutputIndex:
        other = _OutputIndex()
        other.owners, other.under = dict(self.owners), dict(self.under)
        return other

    def check(self, stage: str, path: str) -> None:
        """Raise if `path` clashes with an output already indexed (any stage, this one too)."""
        if path in self.owners:
            raise _conflict(path, path, stage, self.owners[path])
        for parent in _parents(path):
            for taken in (parent, parent.rstrip("/")):  # a directory output, or a file there
                if taken in self.owners:
                    raise _conflict(path, taken, stage, self.owners[taken])
        as_directory = path if path.endswith("/") else path + "/"
        inside = self.under.get(as_directory)
        if inside is not None:
            raise _conflict(path, inside, stage, self.owners[inside])

    def add(self, stage: str, path: str) -> None:
        self.owners[path] = stage
        for parent in _parents(path):
            self.under.setdefault(parent, path)

    def check_and_add(self, spec: StageSpec) -> None:
        for path in spec.out_paths:
            self.check(spec.name, path)
            self.add(spec.name, path)


class Pipeline:
    """A named collection of stages; `pipeline.py` binds one as `pipeline`."""

    def __init__(self, name: str, *, root: str | Path | None = None) -> None:
        self.name = name
        self.root = Path(root).resolve() if root is not None else _caller_root(2)
        self._stages: dict[str, StageSpec] = {}
        self._outputs = _OutputIndex()

    @functools.cached_property
    def state_dir(self) -> Path:
        """Where this pipeline's lock files live (kept by stages included elsewhere); one value
        shared by all its stages."""
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
        resources: Mapping[str, float | str] | None = None,
    ) -> StageSpec:
        """Validate `func` as a stage and add it; every definition error is raised here.

        `resources` says what the stage needs of a cluster worker (`{"gpu": 1, "memory":
        "8GB"}`): a Dask run sends it only to workers that have them (docs/cluster.md).
        """
        stage_name = name if name is not None else getattr(func, "__name__", repr(func))
        check_stage_callable(func, stage=stage_name)  # before the name: '<lambda>'
        self._check_new_name(stage_name)
        spec = extract_spec(
            func,
            name=stage_name,
            params=params,
            dep_path_overrides=dep_path_overrides,
            out_path_overrides=out_path_overrides,
            state_dir=self.state_dir,
        )
        if resources is not None:
            spec = dataclasses.replace(spec, resources=check_resources(stage_name, resources))
        self._outputs.check_and_add(spec)
        self._stages[stage_name] = spec
        return spec

    def add_spec(self, spec: StageSpec) -> StageSpec:
        """Add a stage extracted elsewhere (a command stage, a stage of pivot.yaml, a copy with
        other params); its name and outputs are checked as `register` checks them."""
        self._check_new_name(spec.name)
        self._outputs.check_and_add(spec)
        self._stages[spec.name] = spec
        return spec

    def _check_new_name(self, name: str) -> None:
        _check_name(name)
        if name in self._stages:
            raise StageNameError(
                f"stage '{name}' already exists in pipeline '{self.name}'. Rename one with "
                f"register(..., name='{name}@v2')"
            )

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
        outputs = self._outputs.copy()
        for spec in incoming.values():
            outputs.check_and_add(spec)
        self._outputs = outputs
        self._stages.update(incoming)
