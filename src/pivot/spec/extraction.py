"""Extracting a StageSpec from a stage function: one pass over its type hints and signature.

Interprets the markers of `pivot.outputs`, applies the path overrides and runs every definition
check, so each definition error is raised here, at registration (the run-time check of a
stage's return value is `pivot.returns`). Imports of Pivot: DEFINE modules, the spec modules and
`pivot.errors`; never graph, plan, execute or store.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pivot import outputs
from pivot.errors import AnnotationError, OverrideError, PivotError, TypeHintError
from pivot.spec.checks import (
    check_incremental,
    check_loader,
    check_module_level,
    check_own_paths,
    check_stage_callable,
)
from pivot.spec.overrides import build_deps, build_outs
from pivot.spec.stage import SINGLE_OUTPUT_NAME, StageSpec

if TYPE_CHECKING:
    from pivot.stage_def import StageParams

__all__ = ["Interface", "code_objects", "extract_spec", "read_interface"]


def _plain_hint(value: Any) -> bool:
    """A hint `typing.get_type_hints` returns as it is: a class, or `Annotated[<class>, ...]`
    (nothing in it is a string or generic that would need evaluating)."""
    if isinstance(value, type):
        return True
    return typing.get_origin(value) is typing.Annotated and isinstance(value.__origin__, type)


def _function_hints(func: Any) -> dict[str, Any] | None:
    """`typing.get_type_hints(func, include_extras=True)` for a plain function whose hints are
    all plain (the usual stage), without its general machinery; None for any other case."""
    if type(func) is not types.FunctionType:
        return None
    hints = dict(func.__annotations__)
    for name, value in hints.items():
        if value is None:
            hints[name] = type(None)
        elif not _plain_hint(value):
            return None
    return hints


def _resolve_hints(obj: Any, *, stage: str, what: str) -> dict[str, Any]:
    label = getattr(obj, "__name__", obj)
    fast = _function_hints(obj)
    if fast is not None:
        return fast
    try:
        return typing.get_type_hints(obj, include_extras=True)
    except PivotError as error:  # a marker in a string annotation rejected its arguments
        raise type(error)(f"stage '{stage}': {error}") from None
    except (NameError, AttributeError, TypeError, SyntaxError) as error:
        qualname = str(getattr(obj, "__qualname__", ""))
        where = (
            f" ({label} is defined inside {qualname.split('.<locals>')[0]}(), whose local names "
            "cannot be resolved)"
            if "<locals>" in qualname
            else ""
        )
        raise TypeHintError(
            f"stage '{stage}': Failed to resolve type hints for {label}: {error}{where}. Define "
            f"every class used in the {what}'s hints (TypedDicts, params classes, loaders) at "
            "module level and import the names it uses"
        ) from None


def _first_marker(hint: Any, kinds: tuple[type, ...]) -> Any:
    if typing.get_origin(hint) is typing.Annotated:
        for item in hint.__metadata__:
            if isinstance(item, kinds):
                return item
    return None


def _is_params_class(hint: Any) -> bool:
    # pydantic is heavy to import: when pivot.stage_def was never imported, no hint can be a
    # StageParams subclass, so there is nothing to check (keeps no-op runs of param-less
    # pipelines fast).
    stage_def = sys.modules.get("pivot.stage_def")
    if stage_def is None or not isinstance(hint, type):
        return False
    base = stage_def.StageParams
    return issubclass(hint, base) and hint is not base


_DEP_MARKERS = (outputs.Dep, outputs.PlaceholderDep, outputs.IncrementalOut)


@dataclasses.dataclass(frozen=True)
class _Inputs:
    params_arg: str | None
    params_cls: type[StageParams] | None
    deps: dict[str, Any]  # parameter name -> marker


@dataclasses.dataclass(frozen=True)
class Interface:
    """What a stage function's signature and hints declare, before registration overrides."""

    params_arg: str | None
    params_cls: type[StageParams] | None
    deps: Mapping[str, Any]  # parameter name -> Dep, PlaceholderDep or IncrementalOut marker
    outs: Mapping[str, outputs.Out[Any]]  # TypedDict field (or "return") -> output marker
    single_output: bool


class _Parameter(typing.NamedTuple):
    """What registration reads of a parameter: its name, kind and whether it has a default."""

    name: str
    kind: inspect._ParameterKind
    has_default: bool


