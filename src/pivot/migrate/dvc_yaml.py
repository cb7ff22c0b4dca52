"""Reading a `dvc.yaml`: templating (`vars`, `foreach`/`do`, `matrix`, `${...}`) and `wdir` resolved
into plain stages with project-relative paths, as DVC itself would resolve them.

References to values of vars *files* (params.yaml, listed files) stay `${...}` in commands and
paths, so the pivot.yaml written from them re-reads those files; loop items are substituted.
Imports of Pivot: `pivot.pipeline_yaml.marks`, `pivot.errors`.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import posixpath
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pivot.errors import MigrationError, PipelineFileError
from pivot.pipeline_yaml.marks import MarkedDocument, read_marked
from pivot.pipeline_yaml.matrix import REFERENCE

__all__ = ["DvcOut", "DvcParams", "DvcProject", "DvcStage", "read_dvc_yaml"]

_STAGE_KEYS = {
    "cmd", "wdir", "deps", "params", "outs", "metrics", "plots", "frozen", "always_changed",
    "desc", "meta", "vars",
}  # fmt: skip
_OUT_OPTIONS = {"cache", "persist", "desc", "push", "remote", "type", "labels", "meta"}
_PLOT_OPTIONS = {"x", "y", "template", "title", "x_label", "y_label", "header"}


@dataclasses.dataclass(frozen=True)
class DvcOut:
    """An output as DVC declares it, relative to the stage's working directory."""

    path: str
    section: str  # outs, metrics or plots
    cache: bool


@dataclasses.dataclass(frozen=True)
class DvcParams:
    """Params keys a stage lists from one file (`keys` empty: the whole file)."""

    file: str
    keys: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class DvcStage:
    """One resolved DVC stage (a foreach/matrix item is its own stage, `base@key`)."""

    name: str
    cmd: str  # as DVC runs it, in `wdir`; `${...}` of vars files kept
    resolved_cmd: str  # every `${...}` substituted: what dvc.lock records
    wdir: str  # relative to the project root ('.' for the root)
    deps: tuple[str, ...]
    outs: tuple[DvcOut, ...]
    params: tuple[DvcParams, ...]
    notes: tuple[str, ...]  # what needs hand work


@dataclasses.dataclass(frozen=True)
class DvcProject:
    """A dvc.yaml read and resolved: its stages, the vars files it reads, and general notes."""

    path: Path  # relative to the project root
    stages: tuple[DvcStage, ...]
    vars_files: tuple[str, ...]  # project-relative files whose values `${...}` still read
    notes: tuple[str, ...]


def _to_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


class _Context:
    """What `${...}` reads: values of vars files (kept as references) and of loops / inline vars
    (substituted)."""

    def __init__(self, files: Mapping[str, Any], local: Mapping[str, Any]) -> None:
        self.files = dict(files)
        self.local = dict(local)

    def with_local(self, values: Mapping[str, Any]) -> _Context:
        return _Context(self.files, {**self.local, **values})

    def lookup(self, reference: str, where: str) -> Any:
        head, *rest = reference.split(".")
        source = self.local if head in self.local else self.files
        if head not in source:
            raise MigrationError(
                f"{where}: ${{{reference}}} names nothing DVC would know ('{head}' is in no vars "
                "file, loop or inline var); fix dvc.yaml (does `dvc repro` accept it?)"
            )
        value = source[head]
        for key in rest:
            if isinstance(value, Mapping) and key in value:
                value = value[key]
            elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
                value = value[int(key)]
            else:
                raise MigrationError(f"{where}: ${{{reference}}}: no key '{key}'")
        return value

    def is_local(self, reference: str) -> bool:
        return reference.split(".")[0] in self.local

    def resolve(self, value: Any, where: str, *, keep_files: bool) -> Any:
        """`value` with `${...}` substituted (file references kept as they are if `keep_files`)."""
        if isinstance(value, str) and "${" in value:
            whole = REFERENCE.fullmatch(value)
            if whole and (not keep_files or self.is_local(whole.group(1))):
                return self.lookup(whole.group(1), where)

            def replace(match: re.Match[str]) -> str:
                if keep_files and not self.is_local(match.group(1)):
                    self.lookup(match.group(1), where)  # must exist all the same
                    return match.group(0)
                return _to_text(self.lookup(match.group(1), where))

            return REFERENCE.sub(replace, value)
        if isinstance(value, Mapping):
            return {k: self.resolve(v, where, keep_files=keep_files) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, where, keep_files=keep_files) for v in value]
        return value


