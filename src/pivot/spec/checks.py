"""Definition checks of a stage: module-level objects, project paths, loaders, IncrementalOut pairs.

Each raises the PivotError that names the stage, the object and the fix. Imports of Pivot:
`pivot.outputs`, the spec values, `pivot.fs` (the project directory's name) and `pivot.errors`;
never graph, plan, execute or store.
"""

from __future__ import annotations

import inspect
import posixpath
import re
import sys
import typing
import weakref
from collections.abc import Mapping
from typing import Any

from pivot import outputs
from pivot.errors import (
    AnnotationError,
    IncrementalOutError,
    NotModuleLevelError,
    PathEscapeError,
    PipelineConfigError,
)
from pivot.fs import PIVOT_DIR
from pivot.spec.stage import SINGLE_OUTPUT_NAME, DepSpec, OutKind, OutSpec, Shape

__all__ = [
    "check_incremental",
    "check_loader",
    "check_module_level",
    "check_own_paths",
    "check_resources",
    "check_stage_callable",
    "normalise_path",
    "paths_of",
]


def _where(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def check_stage_callable(obj: Any, *, stage: str) -> None:
    """Reject what cannot be a stage whatever its module: anything but a plain function, and
    lambdas."""
    if not inspect.isfunction(obj):
        raise NotModuleLevelError(
            f"stage '{stage}': {obj!r} is not a plain function. Stages must be module-level "
            "functions (not partials, lambdas, methods or callable objects); wrap it in a "
            "`def` at module level"
        )
    _check_not_lambda(obj, what="stage", stage=stage)


def _check_not_lambda(obj: Any, *, what: str, stage: str) -> None:
    if "<lambda>" in getattr(obj, "__qualname__", ""):
        raise NotModuleLevelError(
            f"stage '{stage}': {what} {_where(obj)} is a lambda, which cannot be pickled or "
            f"fingerprinted by name. {_FIX} as a named `def`"
        )


_FIX = "Move it to module level (of pipeline.py, a module it imports, a script or a notebook)"


def check_module_level(obj: Any, *, what: str, stage: str) -> None:
    """Reject closures, lambdas, nested and factory-made objects (seed 000).

    Module level means found by its module and name: in pipeline.py or a module it imports, and
    also at the top level of a script run as `__main__` or of a notebook (worker processes get
    those by value).
    """
    _check_not_lambda(obj, what=what, stage=stage)
    qualname = getattr(obj, "__qualname__", "")
    module_name = getattr(obj, "__module__", None)
    fix = _FIX
    if "<locals>" in qualname:
        raise NotModuleLevelError(
            f"stage '{stage}': {what} {_where(obj)} is defined inside a function (a closure or "
            f"factory-made), so it cannot be pickled by reference or its hints resolved. {fix}"
        )
    module = sys.modules.get(module_name or "")
    found: Any = module
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if what == "stage" and ("." in qualname or found is not obj):
        raise NotModuleLevelError(
            f"stage '{stage}': {what} {_where(obj)} is not importable as "
            f"{module_name}.{getattr(obj, '__name__', qualname)}. {fix}"
        )
    if what != "stage" and found is not obj:
        raise NotModuleLevelError(
            f"stage '{stage}': {what} {_where(obj)} is not importable by its module and name. {fix}"
        )


def normalise_path(path: str, *, stage: str, role: str) -> str:
    """Relative POSIX path inside the project; a directory keeps its trailing '/'."""
    text = path.replace("\\", "/")
    is_directory = text.endswith("/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise PathEscapeError(
            f"stage '{stage}': {role} path {path!r} is absolute. Paths are relative to the "
            "project root; write it relative to the directory that holds .pivot/"
        )
    normal = posixpath.normpath(text)
    if normal == ".." or normal.startswith("../"):
        raise PathEscapeError(
            f"stage '{stage}': {role} path {path!r} leaves the project root with '..'. Keep "
            "every dependency and output inside the project (copy or link the file in)"
        )
    if normal in ("", "."):
        raise PathEscapeError(
            f"stage '{stage}': {role} path {path!r} names the project root itself; name a file "
            "or a sub-directory"
        )
    if normal.split("/")[0] == PIVOT_DIR:
        raise PathEscapeError(
            f"stage '{stage}': {role} path {path!r} is inside {PIVOT_DIR}/, which holds Pivot's "
            "own cache and lock files; put data elsewhere in the project"
        )
    return normal + "/" if is_directory else normal


def paths_of(spec: outputs.PathSpec, *, stage: str, role: str) -> tuple[tuple[str, ...], Shape]:
    if isinstance(spec, str):
        return (normalise_path(spec, stage=stage, role=role),), Shape.SINGLE
    shape = Shape.LIST if isinstance(spec, list) else Shape.TUPLE
    return tuple(normalise_path(item, stage=stage, role=role) for item in spec), shape


def check_incremental(deps: list[DepSpec], outs: list[OutSpec], single: bool, stage: str) -> None:
    inputs = {d.name: d for d in deps if d.incremental}
    results = {o.name: o for o in outs if o.kind is OutKind.INCREMENTAL}
    if single and len(inputs) > 1:
        raise IncrementalOutError(
            f"stage '{stage}' has a single output but {len(inputs)} IncrementalOut parameters; "
            "only one IncrementalOut parameter is allowed"
        )
    if single and inputs and results:
        inputs = {SINGLE_OUTPUT_NAME: next(iter(inputs.values()))}
    for name, dep in inputs.items():
        out = results.get(name)
        label = "the return annotation" if single else f"a return field '{name}'"
        if out is None:
            raise IncrementalOutError(
                f"stage '{stage}': IncrementalOut parameter '{dep.name}' has no matching output: "
                f"declare {label} with IncrementalOut({dep.paths[0]!r}, ...) (same path and loader)"
            )
        if out.paths != dep.paths:
            raise IncrementalOutError(
                f"stage '{stage}': IncrementalOut path mismatch for '{dep.name}': input "
                f"{dep.paths[0]!r} vs output {out.paths[0]!r}. Use the same path in both annotations"
            )
        if typing.cast(object, out.loader) != dep.loader:
            raise IncrementalOutError(
                f"stage '{stage}': IncrementalOut loader mismatch for '{dep.name}': input "
                f"{dep.loader!r} vs output {out.loader!r}. Use the same loader in both annotations"
            )
    for name, out in results.items():
        if name not in inputs:
            which = "a parameter" if single else f"a parameter named '{name}'"
            raise IncrementalOutError(
                f"stage '{stage}': IncrementalOut output '{out.paths[0]}' has no matching input: "
                f"add {which} annotated Annotated[T, IncrementalOut({out.paths[0]!r}, ...)] "
                "(same path and loader) so the stage receives the previous value"
            )


def check_own_paths(deps: list[DepSpec], outs: list[OutSpec], stage: str) -> None:
    seen: dict[str, str] = {}
    for out in outs:
        for path in out.paths:
            if path in seen:
                raise PipelineConfigError(
                    f"stage '{stage}' declares output {path!r} twice (in '{seen[path]}' and "
                    f"'{out.name}'); give each output its own path"
                )
            seen[path] = out.name
    for dep in deps:
        for path in dep.paths:
            if path in seen and not dep.incremental:
                raise PipelineConfigError(
                    f"stage '{stage}' declares {path!r} as both dependency '{dep.name}' and output "
                    f"'{seen[path]}'. A stage cannot read its own output; use IncrementalOut for "
                    "state carried across runs"
                )


def check_loader(loader: Any, stage: str) -> None:
    """Loaders are module-level frozen dataclasses: importable, picklable, compared by value."""
    cls = type(loader)
    if cls in _GOOD_LOADER_CLASSES:  # N stages share a few loader classes
        return
    check_module_level(cls, what="loader class", stage=stage)
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen:
        raise AnnotationError(
            f"stage '{stage}': loader class {cls.__module__}.{cls.__qualname__} is not a frozen "
            "dataclass. Decorate it with @dataclasses.dataclass(frozen=True): loaders are "
            "compared by value (IncrementalOut input vs output), pickled and fingerprinted"
        )
    _GOOD_LOADER_CLASSES.add(cls)


_GOOD_LOADER_CLASSES: weakref.WeakSet[type] = weakref.WeakSet()
"""Loader classes that passed `check_loader` (a class's definition does not change)."""


_BYTE_UNITS = {
    "": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}  # fmt: skip
_QUANTITY = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[a-zA-Z]*)\s*$")


