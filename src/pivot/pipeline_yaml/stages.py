"""`pivot.yaml`: stages declared in YAML (Python functions by module path, or shell commands),
turned into the same StageSpecs `Pipeline.register` makes, with errors at `pivot.yaml:LINE`.

Imports of Pivot: pipeline, command, spec, stage_def, the `pipeline_yaml` helpers, errors.
"""

from __future__ import annotations

import difflib
import importlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pivot.command import CommandOut, command_spec
from pivot.errors import OutputConflictError, PipelineFileError, PivotError
from pivot.pipeline import Pipeline
from pivot.pipeline_yaml.marks import Location, MarkedDocument, read_marked
from pivot.pipeline_yaml.matrix import Variant, expand_stage
from pivot.pipeline_yaml.params import PARAMS_FILE, free_form_value, validate_params
from pivot.spec import OutKind
from pivot.spec.extraction import read_interface

__all__ = ["PIVOT_YAML", "STAGE_KEYS", "load_pivot_yaml"]

PIVOT_YAML = "pivot.yaml"
TOP_KEYS = ("stages", "vars")
STAGE_KEYS = (
    "python",
    "cmd",
    "params",
    "deps",
    "outs",
    "metrics",
    "plots",
    "matrix",
    "exclude",
    "overrides",
    "desc",
)
_COMMAND_ONLY = ("metrics", "plots")


def _unknown_key(doc: MarkedDocument, location: Location, key: Any, known: tuple[str, ...]) -> Any:
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return doc.error(
        (*location, key), f"unknown key '{key}'.{hint} Known keys here: {', '.join(known)}"
    )


