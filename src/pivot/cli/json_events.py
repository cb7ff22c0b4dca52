"""`--json`: the engine's events as JSON Lines, one object per line as things happen.

Every object has `"event"` and `"schema"` (`SCHEMA`); `run_end` also holds the whole run report
(`stages`, `warnings`, `ok`), so a script reading only the last line keeps working. The schema is
documented in docs/cli.md and pinned by tests/e2e/test_json_events.py: change it only by adding
fields, or bump `SCHEMA`. Never runs anything.
"""

from __future__ import annotations

import json
from typing import IO, Any

from pivot.cli import render
from pivot.execute.events import (
    Event,
    FilesChanged,
    PipelineError,
    RunFinished,
    RunStarted,
    RunStatus,
    StageFinished,
    StageOutput,
    StageProgress,
    StageStarted,
    WatchReady,
)

__all__ = ["SCHEMA", "JsonEvents", "event_json"]

SCHEMA = 1


def _run_start(event: RunStarted) -> dict[str, Any]:
    steps = event.plan.steps
    return {
        "run_id": event.run_id,
        "stages": {
            step.stage: {
                "action": step.action.value,
                "reasons": [reason.summary for reason in step.reasons],
            }
            for step in steps
        },
        "warnings": list(event.plan.warnings),
    }


def _stage_end(event: StageFinished) -> dict[str, Any]:
    return {
        "stage": event.stage,
        "status": event.status.value,
        "reasons": list(event.reasons),
        "duration": round(event.duration, 4),
        "error": event.error,
        "index": event.index,
        "total": event.total,
    }


def _run_end(event: RunFinished) -> dict[str, Any]:
    counts = {status.value: 0 for status in RunStatus}
    for result in event.report.results:
        counts[result.status.value] += 1
    return {
        "run_id": event.run_id,
        "counts": counts,
        "duration": round(event.duration, 4),
        **render.report_json(event.report),
    }


def event_json(event: Event) -> dict[str, Any]:
    """The JSON object for one event (`schema` 1)."""
    match event:
        case RunStarted():
            name, body = "run_start", _run_start(event)
        case StageStarted(stage=stage, index=index, total=total):
            name, body = "stage_start", {"stage": stage, "index": index, "total": total}
        case StageOutput(stage=stage, lines=lines):
            name, body = "stage_output", {"stage": stage, "lines": list(lines)}
        case StageProgress(stage=stage, done=done, total=total, description=description):
            name = "stage_progress"
            body = {"stage": stage, "done": done, "total": total, "description": description}
        case StageFinished():
            name, body = "stage_end", _stage_end(event)
        case RunFinished():
            name, body = "run_end", _run_end(event)
        case WatchReady(paths=paths):
            name, body = "watch_ready", {"paths": list(paths)}
        case FilesChanged(paths=paths):
            name, body = "files_changed", {"paths": list(paths)}
        case PipelineError(message=message):
            name, body = "pipeline_error", {"error": message}
    return {"event": name, "schema": SCHEMA, **body}


class JsonEvents:
    """Writes each event as one JSON line and flushes (a reader sees it at once).

    `stage_output` is written only with `show_output`.
    """

    def __init__(self, stream: IO[str], *, show_output: bool = False) -> None:
        self.stream = stream
        self.show_output = show_output

    def __call__(self, event: Event) -> None:
        if isinstance(event, StageOutput) and not self.show_output:
            return
        self.stream.write(json.dumps(event_json(event), sort_keys=True) + "\n")
        self.stream.flush()