def check_resources(stage: str, resources: Mapping[str, Any] | None) -> dict[str, float]:
    """`register(..., resources=...)` as Dask worker resources: name -> a positive amount, where
    an amount is a number or, for memory, a size such as "8GB" or "512MiB" (in bytes)."""
    if resources is None:
        return {}
    if not isinstance(resources, Mapping):
        raise PipelineConfigError(
            f"stage '{stage}': resources must be a dict such as {{'gpu': 1, 'memory': '8GB'}}, "
            f"got {type(resources).__name__}"
        )
    found: dict[str, float] = {}
    for name, amount in resources.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise PipelineConfigError(
                f"stage '{stage}': resource name {name!r} must be a word such as 'gpu' or 'memory'"
            )
        found[name] = _amount(stage, name, amount)
    return found


def _amount(stage: str, name: str, amount: object) -> float:
    if isinstance(amount, bool) or not isinstance(amount, int | float | str):
        value = None
    elif isinstance(amount, str):
        match = _QUANTITY.match(amount)
        unit = match["unit"].lower() if match else ""
        value = (
            float(match["number"]) * _BYTE_UNITS[unit] if match and unit in _BYTE_UNITS else None
        )
    else:
        value = float(amount)
    if value is None or not value > 0:
        raise PipelineConfigError(
            f"stage '{stage}': resource '{name}' needs a positive amount (a number, or a size "
            f"such as '8GB' or '512MiB'), got {amount!r}"
        )
    return value