def _parameters(func: Callable[..., Any]) -> list[_Parameter]:
    """The parameters `inspect.signature(func)` lists, in order; for a plain function (no
    `__wrapped__`, no `__signature__`) read straight from its code object, several times
    cheaper."""
    if type(func) is not types.FunctionType or (
        "__wrapped__" in func.__dict__ or "__signature__" in func.__dict__
    ):
        return [
            _Parameter(param.name, param.kind, param.default is not param.empty)
            for param in inspect.signature(func).parameters.values()
        ]
    kinds = inspect.Parameter
    code = func.__code__
    positional = code.co_argcount
    keyword_only = code.co_kwonlyargcount
    names = code.co_varnames
    first_default = positional - len(func.__defaults__ or ())
    found = [
        _Parameter(
            names[index],
            kinds.POSITIONAL_ONLY
            if index < code.co_posonlyargcount
            else kinds.POSITIONAL_OR_KEYWORD,
            index >= first_default,
        )
        for index in range(positional)
    ]
    at = positional + keyword_only
    if code.co_flags & inspect.CO_VARARGS:
        found.append(_Parameter(names[at], kinds.VAR_POSITIONAL, False))
        at += 1
    keyword_defaults = func.__kwdefaults__ or {}
    found += [
        _Parameter(name, kinds.KEYWORD_ONLY, name in keyword_defaults)
        for name in names[positional : positional + keyword_only]
    ]
    if code.co_flags & inspect.CO_VARKEYWORDS:
        found.append(_Parameter(names[at], kinds.VAR_KEYWORD, False))
    return found


def _read_inputs(func: Callable[..., Any], hints: dict[str, Any], stage: str) -> _Inputs:
    params_arg: str | None = None
    params_cls: type[StageParams] | None = None
    deps: dict[str, Any] = {}
    for param in _parameters(func):
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise AnnotationError(
                f"stage '{stage}': parameter '{param.name}' is *args/**kwargs; declare each "
                "input as its own annotated parameter"
            )
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
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
        elif not param.has_default:
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


def _resolve_params(cls: type[StageParams] | None, params: Any, stage: str) -> StageParams | None:
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


def _check_local_return_type(func: Callable[..., Any], hints: dict[str, Any], stage: str) -> None:
    """A TypedDict defined inside a function fails as seed 000 describes: its name cannot be
    resolved from the stage's module (even when the annotation held the class itself)."""
    returned = hints.get("return")
    qualname = getattr(returned, "__qualname__", "")
    if not typing.is_typeddict(returned) or "<locals>" not in qualname:
        return
    outer = qualname.split(".<locals>")[0]
    raise TypeHintError(
        f"stage '{stage}': Failed to resolve type hints for {func.__name__}: name "
        f"'{getattr(returned, '__name__', qualname)}' is not defined at module level (it is local to {outer}()). "
        "Define the TypedDict, and the stage function, at module level so that their hints "
        "resolve and worker processes can import them"
    )


def read_interface(func: Callable[..., Any], *, name: str) -> Interface:
    """The markers and params class a stage function declares (no overrides applied)."""
    check_stage_callable(func, stage=name)
    hints = _resolve_hints(func, stage=name, what="stage function")
    _check_local_return_type(func, hints, name)
    check_module_level(func, what="stage", stage=name)
    inputs = _read_inputs(func, hints, name)
    outs, single = _read_outputs(func, hints, name)
    return Interface(inputs.params_arg, inputs.params_cls, inputs.deps, outs, single)


def code_objects(declared: Interface) -> dict[str, object]:
    """THE builder of the declared entries of a stage's code manifest (the lock file's `code`
    and `pivot.fingerprint.get_stage_fingerprint` alike): each loader by dependency parameter or
    output name with the paths its annotation declares (`loader:out:result (result.txt)`;
    registration overrides change outputs, not code), and the params class."""
    found: dict[str, object] = {}
    for role, markers in (("dep", declared.deps), ("out", declared.outs)):
        for name, marker in markers.items():
            path = getattr(marker, "path", None)
            paths = [path] if isinstance(path, str) else list(path or ())
            shown = f" ({', '.join(paths)})" if paths else ""
            found[f"loader:{role}:{name}{shown}"] = marker.loader
    cls = declared.params_cls
    if cls is not None:
        found[f"params:{cls.__module__}.{cls.__qualname__}"] = cls
    return found


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
    declared = read_interface(func, name=name)
    single = declared.single_output
    deps = build_deps(declared.deps, dep_path_overrides or {}, name)
    outs = build_outs(declared.outs, out_path_overrides or {}, single, name)
    for loader in [d.loader for d in deps] + [o.loader for o in outs]:
        check_loader(loader, name)
    check_incremental(deps, outs, single, name)
    check_own_paths(deps, outs, name)
    return StageSpec(
        name=name,
        func=func,
        params_arg=declared.params_arg,
        params=_resolve_params(declared.params_cls, params, name),
        deps=tuple(deps),
        outs=tuple(outs),
        single_output=single,
        state_dir=state_dir,
        code_objects=code_objects(declared),
    )
