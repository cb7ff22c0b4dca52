"""`pivot list`: each stage with its dependencies, outputs, params class and source location.

Imports of Pivot: plan, workspace, spec; never execute, api or cli.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any

from pivot.plan import current_params
from pivot.results import text
from pivot.spec import StageSpec
from pivot.workspace import Context

__all__ = ["StageInfo", "describe", "list_json", "list_text"]


@dataclasses.dataclass(frozen=True)
class StageInfo:
    name: str
    function: str
    source: str  # "pipeline.py:42", relative to the project root when inside it
    deps: tuple[str, ...]
    outs: tuple[tuple[str, str, bool], ...]  # (path, kind, cached)
    params_class: str | None
    params: dict[str, Any]
    upstream: tuple[str, ...]


def _source(spec: StageSpec, root: Path) -> str:
    func = inspect.unwrap(spec.func)
    try:
        file = inspect.getsourcefile(func) or "?"
        line = inspect.getsourcelines(func)[1]
    except (OSError, TypeError):
        code = getattr(func, "__code__", None)
        file, line = (code.co_filename, code.co_firstlineno) if code else ("?", 0)
    path = Path(file)
    if path.is_absolute() and path.is_relative_to(root):
        file = path.relative_to(root).as_posix()
    return f"{file}:{line}" if line else file


def describe(ctx: Context) -> list[StageInfo]:
    """Every stage of the pipeline, in topological order."""
    root = ctx.project.root
    found = []
    for name in ctx.graph.order:
        spec = ctx.graph.stages[name]
        cls = type(spec.params) if spec.params is not None else None
        found.append(
            StageInfo(
                name=name,
                function=f"{spec.func.__module__}.{spec.func.__qualname__}",
                source=_source(spec, root),
                deps=spec.dep_paths,
                outs=tuple((p, out.kind.value, out.cache) for out in spec.outs for p in out.paths),
                params_class=f"{cls.__module__}.{cls.__qualname__}" if cls else None,
                params=current_params(spec),
                upstream=tuple(sorted(ctx.graph.upstream[name])),
            )
        )
    return found


def list_json(stages: list[StageInfo]) -> dict[str, Any]:
    return {
        "stages": [
            {
                "name": s.name,
                "function": s.function,
                "source": s.source,
                "deps": list(s.deps),
                "outs": [{"path": p, "kind": k, "cache": c} for p, k, c in s.outs],
                "params_class": s.params_class,
                "params": s.params,
                "upstream": list(s.upstream),
            }
            for s in stages
        ]
    }


def list_text(stages: list[StageInfo]) -> str:
    if not stages:
        return "No stages."
    blocks = []
    for s in stages:
        lines = [f"{s.name}  ({s.function}, {s.source})"]
        rows = []
        if s.params_class:
            shown = ", ".join(f"{k}={v!r}" for k, v in s.params.items())
            rows.append(["  params", f"{s.params_class.rsplit('.', 1)[-1]}({shown})", ""])
        rows += [["  deps", path, ""] for path in s.deps]
        rows += [
            ["  outs", path, kind + ("" if cached else ", not cached")]
            for path, kind, cached in s.outs
        ]
        if rows:
            lines.append(text.table(["", "", ""], rows).split("\n", 1)[1])
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + f"\n\n{len(stages)} stage(s)."
