"""StageSpec: the frozen value extracted once from a stage function, and its validation rules.

Interprets the markers of `pivot.outputs` (one pass over `get_type_hints(include_extras=True)`),
and applies path overrides; every definition error is raised here, at registration (the
run-time check of a stage's return value is `pivot.returns`).
Imports of Pivot: DEFINE modules and `pivot.errors`; never graph, plan, execute or store.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import inspect
import posixpath
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pivot import loaders, outputs
from pivot.errors import (
    AnnotationError,
    IncrementalOutError,
    NotModuleLevelError,
    OverrideError,
    PathEscapeError,
    PipelineConfigError,
    PivotError,
    PlaceholderDepError,
    TypeHintError,
)

if TYPE_CHECKING:
    from pivot.stage_def import StageParams

__all__ = [
    "DepSpec",
    "OutKind",
    "OutSpec",
    "Shape",
    "StageSpec",
    "check_module_level",
    "extract_spec",
    "normalise_path",
]

SINGLE_OUTPUT_NAME = "return"


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
    marker: outputs.Out[Any]


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

    @property
    def out_paths(self) -> tuple[str, ...]:
        return tuple(path for out in self.outs for path in out.paths)

    @property
    def dep_paths(self) -> tuple[str, ...]:
        """Paths that make DAG edges (the input side of an IncrementalOut makes none)."""
        return tuple(path for dep in self.deps if not dep.incremental for path in dep.paths)


# --- module-level checks --------------------------------------------------------------------


def _where(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def check_module_level(obj: Any, *, what: str, stage: str) -> None:
    """Reject closures, lambdas, nested, factory-made and `__main__` objects (seed 000)."""
    qualname = getattr(obj, "__qualname__", "")
    module_name = getattr(obj, "__module__", None)
    fix = "Move it to module level in an importable module (not a script run as __main__)"
    if what == "stage" and not inspect.isfunction(obj):
        raise NotModuleLevelError(
            f"stage '{stage}': {obj!r} is not a plain function. Stages must be module-level "
            "functions (not partials, lambdas, methods or callable objects); wrap it in a "
            "`def` at module level"
        )
    if qualname == "<lambda>" or "<lambda>" in qualname:
        raise NotModuleLevelError(
            f"stage '{stage}': {what} {_where(obj)} is a lambda, which cannot be pickled or "
            f"fingerprinted by name. {fix} as a named `def`"
        )
    if "<locals>" in qualname:
        raise NotModuleLevelError(
            f"stage '{stage}': {what} {_where(obj)} is defined inside a function (a closure or "
            f"factory-made), so it cannot be pickled by reference or its hints resolved. {fix}"
        )
    if module_name == "__main__":
        raise NotModuleLevelError(
            f"stage '{stage}': {what} {qualname} is defined in __main__, which worker processes "
            f"cannot import. {fix}, e.g. pipeline.py or a module it imports"
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


# --- paths ----------------------------------------------------------------------------------


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
    return normal + "/" if is_directory else normal


def _paths_of(spec: outputs.PathSpec, *, stage: str, role: str) -> tuple[tuple[str, ...], Shape]:
    if isinstance(spec, str):
        return (normalise_path(spec, stage=stage, role=role),), Shape.SINGLE
    shape = Shape.LIST if isinstance(spec, list) else Shape.TUPLE
    return tuple(normalise_path(item, stage=stage, role=role) for item in spec), shape


# --- hints ----------------------------------------------------------------------------------


def _resolve_hints(obj: Any, *, stage: str, what: str) -> dict[str, Any]:
    label = getattr(obj, "__qualname__", obj)
    try:
        return typing.get_type_hints(obj, include_extras=True)
    except PivotError as error:  # a marker in a string annotation rejected its arguments
        raise type(error)(f"stage '{stage}': {error}") from None
    except (NameError, AttributeError, TypeError, SyntaxError) as error:
        raise TypeHintError(
            f"stage '{stage}': Failed to resolve type hints for {label}: {error}. Define every "
            f"class used in the {what}'s hints (TypedDicts, params classes, loaders) at module "
            "level and import the names it uses"
        ) from None


def _markers(hint: Any) -> list[Any]:
    if typing.get_origin(hint) is typing.Annotated:
        return list(hint.__metadata__)
    return []


def _first_marker(hint: Any, kinds: tuple[type, ...]) -> Any:
    return next((item for item in _markers(hint) if isinstance(item, kinds)), None)


def _is_params_class(hint: Any) -> bool:
    # pydantic is heavy to import: when pivot.stage_def was never imported, no hint can be a
    # StageParams subclass, so there is nothing to check (keeps no-op runs of param-less
    # pipelines fast).
    stage_def = sys.modules.get("pivot.stage_def")
    if stage_def is None or not isinstance(hint, type):
        return False
    base = stage_def.StageParams
    return issubclass(hint, base) and hint is not base


# --- extraction -----------------------------------------------------------------------------


_DEP_MARKERS = (outputs.Dep, outputs.PlaceholderDep, outputs.IncrementalOut)


@dataclasses.dataclass(frozen=True)
class _Inputs:
    params_arg: str | None
    params_cls: type[StageParams] | None
    deps: dict[str, Any]  # parameter name -> marker


def _read_inputs(func: Callable[..., Any], hints: dict[str, Any], stage: str) -> _Inputs:
    params_arg: str | None = None
    params_cls: type[StageParams] | None = None
    deps: dict[str, Any] = {}
    for param in inspect.signature(func).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise AnnotationError(
                f"stage '{stage}': parameter '{param.name}' is *args/**kwargs; declare each "
                "input as its own annotated parameter"
            )
        if param.kind is param.POSITIONAL_ONLY:
            raise AnnotationError(
                f"stage '{stage}': parameter '{param.name}' is positional-only, but Pivot passes "
                "inputs by name; remove the '/' from the signature"
            )
        hint = hints.get(param.name)
        if _is_params_class(hint) and params_arg is None:
            params_arg, params_cls = param.name, hint
            continue
        marker = _first_marker(hint, _DEP_MARKERS)
        if marker is not None:
            deps[param.name] = marker
        elif _first_marker(hint, (outputs.Out,)) is not None:
            raise AnnotationError(
                f"stage '{stage}': parameter '{param.name}' is annotated with an output marker. "
                "Outputs are declared in the return type (a TypedDict or Annotated[T, Out(...)]); "
                "only IncrementalOut may also appear on a parameter"
            )
        elif param.default is param.empty:
            raise AnnotationError(
                f"stage '{stage}': parameter '{param.name}' has no Dep annotation and no default, "
                "so Pivot cannot supply it. Annotate it, e.g. "
                f"`{param.name}: Annotated[pd.DataFrame, Dep('data.csv', CSV())]`, make it the "
                "StageParams argument, or give it a default"
            )
    return _Inputs(params_arg, params_cls, deps)


def _read_outputs(
    func: Callable[..., Any], hints: dict[str, Any], stage: str
) -> tuple[dict[str, outputs.Out[Any]], bool]:
    """Return ({field or 'return': marker}, single_output)."""
    if "return" not in hints:
        raise AnnotationError(
            f"stage '{stage}': the function has no return annotation. Declare outputs with a "
            "TypedDict, `-> Annotated[T, Out('path', Loader())]`, or write `-> None`"
        )
    ret = hints["return"]
    if ret is None or ret is type(None):
        return {}, False
    marker = _first_marker(ret, (outputs.Out,))
    if marker is not None:
        return {SINGLE_OUTPUT_NAME: marker}, True
    if typing.is_typeddict(ret):
        check_module_level(ret, what="TypedDict", stage=stage)
        fields = _resolve_hints(ret, stage=stage, what="TypedDict")
        found: dict[str, outputs.Out[Any]] = {}
        for field, hint in fields.items():
            field_marker = _first_marker(hint, (outputs.Out,))
            if field_marker is None:
                raise AnnotationError(
                    f"stage '{stage}': TypedDict field missing Out annotation: "
                    f"{ret.__qualname__}.{field}. Annotate every field, e.g. "
                    f"`{field}: Annotated[dict, Out('{field}.json', JSON())]` (or Metric/Plot/...)"
                )
            found[field] = field_marker
        return found, False
    raise AnnotationError(
        f"stage '{stage}': return annotation {ret!r} declares no output. Use a module-level "
        "TypedDict whose fields are Annotated[T, Out(...)], `-> Annotated[T, Out(...)]`, or `-> None`"
    )


def _out_kind(marker: outputs.Out[Any]) -> OutKind:
    for cls, kind in (
        (outputs.DirectoryOut, OutKind.DIRECTORY),
        (outputs.IncrementalOut, OutKind.INCREMENTAL),
        (outputs.Metric, OutKind.METRIC),
        (outputs.Plot, OutKind.PLOT),
    ):
        if isinstance(marker, cls):
            return kind
    return OutKind.OUT


def _suggest(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=3)
    if close:
        return f" Did you mean {', '.join(repr(c) for c in close)}?"
    return f" Known names: {', '.join(repr(c) for c in choices) or '(none)'}."


def _override_paths(value: Any, *, stage: str, key: str, which: str) -> outputs.PathSpec:
    if isinstance(value, str | list | tuple) and value:
        if isinstance(value, list | tuple) and not all(isinstance(v, str) for v in value):
            raise OverrideError(f"stage '{stage}': {which}['{key}'] must list strings: {value!r}")
        return value
    raise OverrideError(
        f"stage '{stage}': {which}['{key}'] must be a path, a non-empty list of paths, or "
        f"(outputs) {{'path': ..., 'cache': bool}}; got {value!r}"
    )


def _fit_shape(
    declared: outputs.PathSpec, given: outputs.PathSpec, *, stage: str, key: str, which: str
) -> outputs.PathSpec:
    if isinstance(declared, str) and not isinstance(given, str):
        raise OverrideError(
            f"stage '{stage}': {which}['{key}'] gives {len(given)} paths for a single-path "
            "annotation; give one path, or declare a list in the annotation"
        )
    if isinstance(declared, tuple) and (
        not isinstance(given, list | tuple) or len(given) != len(declared)
    ):
        raise OverrideError(
            f"stage '{stage}': {which}['{key}'] must give exactly {len(declared)} paths (the "
            f"annotation is a fixed-length tuple), got {given!r}"
        )
    if isinstance(declared, list) and isinstance(given, str):
        return [given]
    if isinstance(declared, tuple):
        return tuple(given)
    if isinstance(declared, list):
        return list(given)
    return given


def _placeholder_message(stage: str, missing: list[str], unknown: list[str]) -> str:
    """Name every PlaceholderDep without a path; point at override keys that look like typos."""
    example = ", ".join(f"{name!r}: 'path/to/file'" for name in missing)
    typos = [
        f"{key!r} looks like a typo for {close[0]!r}"
        for key in unknown
        if (close := difflib.get_close_matches(key, missing, n=1))
    ]
    hint = f" ({'; '.join(typos)})" if typos else ""
    return (
        f"stage '{stage}': PlaceholderDep requires override for "
        f"{', '.join(repr(name) for name in missing)}{hint}: pass "
        f"dep_path_overrides={{{example}}} to register()"
    )


def _build_deps(inputs: _Inputs, overrides: Mapping[str, Any], stage: str) -> list[DepSpec]:
    which = "dep_path_overrides"
    unknown = [key for key in overrides if key not in inputs.deps]
    missing = [
        n
        for n, m in inputs.deps.items()
        if isinstance(m, outputs.PlaceholderDep) and n not in overrides
    ]
    if missing:
        raise PlaceholderDepError(_placeholder_message(stage, missing, unknown))
    if unknown:
        raise OverrideError(
            f"stage '{stage}': {which} names unknown dependency '{unknown[0]}'."
            + _suggest(unknown[0], list(inputs.deps))
        )
    deps = []
    for name, marker in inputs.deps.items():
        incremental = isinstance(marker, outputs.IncrementalOut)
        if name in overrides and incremental:
            raise OverrideError(
                f"stage '{stage}': IncrementalOut paths cannot be overridden ('{name}'): the input "
                "and output must stay the same file; change the path in the annotation"
            )
        path = marker.path if not isinstance(marker, outputs.PlaceholderDep) else None
        if name in overrides:
            given = _override_paths(overrides[name], stage=stage, key=name, which=which)
            path = (
                given
                if path is None
                else _fit_shape(path, given, stage=stage, key=name, which=which)
            )
        assert path is not None
        paths, shape = _paths_of(path, stage=stage, role=f"dependency '{name}'")
        deps.append(DepSpec(name, paths, shape, marker.loader, incremental))
    return deps


def _override_out(
    marker: outputs.Out[Any], value: Any, *, stage: str, key: str
) -> outputs.Out[Any]:
    which = "out_path_overrides"
    if isinstance(marker, outputs.IncrementalOut):
        raise OverrideError(
            f"stage '{stage}': IncrementalOut paths cannot be overridden ('{key}'): the input and "
            "output must stay the same file; change the path in both annotations"
        )
    changes: dict[str, Any] = {}
    if isinstance(value, Mapping):
        extra = set(value) - {"path", "cache"}
        if extra:
            raise OverrideError(
                f"stage '{stage}': {which}['{key}'] has unknown keys {sorted(extra)}; only "
                "'path' and 'cache' are accepted"
            )
        if "cache" in value:
            if not isinstance(value["cache"], bool):
                raise OverrideError(
                    f"stage '{stage}': {which}['{key}']['cache'] must be True or False"
                )
            changes["cache"] = value["cache"]
        value = value.get("path")
    if value is not None:
        given = _override_paths(value, stage=stage, key=key, which=which)
        changes["path"] = _fit_shape(marker.path, given, stage=stage, key=key, which=which)
    try:
        return dataclasses.replace(marker, **changes)
    except AnnotationError as error:
        raise OverrideError(f"stage '{stage}': {which}['{key}']: {error}") from None


def _build_outs(
    declared: dict[str, outputs.Out[Any]], overrides: Mapping[str, Any], single: bool, stage: str
) -> list[OutSpec]:
    which = "out_path_overrides"
    if single and len(overrides) > 1:
        raise OverrideError(
            f"stage '{stage}' has a single output, but {which} has {len(overrides)} keys; give one"
        )
    if single and overrides:
        overrides = {SINGLE_OUTPUT_NAME: next(iter(overrides.values()))}
    unknown = [key for key in overrides if key not in declared]
    if unknown:
        raise OverrideError(
            f"stage '{stage}': {which} names unknown output '{unknown[0]}'."
            + _suggest(unknown[0], list(declared))
        )
    outs = []
    for name, marker in declared.items():
        if name in overrides:
            marker = _override_out(marker, overrides[name], stage=stage, key=name)
        paths, shape = _paths_of(marker.path, stage=stage, role=f"output '{name}'")
        assert marker.loader is not None
        outs.append(
            OutSpec(name, paths, shape, _out_kind(marker), marker.loader, marker.cache, marker)
        )
    return outs


def _check_incremental(deps: list[DepSpec], outs: list[OutSpec], single: bool, stage: str) -> None:
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


def _check_own_paths(deps: list[DepSpec], outs: list[OutSpec], stage: str) -> None:
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


def _resolve_params(inputs: _Inputs, params: Any, stage: str) -> StageParams | None:
    cls = inputs.params_cls
    if cls is None:
        if params is not None:
            raise OverrideError(
                f"stage '{stage}': params were given but the function has no StageParams argument; "
                "add a parameter annotated with your StageParams subclass"
            )
        return None
    check_module_level(cls, what="StageParams class", stage=stage)
    try:
        if params is None:
            return cls()
        if isinstance(params, cls):
            return params.model_copy(deep=True)
        if isinstance(params, Mapping):
            return cls.model_validate(dict(params))
    except Exception as error:  # pydantic.ValidationError
        raise OverrideError(
            f"stage '{stage}': params for {cls.__name__} are invalid: {error}. Pass "
            f"params={cls.__name__}(...) with every required field"
        ) from None
    raise OverrideError(
        f"stage '{stage}': params must be a {cls.__name__} instance (or a dict of its fields), "
        f"got {type(params).__name__}"
    )


def _check_loader(loader: Any, stage: str) -> None:
    """Loaders are module-level frozen dataclasses: importable, picklable, compared by value."""
    cls = type(loader)
    check_module_level(cls, what="loader class", stage=stage)
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen:
        raise AnnotationError(
            f"stage '{stage}': loader class {cls.__module__}.{cls.__qualname__} is not a frozen "
            "dataclass. Decorate it with @dataclasses.dataclass(frozen=True): loaders are "
            "compared by value (IncrementalOut input vs output), pickled and fingerprinted"
        )


def extract_spec(
    func: Callable[..., Any],
    *,
    name: str,
    params: Any = None,
    dep_path_overrides: Mapping[str, Any] | None = None,
    out_path_overrides: Mapping[str, Any] | None = None,
    state_dir: Path | None = None,
) -> StageSpec:
    """Interpret a stage function's annotations once; raise a PivotError for every bad input."""
    check_module_level(func, what="stage", stage=name)
    hints = _resolve_hints(func, stage=name, what="stage function")
    inputs = _read_inputs(func, hints, name)
    declared, single = _read_outputs(func, hints, name)
    deps = _build_deps(inputs, dep_path_overrides or {}, name)
    outs = _build_outs(declared, out_path_overrides or {}, single, name)
    for loader in [d.loader for d in deps] + [o.loader for o in outs]:
        _check_loader(loader, name)
    _check_incremental(deps, outs, single, name)
    _check_own_paths(deps, outs, name)
    return StageSpec(
        name=name,
        func=func,
        params_arg=inputs.params_arg,
        params=_resolve_params(inputs, params, name),
        deps=tuple(deps),
        outs=tuple(outs),
        single_output=single,
        state_dir=state_dir,
    )