class _Reader:
    def __init__(self, root: Path, doc: MarkedDocument) -> None:
        self.root = root
        self.doc = doc
        self.base = posixpath.dirname(doc.path.as_posix())  # dvc.yaml's directory, from the root
        self.vars_files: list[str] = []
        self.notes: list[str] = []

    def where(self, *location: str | int) -> str:
        return self.doc.where(location)

    def load_vars_file(self, spec: str, relative_to: str) -> dict[str, Any]:
        name, _, keys = spec.partition(":")
        path = posixpath.normpath(posixpath.join(relative_to, name))
        full = self.root / path
        try:
            text = full.read_text(encoding="utf-8")
        except OSError as error:
            raise MigrationError(f"cannot read vars file '{path}': {error}") from None
        if path.endswith(".json"):
            data = json.loads(text)
        elif path.endswith((".yaml", ".yml")):
            data = read_marked(full, Path(path)).data or {}
        else:
            raise MigrationError(
                f"vars file '{path}' is not YAML or JSON; Pivot reads only those. Convert it or "
                "copy the values into params.yaml"
            )
        if keys:
            data = {key: data[key] for key in keys.split(",") if key in data}
        if path not in self.vars_files:
            self.vars_files.append(path)
        return dict(data)

    def context(self) -> _Context:
        files: dict[str, Any] = {}
        default = posixpath.normpath(posixpath.join(self.base, "params.yaml"))
        if (self.root / default).is_file():
            files.update(self.load_vars_file("params.yaml", self.base))
        local: dict[str, Any] = {}
        for item in self.doc.data.get("vars", []) or []:
            if isinstance(item, str):
                files.update(self.load_vars_file(item, self.base))
            elif isinstance(item, Mapping):
                local.update(item)
        return _Context(files, local)

    # --- expansion --------------------------------------------------------------------------

    def expand(self, name: str, body: Mapping[str, Any], context: _Context) -> list[DvcStage]:
        where = self.where("stages", name)
        if "foreach" in body:
            items = context.resolve(body["foreach"], where, keep_files=False)
            if isinstance(body["foreach"], str):
                self.notes.append(
                    f"stage '{name}': foreach over {body['foreach']} was expanded at import; "
                    "if that list changes, edit pivot.yaml (or import again)"
                )
            return [
                self.stage(f"{name}@{key}", body.get("do") or {}, context.with_local(loop), where)
                for key, loop in _foreach_items(items, where)
            ]
        if "matrix" in body:
            matrix = context.resolve(body["matrix"], where, keep_files=False)
            if not isinstance(matrix, Mapping):
                raise MigrationError(f"{where}: matrix must be a mapping of lists")
            do = {k: v for k, v in body.items() if k != "matrix"}
            return [
                self.stage(f"{name}@{key}", do, context.with_local({"item": item}), where)
                for key, item in _matrix_items(matrix)
            ]
        return [self.stage(name, body, context, where)]

    def stage(self, name: str, body: Any, context: _Context, where: str) -> DvcStage:
        if not isinstance(body, Mapping) or "cmd" not in body:
            raise MigrationError(f"{where}: stage '{name}' has no cmd")
        unknown = sorted(set(body) - _STAGE_KEYS)
        if unknown:
            raise MigrationError(f"{where}: stage '{name}' has unknown key(s) {unknown}")
        notes: list[str] = []
        if body.get("vars"):
            for item in body["vars"]:
                context = context.with_local(
                    self.load_vars_file(item, self.base) if isinstance(item, str) else item
                )
        wdir_text = context.resolve(body.get("wdir", "."), where, keep_files=False)
        wdir = posixpath.normpath(posixpath.join(self.base, str(wdir_text)))
        cmd = body["cmd"]
        cmd = " && ".join(cmd) if isinstance(cmd, list) else str(cmd)
        deps = tuple(
            _path(d) for d in context.resolve(body.get("deps") or [], where, keep_files=True)
        )
        outs: list[DvcOut] = []
        for section in ("outs", "metrics", "plots"):
            for item in context.resolve(body.get(section) or [], where, keep_files=True):
                outs.append(_out(item, section, name, notes))
        for flag, advice in (
            ("frozen", "Pivot has no frozen stages; leave it out of `pivot repro` targets"),
            ("always_changed", "Pivot has no always-run stages; use `pivot repro --force NAME`"),
        ):
            if body.get(flag):
                notes.append(f"stage '{name}': {flag}: true is not carried over. {advice}")
        return DvcStage(
            name=name,
            cmd=context.resolve(cmd, where, keep_files=True),
            resolved_cmd=context.resolve(cmd, where, keep_files=False),
            wdir=wdir,
            deps=deps,
            outs=tuple(outs),
            params=tuple(_params(item, where) for item in body.get("params") or []),
            notes=tuple(notes),
        )

    def read(self) -> DvcProject:
        data = self.doc.data
        if not isinstance(data, Mapping) or not isinstance(data.get("stages"), Mapping):
            raise MigrationError(f"{self.doc.path}: no `stages:` mapping; is this a dvc.yaml?")
        for section in ("plots", "metrics", "params", "artifacts", "datasets"):
            if data.get(section):
                self.notes.append(
                    f"top-level `{section}:` of dvc.yaml is not converted (Pivot reads metrics, "
                    "params and plots from the stages' declared outputs)"
                )
        context = self.context()
        stages = [
            stage
            for name, body in data["stages"].items()
            for stage in self.expand(str(name), body, context)
        ]
        return DvcProject(self.doc.path, tuple(stages), tuple(self.vars_files), tuple(self.notes))