class _Builder:
    """Reads pivot.yaml once and adds each stage (and matrix variant) it declares to a pipeline."""

    def __init__(self, root: Path, doc: MarkedDocument) -> None:
        self.root = root
        self.doc = doc
        self.functions: dict[str, Callable[..., Any]] = {}
        self.files: dict[str, MarkedDocument] = {}

    # --- vars and free-form files -----------------------------------------------------------

    def read_file(self, name: str, location: Location) -> MarkedDocument:
        if name not in self.files:
            path = self.root / name
            if not path.is_file():
                raise self.doc.error(location, f"file '{name}' does not exist in the project root")
            if path.suffix == ".json":
                try:
                    data = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError) as error:
                    raise self.doc.error(location, f"cannot read '{name}': {error}") from None
                self.files[name] = MarkedDocument(Path(name), data, {})
            else:
                self.files[name] = read_marked(path, Path(name))
        return self.files[name]

    def variables(self) -> dict[str, Any]:
        items = self.doc.data.get("vars", [])
        items = [items] if isinstance(items, Mapping) else items
        if not isinstance(items, list):
            raise self.doc.error(("vars",), "vars must list mappings or YAML/JSON file names")
        found: dict[str, Any] = {}
        for index, item in enumerate(items):
            if isinstance(item, str):
                data = self.read_file(item, ("vars", index)).data or {}
            else:
                data = item
            if not isinstance(data, Mapping):
                raise self.doc.error(
                    ("vars", index), "each vars entry must be a mapping or a file holding one"
                )
            found.update(data)
        return found

    # --- python stages ----------------------------------------------------------------------

    def function(self, target: Any, location: Location) -> Callable[..., Any]:
        if not isinstance(target, str) or "." not in target:
            raise self.doc.error(
                location,
                f"python must name a module-level function as module.function (e.g. "
                f"stages.train), got {target!r}",
            )
        if target not in self.functions:
            self.functions[target] = self._import(target, location)
        return self.functions[target]

    def _import(self, target: str, location: Location) -> Callable[..., Any]:
        module_name, _, attribute = target.rpartition(".")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name and module_name.startswith(error.name):
                raise self.doc.error(
                    location,
                    f"unknown function '{target}': no module '{error.name}' in the project root "
                    "or installed packages. Fix the module path (dotted, relative to the root)",
                ) from None
            raise self._import_failed(target, error, location) from None
        except PivotError:
            raise
        except Exception as error:
            raise self._import_failed(target, error, location) from None
        found = getattr(module, attribute, None)
        if not callable(found):
            names = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
            close = difflib.get_close_matches(attribute, names, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise self.doc.error(
                location,
                f"unknown function '{target}': module '{module_name}' has no function "
                f"'{attribute}'.{hint}",
            )
        return found  # type: ignore[no-any-return]

    def _import_failed(
        self, target: str, error: BaseException, location: Location
    ) -> PipelineFileError:
        return self.doc.error(
            location,
            f"importing '{target}' raised {type(error).__name__}: {error}. Fix the module",
        )

    def add_python(self, pipeline: Pipeline, variant: Variant, location: Location) -> None:
        body = variant.body
        func = self.function(body["python"], (*location, "python"))
        params = body.get("params")
        for key in ("params", "deps", "outs"):
            if key in body and not isinstance(body[key], Mapping):
                raise self.doc.error(
                    (*location, key),
                    f"{key} of a python stage must be a mapping ({_PYTHON_HELP[key]}), got "
                    f"{body[key]!r}",
                )
        try:
            if params is not None:
                cls = read_interface(func, name=variant.name).params_cls
                if cls is not None:
                    params = validate_params(
                        cls, params, stage=variant.name, sources=[(self.doc, (*location, "params"))]
                    )
            pipeline.register(
                func,
                name=variant.name,
                params=params,
                dep_path_overrides=body.get("deps"),
                out_path_overrides=body.get("outs"),
            )
        except PipelineFileError:
            raise
        except PivotError as error:
            raise self.doc.error(_culprit(body, location, str(error)), _explain(error)) from None

    # --- command stages ---------------------------------------------------------------------

    def command_params(self, keys: Any, stage: str, location: Location) -> dict[str, Any]:
        if isinstance(keys, Mapping):
            raise self.doc.error(
                location,
                "params of a cmd stage list the keys it reads from params.yaml, e.g. "
                "`params: [train.lr]` (or `- other.yaml: [key]`), not field values",
            )
        if not isinstance(keys, list):
            raise self.doc.error(location, f"params must be a list of keys, got {keys!r}")
        values: dict[str, Any] = {}
        for index, item in enumerate(keys):
            at = (*location, index)
            files = item if isinstance(item, Mapping) else {PARAMS_FILE: [item]}
            for name, listed in files.items():
                if not isinstance(listed, list) or not all(isinstance(k, str) for k in listed):
                    raise self.doc.error(at, f"params from '{name}' must list key names")
                source = self.read_file(name, at)
                for key in listed:
                    label = key if name == PARAMS_FILE else f"{name}:{key}"
                    values[label] = free_form_value(source, key, wanted_by=self.doc.where(at))
        return values

    def outputs(self, body: Mapping[str, Any], location: Location) -> list[CommandOut]:
        found: list[CommandOut] = []
        for key, kind in (
            ("outs", OutKind.OUT),
            ("metrics", OutKind.METRIC),
            ("plots", OutKind.PLOT),
        ):
            items = body.get(key, [])
            if not isinstance(items, list):
                raise self.doc.error(
                    (*location, key), f"{key} of a cmd stage must be a list of paths"
                )
            for index, item in enumerate(items):
                found.append(self._output(item, kind, (*location, key, index)))
        return found

    def _output(self, item: Any, kind: OutKind, location: Location) -> CommandOut:
        if isinstance(item, str):
            return CommandOut(item, kind, cache=True)
        if isinstance(item, Mapping) and len(item) == 1:
            path, options = next(iter(item.items()))
            options = options or {}
            if isinstance(options, Mapping) and set(options) <= {"cache"}:
                cache = options.get("cache", True)
                if isinstance(cache, bool):
                    return CommandOut(str(path), kind, cache=cache)
        raise self.doc.error(
            location,
            f"an output is a path or `path: {{cache: false}}` (cache is the only option), got "
            f"{item!r}",
        )

    def add_command(self, pipeline: Pipeline, variant: Variant, location: Location) -> None:
        body = variant.body
        command = body["cmd"]
        if isinstance(command, list) and command and all(isinstance(c, str) for c in command):
            command = " && ".join(command)
        if not isinstance(command, str) or not command.strip():
            raise self.doc.error((*location, "cmd"), "cmd must be a shell command (or a list)")
        deps = body.get("deps", [])
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            raise self.doc.error((*location, "deps"), "deps of a cmd stage must be a list of paths")
        params = self.command_params(body.get("params", []), variant.name, (*location, "params"))
        try:
            spec = command_spec(
                variant.name,
                command,
                deps=deps,
                outs=self.outputs(body, location),
                params=params,
                state_dir=pipeline.state_dir,
            )
            pipeline.add_spec(spec)
        except PivotError as error:
            raise self.doc.error(location, _explain(error)) from None

    # --- the document -----------------------------------------------------------------------

    def stage_bodies(self) -> Mapping[str, Any]:
        data = self.doc.data
        if not isinstance(data, Mapping):
            raise self.doc.error((), "pivot.yaml must be a mapping with a `stages:` key")
        for key in data:
            if key not in TOP_KEYS:
                raise _unknown_key(self.doc, (), key, TOP_KEYS)
        stages = data.get("stages")
        if not isinstance(stages, Mapping) or not stages:
            raise self.doc.error(("stages",), "`stages:` must map stage names to their settings")
        return stages

    def check_body(self, name: str, body: Any) -> None:
        location = ("stages", name)
        if not isinstance(body, Mapping):
            raise self.doc.error(location, f"stage '{name}' must be a mapping of settings")
        for key in body:
            if key not in STAGE_KEYS:
                raise _unknown_key(self.doc, location, key, STAGE_KEYS)
        kinds = [key for key in ("python", "cmd") if key in body]
        if len(kinds) != 1:
            raise self.doc.error(
                location,
                f"stage '{name}' needs exactly one of `python: module.function` or `cmd: "
                f"shell command` (it has {' and '.join(kinds) or 'neither'})",
            )
        extra = [key for key in _COMMAND_ONLY if key in body and "python" in body]
        if extra:
            raise self.doc.error(
                (*location, extra[0]),
                f"'{extra[0]}' is for cmd stages; a python stage declares outputs in its "
                "annotations (Metric, Plot) and moves them with `outs:`",
            )

    def build(self, into: Pipeline) -> Pipeline:
        variables = self.variables()
        defined: dict[str, Location] = {}
        for name, body in self.stage_bodies().items():
            self.check_body(name, body)
            location: Location = ("stages", name)
            for variant in expand_stage(str(name), body, variables, self.doc):
                if variant.name in defined:
                    raise self.doc.error(
                        location,
                        f"stage '{variant.name}' is defined twice in pivot.yaml (also by the "
                        f"entry on line {self.doc.line(defined[variant.name])}); rename one",
                    )
                if variant.name in into:
                    raise self.doc.error(
                        location,
                        f"stage '{variant.name}' is also defined in pipeline.py; stage names "
                        "must be unique across pipeline.py and pivot.yaml, so rename one",
                    )
                defined[variant.name] = location
                if "python" in body:
                    self.add_python(into, variant, location)
                else:
                    self.add_command(into, variant, location)
        return into


def _explain(error: PivotError) -> str:
    if isinstance(error, OutputConflictError):
        return (
            f"{error}. In pivot.yaml, give each stage (each matrix variant) its own paths, "
            'e.g. `outs: {model: "models/${model}.pkl"}`'
        )
    return str(error)


def _culprit(body: Mapping[str, Any], location: Location, message: str) -> Location:
    """The key of a python stage a registration error is about (its line is the one shown)."""
    for key, marker in (("deps", "dep_path_overrides"), ("outs", "out_path_overrides")):
        if marker in message and key in body:
            return (*location, key)
    if "params" in message and "params" in body:
        return (*location, "params")
    return location


_PYTHON_HELP = {
    "params": "StageParams field -> value",
    "deps": "parameter name -> path, as dep_path_overrides",
    "outs": "output name -> path, as out_path_overrides",
}


def load_pivot_yaml(root: Path, base: Pipeline | None) -> Pipeline:
    """The stages of `root/pivot.yaml` added to a copy of `base` (pipeline.py's stages) or to a
    new pipeline; a name in both is an error."""
    doc = read_marked(root / PIVOT_YAML, Path(PIVOT_YAML))
    merged = Pipeline(base.name if base is not None else "pivot", root=root)
    if base is not None:
        merged.include(base)
    return _Builder(root, doc).build(merged)
