"""`pivot export`: the project's pipeline as an equivalent dvc.yaml whose commands run each stage
through Pivot (`python -m pivot run STAGE`), for teams that keep DVC tooling.

Imports of Pivot: api (to load the pipeline), spec, project, store.fs, errors.
"""

from __future__ import annotations

import inspect
import os
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pivot import api, fs
from pivot.errors import MigrationError
from pivot.pipeline_yaml import PARAMS_FILE, PIVOT_YAML
from pivot.pipeline_yaml.marks import read_marked
from pivot.spec import OutKind, StageSpec

__all__ = ["export_dvc"]

_DVC_NAME = re.compile(r"[^A-Za-z0-9_-]")
_SECTION = {OutKind.METRIC: "metrics", OutKind.PLOT: "plots"}


def dvc_name(name: str) -> str:
    """A DVC stage name for a Pivot one ('@' is DVC's foreach separator, so it becomes '-')."""
    return _DVC_NAME.sub("-", name)


def _code_files(spec: StageSpec, root: Path) -> list[str]:
    """Files whose edits may change the stage, as DVC deps (Pivot itself tracks code finely)."""
    files = [name for name in ("pipeline.py", PIVOT_YAML) if (root / name).is_file()]
    if spec.command is None:
        source = inspect.getsourcefile(spec.func)
        if source:
            relative = os.path.relpath(os.path.abspath(source), root)
            if not relative.startswith(".."):
                files.append(Path(relative).as_posix())
    return list(dict.fromkeys(files))


def _params(spec: StageSpec, overrides: Mapping[str, Any]) -> list[Any]:
    """The params.yaml keys DVC should watch: this stage's override entries, field by field."""
    base = spec.name.split("@", 1)[0]
    keys = [
        f"{entry}.{field}"
        for entry in dict.fromkeys((base, spec.name))
        if isinstance(overrides.get(entry), Mapping)
        for field in overrides[entry]
    ]
    if spec.command is not None and spec.params is not None:
        keys += [key for key in spec.params.model_dump() if ":" not in key]
    return [{PARAMS_FILE: list(dict.fromkeys(keys))}] if keys else []


def _stage(spec: StageSpec, root: Path, overrides: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"cmd": f"python -m pivot run {shlex.quote(spec.name)}"}
    deps = list(dict.fromkeys([*spec.dep_paths, *_code_files(spec, root)]))
    body["deps"] = [path.rstrip("/") for path in deps]
    params = _params(spec, overrides)
    if params:
        body["params"] = params
    for out in spec.outs:
        section = _SECTION.get(out.kind, "outs")
        for path in out.paths:
            entry: Any = path.rstrip("/")
            if not out.cache:
                entry = {entry: {"cache": False}}
            body.setdefault(section, []).append(entry)
    return body


def export_dvc(
    start: Path | str | None = None, *, output: Path | str = "dvc.yaml", force: bool = False
) -> tuple[Path, tuple[str, ...]]:
    """Write the dvc.yaml; returns its path and the DVC stage names in order."""
    import yaml

    target = Path(os.path.abspath(Path(start or ".", output)))
    with api.open_context(start) as ctx:
        root = ctx.project.root
        if target.exists() and not force:
            raise MigrationError(f"{target} exists; pass --force to overwrite it")
        params_path = root / PARAMS_FILE
        overrides = read_marked(params_path).data if params_path.is_file() else {}
        stages: dict[str, Any] = {}
        for name in ctx.graph.order:
            renamed = dvc_name(name)
            if renamed in stages:
                raise MigrationError(
                    f"stages '{name}' and another both become DVC stage '{renamed}'; rename one"
                )
            stages[renamed] = _stage(ctx.graph.stages[name], root, overrides or {})
    header = (
        "# Written by `pivot export`: each stage runs through Pivot (`python -m pivot run NAME`),\n"
        "# which keeps its own locks and cache; regenerate it after changing the pipeline.\n"
    )
    text = header + yaml.safe_dump({"stages": stages}, sort_keys=False, width=100)
    fs.atomic_write_text(target, text)
    return target, tuple(stages)