def _path(value: Any) -> str:
    if isinstance(value, Mapping) and len(value) == 1:  # `- path: {options}`
        return str(next(iter(value)))
    return str(value)


def _out(item: Any, section: str, stage: str, notes: list[str]) -> DvcOut:
    options: Mapping[str, Any] = {}
    if isinstance(item, Mapping):
        path, options = next(iter(item.items()))
        options = options or {}
    else:
        path = item
    dropped = sorted(
        set(options) - {"cache"} - ({"persist"} if not options.get("persist") else set())
    )
    plot_only = [key for key in dropped if key in _PLOT_OPTIONS]
    if options.get("persist"):
        notes.append(
            f"stage '{stage}': output '{path}' has persist: true; Pivot removes outputs before "
            "a command runs. Rewrite the stage in Python with IncrementalOut to keep state"
        )
    if plot_only:
        notes.append(f"stage '{stage}': plot options {plot_only} of '{path}' are not converted")
    elif dropped:
        notes.append(f"stage '{stage}': output options {dropped} of '{path}' are not converted")
    return DvcOut(str(path), section, bool(options.get("cache", True)))


def _params(item: Any, where: str) -> DvcParams:
    if isinstance(item, str):
        if item.endswith((".yaml", ".yml", ".json", ".toml", ".py")) and "." in item:
            return DvcParams(item, ())
        return DvcParams("params.yaml", (item,))
    if isinstance(item, Mapping) and len(item) == 1:
        file, keys = next(iter(item.items()))
        return DvcParams(str(file), tuple(keys or ()))
    raise MigrationError(f"{where}: params entry {item!r} is not a key or {{file: [keys]}}")


def _foreach_items(items: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(items, Mapping):
        return [(_to_text(k), {"key": k, "item": v}) for k, v in items.items()]
    if isinstance(items, list):
        if any(isinstance(v, Mapping | list) for v in items):
            return [(str(i), {"key": i, "item": v}) for i, v in enumerate(items)]
        return [(_to_text(v), {"item": v}) for v in items]
    raise MigrationError(f"{where}: foreach must be a list or a mapping, got {items!r}")


def _matrix_items(matrix: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    dims = {k: list(enumerate(v)) for k, v in matrix.items()}
    found = []
    for combination in itertools.product(*dims.values()):
        item = {dim: value for dim, (_, value) in zip(dims, combination)}
        fragments = [
            f"{dim}{i}" if isinstance(v, Mapping | list) else _to_text(v)
            for dim, (i, v) in zip(dims, combination)
        ]
        found.append(("-".join(fragments), item))
    return found


def read_dvc_yaml(root: Path, relative: Path) -> DvcProject:
    """Read and resolve `root/relative` (a dvc.yaml)."""
    try:
        doc = read_marked(root / relative, relative)
    except PipelineFileError as error:
        raise MigrationError(str(error)) from None
    return _Reader(root, doc).read()
