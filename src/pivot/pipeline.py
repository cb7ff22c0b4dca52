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


def _within(path: str, directory: str) -> bool:
    return path.startswith(directory) and path != directory


def _check_outputs(new: StageSpec, existing: Mapping[str, StageSpec]) -> None:
    """Two stages may not share an output, nor write inside another's output directory."""
    for other in existing.values():
        for path in new.out_paths:
            for taken in other.out_paths:
                if path == taken:
                    raise OutputConflictError(
                        f"output {path!r} of stage '{new.name}' is already specified in stage "
                        f"'{other.name}'. Each file has one producer: use out_path_overrides to "
                        "give one of them another path"
                    )
                for inner, outer, owner in ((path, taken, other), (taken, path, new)):
                    if outer.endswith("/") and _within(inner, outer):
                        raise OutputConflictError(
                            f"output {inner!r} lies inside directory output {outer!r} of stage "
                            f"'{owner.name}' (stages '{new.name}' and '{other.name}'). Move it "
                            "outside that directory"
                        )


class Pipeline:
    """A named collection of stages; `pipeline.py` binds one as `pipeline`."""

    def __init__(self, name: str, *, root: str | Path | None = None) -> None:
        self.name = name
        self.root = Path(root).resolve() if root is not None else _caller_root(2)
        self._stages: dict[str, StageSpec] = {}

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
        _check_outputs(spec, self._stages)
        self._stages[stage_name] = spec
        return spec

    def include(self, other: Pipeline) -> None:
        """Copy `other`'s stages in as they are now (point-in-time, deep copy, same state dir)."""
        if other is self:
            raise StageNameError(
                f"pipeline '{self.name}' cannot include itself; use a separate Pipeline instance"
            )
        if not isinstance(other, Pipeline):
            raise TypeError(f"include() takes a Pipeline, got {type(other).__name__}")
        incoming = copy.deepcopy(other._stages)
        added: dict[str, StageSpec] = {}
        for stage_name, spec in incoming.items():
            if stage_name in self._stages:
                raise StageNameError(
                    f"stage '{stage_name}' already exists in pipeline '{self.name}' (including "
                    f"pipeline '{other.name}'). Rename it with register(..., name=...) in one of them"
                )
            _check_outputs(spec, {**self._stages, **added})
            added[stage_name] = spec
        self._stages.update(added)
