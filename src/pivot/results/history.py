"""The run history as the user reads it: `pivot history` and `pivot show` (JSON and text).

Imports of Pivot: project and store.runs; never execute, api or cli.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pivot.project import Project
from pivot.store import runs
from pivot.store.runs import RunRecord

__all__ = ["STATUSES", "find", "history_text", "newest", "record_json", "show_text", "summary"]

STATUSES = ("ran", "restored", "skipped", "failed", "blocked", "interrupted")


def newest(project: Project, limit: int | None) -> list[RunRecord]:
    """The newest `limit` runs recorded in the project, newest first."""
    return runs.list_runs(runs.runs_dir(project.pivot_dir), limit)


def find(project: Project, run_id: str | None) -> RunRecord:
    """One run by id or id prefix; the newest when `run_id` is None."""
    return runs.find_run(runs.runs_dir(project.pivot_dir), run_id)


def record_json(record: RunRecord, *, stages: bool = True) -> dict[str, Any]:
    """The documented JSON shape of a run (docs/results.md)."""
    document = dataclasses.asdict(record)
    document["counts"] = {status: record.count(status) for status in STATUSES}
    document["warnings"] = list(record.warnings)
    if stages:
        document["stages"] = [
            {**dataclasses.asdict(stage), "reasons": list(stage.reasons)} for stage in record.stages
        ]
    else:
        del document["stages"]
    return document


def summary(record: RunRecord) -> str:
    """`3 ran, 1 restored, 2 up to date, 1 failed` (only the non-zero counts)."""
    words = {"skipped": "up to date", "blocked": "not run"}
    parts = [
        f"{record.count(status)} {words.get(status, status)}"
        for status in STATUSES
        if record.count(status)
    ]
    return ", ".join(parts) or "no stages"


def _outcome(record: RunRecord) -> str:
    if record.interrupted:
        return "interrupted"
    return "ok" if record.ok else "FAILED"


def _commit(record: RunRecord) -> str:
    if record.git is None:
        return "—"
    return record.git.commit[:8] + ("+dirty" if record.git.dirty else "")


def _when(record: RunRecord) -> str:
    return record.started[:19].replace("T", " ")


def history_text(records: list[RunRecord]) -> str:
    """One line per run, newest first."""
    if not records:
        return "No runs recorded yet: `pivot repro` and `pivot run` record each run here."
    rows = [("RUN", "WHEN (UTC)", "COMMIT", "RESULT", "TIME", "STAGES", "COMMAND")]
    for record in records:
        rows.append(
            (
                record.id,
                _when(record),
                _commit(record),
                _outcome(record),
                f"{record.duration:.2f}s",
                summary(record),
                record.command,
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1]
        for row in rows
    )


def show_text(record: RunRecord) -> str:
    """One run in detail: header, then each stage with its status, duration and reasons."""
    git_line = "— (not in a git repository, or no commit yet)"
    if record.git is not None:
        branch = f" on {record.git.branch}" if record.git.branch else " (detached)"
        dirty = ", with uncommitted changes" if record.git.dirty else ""
        git_line = f"{record.git.commit[:12]}{branch}{dirty}"
    lines = [
        f"run      {record.id}",
        f"when     {_when(record)} UTC, took {record.duration:.2f}s",
        f"command  {record.command}",
        f"commit   {git_line}",
        f"result   {_outcome(record)}: {summary(record)}",
        f"versions Pivot {record.pivot_version}, Python {record.python_version}",
        "",
    ]
    for stage in record.stages:
        timing = f" ({stage.duration:.2f}s)" if stage.duration else ""
        status = {"skipped": "up to date", "blocked": "not run"}.get(stage.status, stage.status)
        lines.append(f"{stage.stage}: {status}{timing}")
        lines.extend(f"    {reason}" for reason in stage.reasons)
        if stage.error:
            lines.extend(f"    | {line}" for line in stage.error.rstrip().splitlines()[-15:])
    lines.extend(f"warning: {warning}" for warning in record.warnings)
    return "\n".join(lines)
