"""`pivot params show/diff`: each stage's effective params as its lock file records them, in the
workspace or at git revisions. Imports of Pivot: results, workspace, errors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from pivot.results import text
from pivot.results.revisions import WORKSPACE, Reader, Revision
from pivot.results.values import MISSING, Change, diff_tables, flatten, format_value
from pivot.workspace import Context

__all__ = [
    "ParamsDiff",
    "StageParams",
    "diff",
    "diff_json",
    "diff_text",
    "show",
    "show_json",
    "show_text",
    "table_at",
]


@dataclasses.dataclass(frozen=True)
class StageParams:
    """A stage's recorded params (flattened), or None when it has no lock."""

    stage: str
    params: Mapping[str, Any] | None


@dataclasses.dataclass(frozen=True)
class ParamsDiff:
    old: Revision
    new: Revision
    changes: tuple[Change, ...]


def table_at(revision: Revision, stages: Sequence[str]) -> dict[str, dict[str, Any] | None]:
    """stage -> flattened recorded params at `revision` (None where the stage has no lock)."""
    return {
        name: flatten(dict(revision.locks[name].params)) if name in revision.locks else None
        for name in stages
    }


def _stages(ctx: Context, names: Sequence[str]) -> list[str]:
    if names:
        ctx.graph.check_known(names)
        return list(names)
    return list(ctx.graph.order)


def show(ctx: Context, stages: Sequence[str] = ()) -> list[StageParams]:
    """The params each stage's lock in the workspace records."""
    revision = Reader(ctx).revision(WORKSPACE)
    return [
        StageParams(name, params)
        for name, params in table_at(revision, _stages(ctx, stages)).items()
    ]


def diff(
    ctx: Context,
    old: str = "HEAD",
    new: str = WORKSPACE,
    *,
    include_unchanged: bool = False,
    stages: Sequence[str] = (),
) -> ParamsDiff:
    """Recorded params at `old` and `new`; stages removed or added since are included."""
    reader = Reader(ctx)
    revisions = (reader.revision(old), reader.revision(new))
    names = (
        list(stages)
        if stages
        else list(dict.fromkeys([*ctx.graph.order, *revisions[0].locks, *revisions[1].locks]))
    )
    tables = [table_at(revision, names) for revision in revisions]
    changes = diff_tables(tables[0], tables[1], include_unchanged=include_unchanged)
    return ParamsDiff(revisions[0], revisions[1], tuple(changes))


def show_json(found: Sequence[StageParams]) -> dict[str, Any]:
    return {
        "params": [
            {"stage": s.stage, "recorded": s.params is not None, "params": s.params or {}}
            for s in found
        ]
    }


def show_text(found: Sequence[StageParams], *, markdown: bool = False) -> str:
    rows = []
    for item in found:
        if item.params is None:
            rows.append([item.stage, MISSING, "never run (no lock file)"])
        elif not item.params:
            rows.append([item.stage, MISSING, "no params"])
        for key, value in (item.params or {}).items():
            rows.append([item.stage, key, format_value(value, 12)])
    return text.table(["Stage", "Param", "Value"], rows, markdown=markdown)


def diff_json(result: ParamsDiff) -> dict[str, Any]:
    return {
        "old": {"rev": result.old.name, "commit": result.old.commit},
        "new": {"rev": result.new.name, "commit": result.new.commit},
        "diff": [
            {"stage": c.group, "param": c.key, "old": c.old, "new": c.new, "change": c.change}
            for c in result.changes
        ],
    }


def diff_text(result: ParamsDiff, *, markdown: bool = False) -> str:
    if not result.changes:
        return f"No param changed between {result.old.label} and {result.new.label}."
    rows = [
        [
            c.group,
            c.key,
            format_value(c.old, 12),
            format_value(c.new, 12),
            format_value(c.change, 12, signed=True),
        ]
        for c in result.changes
    ]
    return text.table(
        ["Stage", "Param", result.old.label, result.new.label, "Change"], rows, markdown=markdown
    )
