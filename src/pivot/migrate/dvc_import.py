"""`pivot import-dvc`: dvc.yaml (+ params.yaml, vars, foreach/matrix, wdir) -> pivot.yaml command
stages, a migration report, and lock files for the stages dvc.lock shows up to date.

Imports of Pivot: api, project, the `migrate` and `pipeline_yaml` helpers, store.fs, errors.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pivot import api, fs, project
from pivot.errors import MigrationError, NotInitializedError, PipelineFileError
from pivot.migrate.dvc_lock import LockCheck, read_dvc_lock
from pivot.migrate.dvc_yaml import DvcParams, DvcProject, DvcStage, read_dvc_yaml
from pivot.pipeline_yaml import PARAMS_FILE, PIVOT_YAML
from pivot.pipeline_yaml.marks import read_marked
from pivot.pipeline_yaml.params import free_form_value

__all__ = ["ImportReport", "import_dvc"]

_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.@+=-]")
_READABLE_PARAMS = (".yaml", ".yml", ".json")


@dataclasses.dataclass(frozen=True)
class ImportReport:
    """What `import-dvc` wrote and what needs hand work."""

    written: Path
    stages: tuple[str, ...]
    carried: tuple[str, ...]  # recorded from dvc.lock: `pivot repro` will not re-run them
    will_run: Mapping[str, str]  # stage -> why it runs on the next `pivot repro`
    notes: tuple[str, ...]

    def text(self) -> str:
        lines = [
            f"Wrote {self.written} with {len(self.stages)} command stage(s).",
            f"Carried over from dvc.lock (up to date, will not re-run): {len(self.carried)}",
        ]
        lines += [f"  {name}" for name in self.carried]
        if self.will_run:
            lines.append(f"Will run on the next `pivot repro`: {len(self.will_run)}")
            lines += [f"  {name}: {why}" for name, why in self.will_run.items()]
        lines.append("Needs hand work:" if self.notes else "Needs hand work: nothing found.")
        lines += [f"  - {note}" for note in self.notes]
        lines.append(
            "Each stage runs its original shell command with the declared deps and outs. To get "
            "Pivot's code-change detection, rewrite a stage as a typed Python function and "
            "point `python:` at it (see docs/migrating-from-dvc.md)."
        )
        return "\n".join(lines)


# --- converting stages ----------------------------------------------------------------------


def _project_path(wdir: str, path: str) -> str:
    return posixpath.normpath(posixpath.join(wdir, path))


def _directories(dvc: DvcProject, lock: LockCheck | None, root: Path) -> set[str]:
    """Project-relative outputs that are directories: by dvc.lock, the workspace, or a path
    another stage names inside them."""
    found: set[str] = set()
    named = {
        _project_path(s.wdir, p) for s in dvc.stages for p in (*s.deps, *(o.path for o in s.outs))
    }
    for stage in dvc.stages:
        entry = lock.stages.get(stage.name) if lock is not None else None
        recorded = {
            str(o.get("path")): str(o.get("md5") or "")
            for o in (entry or {}).get("outs") or []
            if isinstance(o, Mapping)
        }
        for out in stage.outs:
            path = _project_path(stage.wdir, out.path)
            if (
                recorded.get(out.path, "").endswith(".dir")
                or (root / path).is_dir()
                or any(other.startswith(path + "/") for other in named)
            ):
                found.add(path)
    return found


def _outputs(stage: DvcStage, directories: set[str]) -> dict[str, list[Any]]:
    sections: dict[str, list[Any]] = {}
    for out in stage.outs:
        path = _project_path(stage.wdir, out.path)
        path = path + "/" if path in directories else path
        sections.setdefault(out.section, []).append(path if out.cache else {path: {"cache": False}})
    return sections


def _param_keys(params: Sequence[DvcParams], wdir: str, root: Path, notes: list[str]) -> list[Any]:
    keys: list[Any] = []
    for item in params:
        file = _project_path(wdir, item.file)
        if not file.endswith(_READABLE_PARAMS):
            notes.append(f"params file '{file}' is not YAML or JSON; its params are not tracked")
            continue
        listed = list(item.keys)
        if not listed:  # the whole file: each of its top-level keys
            data = read_marked(root / file, Path(file)).data if (root / file).is_file() else {}
            listed = sorted(map(str, data or {}))
        if file == PARAMS_FILE:
            keys += listed
        else:
            keys.append({file: listed})
    return keys


def _stage_body(
    stage: DvcStage, directories: set[str], root: Path, notes: list[str]
) -> dict[str, Any]:
    cmd = stage.cmd if stage.wdir == "." else f"cd {shlex.quote(stage.wdir)} && {stage.cmd}"
    body: dict[str, Any] = {"cmd": cmd}
    if stage.deps:
        body["deps"] = [_project_path(stage.wdir, path) for path in stage.deps]
    keys = _param_keys(stage.params, stage.wdir, root, notes)
    if keys:
        body["params"] = keys
    body.update(_outputs(stage, directories))
    return body


def _pivot_name(name: str, notes: list[str]) -> str:
    renamed = _NAME_CHARS.sub("_", name)
    if renamed != name:
        notes.append(f"stage '{name}' is named '{renamed}' in Pivot (stage names are file names)")
    return renamed


def _document(
    dvc: DvcProject, lock: LockCheck | None, root: Path
) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    notes = list(dvc.notes)
    directories = _directories(dvc, lock, root)
    stages: dict[str, Any] = {}
    names: dict[str, str] = {}  # pivot name -> DVC name
    for stage in dvc.stages:
        notes += stage.notes
        name = _pivot_name(stage.name, notes)
        if name in names:
            raise MigrationError(
                f"DVC stages '{names[name]}' and '{stage.name}' both become '{name}' in Pivot; "
                "rename one in dvc.yaml"
            )
        names[name] = stage.name
        stages[name] = _stage_body(stage, directories, root, notes)
    document: dict[str, Any] = {}
    if any("${" in str(body) for body in stages.values()):
        document["vars"] = list(dvc.vars_files)
    document["stages"] = stages
    return document, names, notes


def _dump(document: Mapping[str, Any], source: Path) -> str:
    import yaml

    header = (
        f"# Converted from {source.as_posix()} by `pivot import-dvc`: each stage runs its "
        "original command\n# with the deps, outs and params DVC declared. See "
        "docs/yaml.md and docs/migrating-from-dvc.md.\n"
    )
    return header + yaml.safe_dump(dict(document), sort_keys=False, width=100, allow_unicode=True)


# --- dvc.lock carry-over --------------------------------------------------------------------


def _current_params(stage: DvcStage, root: Path) -> dict[str, dict[str, Any]] | None:
    """{file as DVC names it: {key: value}}, as dvc.lock records params; None if unreadable."""
    found: dict[str, dict[str, Any]] = {}
    for item in stage.params:
        file = _project_path(stage.wdir, item.file)
        if not file.endswith(_READABLE_PARAMS) or not (root / file).is_file():
            return None
        doc = read_marked(root / file, Path(file))
        keys = item.keys or tuple(map(str, doc.data or {}))
        try:
            values = {key: free_form_value(doc, key, wanted_by="dvc.lock") for key in keys}
        except PipelineFileError:
            return None
        found.setdefault(item.file, {}).update(values)
    return found


def _carry_over(
    dvc: DvcProject, names: Mapping[str, str], lock: LockCheck | None, root: Path
) -> tuple[list[str], dict[str, str]]:
    carried: list[str] = []
    will_run: dict[str, str] = {}
    by_dvc_name = {stage.name: stage for stage in dvc.stages}
    for name, dvc_name in names.items():
        stage = by_dvc_name[dvc_name]
        params = _current_params(stage, root)
        if lock is None:
            why: str | None = "no dvc.lock"
        elif params is None:
            why = "its params cannot be read to compare with dvc.lock"
        else:
            why = lock.why_stale(stage, params)
        if why is None:
            carried.append(name)
        else:
            will_run[name] = why
    return carried, will_run


def _find_project(start: Path) -> tuple[project.Project, bool]:
    try:
        return project.load_project(start), False
    except NotInitializedError:
        return api.init(start), True


def import_dvc(
    start: Path | str = ".",
    *,
    dvc_yaml: Path | str = "dvc.yaml",
    output: Path | str = PIVOT_YAML,
    force: bool = False,
) -> ImportReport:
    """Convert a dvc.yaml into `output` (both relative to `start`, or absolute)."""
    proj, created = _find_project(Path(start))
    root = proj.root
    found = Path(os.path.abspath(Path(start, dvc_yaml)))
    if not found.is_relative_to(root):
        raise MigrationError(f"{found} is outside the project {root}; import from inside it")
    source = found.relative_to(root)
    target = Path(os.path.abspath(Path(start, output)))
    if not target.is_relative_to(root):
        raise MigrationError(
            f"{target} is outside the project {root}; write it inside (pivot.yaml at the root "
            "is the project's own, run import-dvc from the root for that)"
        )
    if target.exists() and not force:
        raise MigrationError(
            f"{target} exists; pass --force to overwrite it, or -o to write elsewhere"
        )
    if not (root / source).is_file():
        raise MigrationError(f"no {found} (a dvc.yaml); pass --dvc-yaml PATH")
    dvc = read_dvc_yaml(root, source)
    lock = read_dvc_lock(root, source.with_name("dvc.lock"))
    document, names, notes = _document(dvc, lock, root)
    if created:
        notes.insert(0, f"`pivot init` was run in {root} (no .pivot/ was found)")
    fs.atomic_write_text(target, _dump(document, source))
    carried, will_run = _carry_over(dvc, names, lock, root)
    if carried and target.resolve() == (root / PIVOT_YAML).resolve():
        api.commit(carried, start=root)
    elif carried:
        notes.append(
            f"dvc.lock shows {len(carried)} stage(s) up to date, but {output} is not the "
            f"project's {PIVOT_YAML}, so nothing was recorded: rename it, then `pivot commit`"
        )
        will_run = {**dict.fromkeys(carried, "not recorded (see notes)"), **will_run}
        carried = []
    return ImportReport(target, tuple(names), tuple(carried), will_run, tuple(notes))
