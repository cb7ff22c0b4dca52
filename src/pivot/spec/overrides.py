"""Path overrides given at registration (`dep_path_overrides`, `out_path_overrides`) applied to
the declared markers, giving the stage's DepSpecs and OutSpecs.

Imports of Pivot: `pivot.outputs`, the spec values and checks, `pivot.errors`; never graph,
plan, execute or store.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from pivot import outputs
from pivot.errors import AnnotationError, OverrideError, PlaceholderDepError
from pivot.spec.checks import paths_of
from pivot.spec.stage import SINGLE_OUTPUT_NAME, DepSpec, OutKind, OutSpec

__all__ = ["build_deps", "build_outs"]


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


def build_deps(
    declared: Mapping[str, Any], overrides: Mapping[str, Any], stage: str
) -> list[DepSpec]:
    """The DepSpecs of the declared dependency markers (parameter name -> marker), overridden."""
    which = "dep_path_overrides"
    unknown = [key for key in overrides if key not in declared]
    missing = [
        n
        for n, m in declared.items()
        if isinstance(m, outputs.PlaceholderDep) and n not in overrides
    ]
    if missing:
        raise PlaceholderDepError(_placeholder_message(stage, missing, unknown))
    if unknown:
        raise OverrideError(
            f"stage '{stage}': {which} names unknown dependency '{unknown[0]}'."
            + _suggest(unknown[0], list(declared))
        )
    deps = []
    for name, marker in declared.items():
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
        paths, shape = paths_of(path, stage=stage, role=f"dependency '{name}'")
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


def build_outs(
    declared: Mapping[str, outputs.Out[Any]], overrides: Mapping[str, Any], single: bool, stage: str
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
        paths, shape = paths_of(marker.path, stage=stage, role=f"output '{name}'")
        assert marker.loader is not None
        outs.append(
            OutSpec(name, paths, shape, _out_kind(marker), marker.loader, marker.cache, marker)
        )
    return outs


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
