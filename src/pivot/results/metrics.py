"""`pivot metrics show/diff`: the values of every `Metric` output, in the workspace or at git
revisions, flattened to dotted keys. Imports of Pivot: results, workspace, graph, spec, errors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from pivot.errors import UnknownStageError
from pivot.graph import Graph
from pivot.results import text
from pivot.results.revisions import WORKSPACE, Reader, Revision
from pivot.results.values import MISSING, Change, diff_tables, format_value, parse_metric_file
from pivot.spec import OutKind
from pivot.workspace import Context

__all__ = [
    "MetricFile",
    "MetricsDiff",
    "diff",
    "diff_json",
    "diff_text",
    "metric_outputs",
    "read",
    "show",
    "show_json",
    "show_text",
]


@dataclasses.dataclass(frozen=True)
class MetricFile:
    """One metric file at one revision: its values, or None (with `error` when unreadable)."""

    path: str
    stage: str
    values: Mapping[str, Any] | None
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class MetricsDiff:
    old: Revision
    new: Revision
    changes: tuple[Change, ...]


def metric_outputs(graph: Graph, targets: Sequence[str] = ()) -> dict[str, str]:
    """Metric path -> producing stage, in pipeline order; `targets` (stage names or metric
    paths) narrow it down."""
    found = {
        path: name
        for name in graph.order
        for out in graph.stages[name].outs
        if out.kind is OutKind.METRIC
        for path in out.paths
    }
    if not targets:
        return found
    chosen: dict[str, str] = {}
    for target in targets:
        picked = {p: s for p, s in found.items() if target in (p, s)}
        if not picked:
            known = ", ".join(found) or "none"
            raise UnknownStageError(
                f"'{target}' is neither a stage with a Metric output nor a metric file "
                f"(metric files: {known})"
            )
        chosen.update(picked)
    return chosen


def read(reader: Reader, revision: Revision, outputs: Mapping[str, str]) -> list[MetricFile]:
    """Every metric file of `outputs` at `revision` (one git batch for a commit)."""
    contents = reader.files(revision, list(outputs))
    files = []
    for path, stage in outputs.items():
        data = contents.get(path)
        if data is None:
            files.append(MetricFile(path, stage, None))
            continue
        try:
            files.append(MetricFile(path, stage, parse_metric_file(path, data)))
        except (ValueError, UnicodeDecodeError) as error:
            files.append(MetricFile(path, stage, None, f"cannot parse {path}: {error}"))
    return files


def show(ctx: Context, targets: Sequence[str] = ()) -> list[MetricFile]:
    """The metrics in the workspace."""
    reader = Reader(ctx)
    return read(reader, reader.revision(WORKSPACE), metric_outputs(ctx.graph, targets))


def diff(
    ctx: Context,
    old: str = "HEAD",
    new: str = WORKSPACE,
    *,
    include_unchanged: bool = False,
    targets: Sequence[str] = (),
) -> MetricsDiff:
    """Metric values at `old` and `new` (git revisions or WORKSPACE), key by key."""
    reader = Reader(ctx)
    outputs = metric_outputs(ctx.graph, targets)
    revisions = (reader.revision(old), reader.revision(new))
    tables = [{m.path: m.values for m in read(reader, rev, outputs)} for rev in revisions]
    changes = diff_tables(tables[0], tables[1], include_unchanged=include_unchanged)
    return MetricsDiff(revisions[0], revisions[1], tuple(changes))


# --- rendering ----------------------------------------------------------------------------------


def show_json(files: Sequence[MetricFile]) -> dict[str, Any]:
    return {
        "metrics": [
            {"path": f.path, "stage": f.stage, "values": f.values, "error": f.error} for f in files
        ]
    }


def show_text(files: Sequence[MetricFile], *, precision: int, markdown: bool = False) -> str:
    if not files:
        return "No Metric outputs are declared in this pipeline."
    rows = []
    for file in files:
        if file.values is None:
            rows.append([file.path, MISSING, file.error or "not produced yet"])
        for key, value in (file.values or {}).items():
            rows.append([file.path, key, format_value(value, precision)])
    return text.table(["Path", "Key", "Value"], rows, markdown=markdown)


def _revision_json(revision: Revision) -> dict[str, Any]:
    return {"rev": revision.name, "commit": revision.commit}


def diff_json(result: MetricsDiff) -> dict[str, Any]:
    return {
        "old": _revision_json(result.old),
        "new": _revision_json(result.new),
        "diff": [
            {"path": c.group, "key": c.key, "old": c.old, "new": c.new, "change": c.change}
            for c in result.changes
        ],
    }


def diff_text(result: MetricsDiff, *, precision: int, markdown: bool = False) -> str:
    if not result.changes:
        return f"No metric changed between {result.old.label} and {result.new.label}."
    rows = [
        [
            c.group,
            c.key,
            format_value(c.old, precision),
            format_value(c.new, precision),
            format_value(c.change, precision, signed=True),
        ]
        for c in result.changes
    ]
    headers = ["Path", "Key", result.old.label, result.new.label, "Change"]
    return text.table(headers, rows, markdown=markdown)
