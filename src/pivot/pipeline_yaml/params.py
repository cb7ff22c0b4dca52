"""`params.yaml`: per-stage overrides of StageParams fields, and free-form values command stages read.

`{stage: {field: value}}` overrides a stage's params; for `base@variant` the `base` entry
applies first, then the variant's own (deep merge). Values are validated by the params class and
every error names the stage, the field and `file:line`. Command stages (DVC's `params:`) read
keys such as `train.lr` from the same file, so when any does, other top-level keys are free-form.
Imports of Pivot: pipeline, spec, stage_def, the `pipeline_yaml` helpers, errors.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pivot.errors import PipelineFileError
from pivot.pipeline import Pipeline
from pivot.pipeline_yaml.marks import Location, MarkedDocument, read_marked
from pivot.pipeline_yaml.matrix import deep_merge
from pivot.spec import StageSpec
from pivot.stage_def import StageParams

__all__ = ["PARAMS_FILE", "apply_params_file", "free_form_value", "validate_params"]

PARAMS_FILE = "params.yaml"

Source = tuple[MarkedDocument, Location]
"""Where a set of values came from: a document and the location of the mapping holding them."""


def _has(data: Any, keys: Sequence[str | int]) -> bool:
    for key in keys:
        if isinstance(data, Mapping) and key in data:
            data = data[key]
        else:
            return False
    return True


def _field_where(sources: Sequence[Source], loc: tuple[str | int, ...]) -> str:
    """`file:line` of the value a validation error is about: the last source that sets it."""
    for doc, location in reversed(sources):
        holder = doc.data
        if _has(holder, (*location, *loc)):
            return doc.where((*location, *loc))
    for doc, location in reversed(sources):
        if _has(doc.data, location):
            return doc.where(location)
    doc, location = sources[0]
    return doc.where(location)


def validate_params(
    cls: type[StageParams], values: Mapping[str, Any], *, stage: str, sources: Sequence[Source]
) -> StageParams:
    """`cls` built from `values`; a PipelineFileError names stage, field and file:line."""
    import pydantic

    try:
        return cls.model_validate(dict(values))
    except pydantic.ValidationError as error:
        problems = []
        for item in error.errors():
            loc = tuple(item["loc"])
            field = ".".join(str(part) for part in loc) or "(all)"
            problems.append(
                f"{_field_where(sources, loc)}: stage '{stage}': field '{field}' of "
                f"{cls.__name__}: {item['msg']} (got {item.get('input')!r})"
            )
        raise PipelineFileError(
            "\n".join(problems) + f"\nFix the value(s) to fit {cls.__module__}.{cls.__qualname__}"
        ) from None


def free_form_value(doc: MarkedDocument, key: str, *, wanted_by: str) -> Any:
    """The value at dotted `key` (`train.lr`) of a free-form params file (DVC style)."""
    value: Any = doc.data
    for depth, part in enumerate(key.split(".")):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            known = sorted(map(str, value)) if isinstance(value, Mapping) else []
            close = difflib.get_close_matches(part, known, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            at = ".".join(key.split(".")[:depth]) or "the top level"
            raise PipelineFileError(
                f"{wanted_by}: params key '{key}' is not in {doc.path} ('{part}' is missing "
                f"under {at}).{hint} Add it to {doc.path} or fix the key"
            )
    return value


def _entry(doc: MarkedDocument, key: str, stage: str) -> Mapping[str, Any]:
    value = doc.data[key]
    if not isinstance(value, Mapping):
        raise doc.error(
            (key,),
            f"the entry for stage '{stage}' must map its params fields to values, e.g. "
            f"`{key}: {{epochs: 10}}`, got {value!r}",
        )
    return value


def _override(spec: StageSpec, doc: MarkedDocument) -> StageSpec:
    base = spec.name.split("@", 1)[0]
    keys = [key for key in dict.fromkeys((base, spec.name)) if key in doc.data]
    if not keys:
        return spec
    if spec.params is None:
        raise doc.error(
            (keys[-1],),
            f"stage '{spec.name}' has no StageParams argument, so params.yaml cannot set its "
            "params; remove the entry or give the function a params argument",
        )
    merged: dict[str, Any] = spec.params.model_dump()
    for key in keys:
        merged = deep_merge(merged, _entry(doc, key, spec.name))
    sources = [(doc, (key,)) for key in keys]
    params = validate_params(type(spec.params), merged, stage=spec.name, sources=sources)
    return dataclasses.replace(spec, params=params)


def _check_keys(doc: MarkedDocument, stages: Mapping[str, StageSpec]) -> None:
    """Every top-level key must name a stage (or a matrix base), unless the pipeline has command
    stages: they (and the scripts they run) read free-form keys from this file, as in DVC."""
    if any(spec.command is not None for spec in stages.values()):
        return
    names = set(stages) | {name.split("@", 1)[0] for name in stages}
    for key in doc.data:
        if key not in names:
            close = difflib.get_close_matches(str(key), sorted(names), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise doc.error(
                (key,),
                f"'{key}' names no stage.{hint} Top-level keys of params.yaml are stage names "
                "(or the base name of a matrix, e.g. 'train' for 'train@a_1')",
            )


def apply_params_file(pipeline: Pipeline, root: Path) -> Pipeline:
    """`pipeline` with `root/params.yaml` applied to its stages' params (itself if none)."""
    path = root / PARAMS_FILE
    if not path.is_file():
        return pipeline
    doc = read_marked(path, Path(PARAMS_FILE))
    if doc.data is None:
        return pipeline
    if not isinstance(doc.data, Mapping):
        raise doc.error((), "params.yaml must map stage names to their params fields")
    stages = pipeline.stages
    _check_keys(doc, stages)
    specs = [spec if spec.command is not None else _override(spec, doc) for spec in stages.values()]
    if all(new is old for new, old in zip(specs, stages.values())):
        return pipeline  # nothing overridden (e.g. a DVC-style file read by command stages)
    updated = Pipeline(pipeline.name, root=pipeline.root)
    for spec in specs:
        updated.add_spec(spec)
    return updated
