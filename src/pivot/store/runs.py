"""The run history (`.pivot/runs/<id>.json`): one record per `repro`/`run`, written atomically.

A record says when and how Pivot was run, at which git commit, and what happened to each stage
and why. Records are per machine (ignored by git) and pruned to the newest `KEEP`. Imports
nothing of Pivot's but `pivot.errors`, `pivot.fs` and the store itself.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pivot import fs
from pivot.errors import NoRecordError

__all__ = [
    "KEEP",
    "SCHEMA_VERSION",
    "GitState",
    "RunRecord",
    "StageRecord",
    "find_run",
    "list_runs",
    "new_run_id",
    "read_run",
    "runs_dir",
    "write_run",
]

SCHEMA_VERSION = 1
KEEP = 500
"""How many records are kept; older ones are deleted when a new run is written."""


@dataclasses.dataclass(frozen=True)
class GitState:
    """The commit the workspace was at, its branch (None when detached) and uncommitted changes."""

    commit: str
    branch: str | None
    dirty: bool


@dataclasses.dataclass(frozen=True)
class StageRecord:
    """What happened to one stage in a run: the plan's action and reasons, then the outcome."""

    stage: str
    action: str  # run / restore / skip (the plan's decision)
    status: str  # ran / restored / skipped / failed / blocked / interrupted
    reasons: tuple[str, ...] = ()
    duration: float = 0.0
    error: str = ""


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """One `repro`/`run`: when, the command, the git state, versions and each stage's record."""

    id: str
    started: str  # ISO 8601, UTC
    duration: float
    command: str
    git: GitState | None
    pivot_version: str
    python_version: str
    ok: bool
    interrupted: bool
    stages: tuple[StageRecord, ...]
    warnings: tuple[str, ...] = ()

    def count(self, status: str) -> int:
        return sum(1 for stage in self.stages if stage.status == status)


def runs_dir(pivot_dir: Path) -> Path:
    return Path(pivot_dir) / "runs"


def new_run_id(started: str) -> str:
    """A unique id that sorts by time: `20261130T070512.123Z-1a2b3c` from an ISO timestamp."""
    stamp = started.replace("-", "").replace(":", "").replace("+0000", "Z").replace("+00:00", "Z")
    return f"{stamp}-{os.urandom(3).hex()}"


def _stage_document(stage: StageRecord) -> dict[str, Any]:
    """One stage's record, leaving out the fields at their defaults (`_decode` restores them):
    a no-op of N stages writes N short lines."""
    document: dict[str, Any] = {
        "stage": stage.stage,
        "action": stage.action,
        "status": stage.status,
    }
    if stage.reasons:
        document["reasons"] = list(stage.reasons)
    if stage.duration:
        document["duration"] = stage.duration
    if stage.error:
        document["error"] = stage.error
    return document


def _encode(record: RunRecord) -> str:
    """The record as JSON: its fields indented, one line per stage (compact, C-encoded: cheap
    for 100,000 stages, still readable with `less`)."""
    fields = {
        "schema_version": SCHEMA_VERSION,
        **{field.name: getattr(record, field.name) for field in dataclasses.fields(record)},
        "git": dataclasses.asdict(record.git) if record.git is not None else None,
    }
    del fields["stages"]
    head = json.dumps(fields, indent=1, sort_keys=True, ensure_ascii=False)
    line = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode
    stages = ",\n".join("  " + line(_stage_document(stage)) for stage in record.stages)
    listed = f"[\n{stages}\n ]" if stages else "[]"
    fields_part = head.removesuffix("\n}")  # the object left open for "stages"
    return f'{fields_part},\n "stages": {listed}\n}}\n'


def write_run(directory: Path, record: RunRecord, *, keep: int = KEEP) -> Path:
    """Write `record` atomically as `<directory>/<id>.json`; keep only the newest `keep`."""
    path = Path(directory) / f"{record.id}.json"
    fs.atomic_write_text(path, _encode(record))
    for old in _record_paths(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def _record_paths(directory: Path) -> list[Path]:
    try:
        names = sorted(
            name
            for name in os.listdir(directory)
            if name.endswith(".json") and not fs.is_temp_name(name)
        )
    except FileNotFoundError:
        return []
    return [Path(directory) / name for name in names]


def _decode(document: Mapping[str, Any]) -> RunRecord:
    git = document.get("git")
    return RunRecord(
        id=str(document["id"]),
        started=str(document["started"]),
        duration=float(document["duration"]),
        command=str(document["command"]),
        git=GitState(str(git["commit"]), git.get("branch"), bool(git["dirty"])) if git else None,
        pivot_version=str(document["pivot_version"]),
        python_version=str(document["python_version"]),
        ok=bool(document["ok"]),
        interrupted=bool(document["interrupted"]),
        stages=tuple(
            StageRecord(
                stage=str(item["stage"]),
                action=str(item["action"]),
                status=str(item["status"]),
                reasons=tuple(str(reason) for reason in item.get("reasons", ())),
                duration=float(item.get("duration", 0.0)),
                error=str(item.get("error", "")),
            )
            for item in document["stages"]
        ),
        warnings=tuple(str(warning) for warning in document.get("warnings", ())),
    )


def read_run(path: Path) -> RunRecord | None:
    """The record in `path`; None when it is unreadable, of another schema or malformed."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        if document.get("schema_version") != SCHEMA_VERSION:
            return None
        return _decode(document)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def list_runs(directory: Path, limit: int | None = None) -> list[RunRecord]:
    """The newest `limit` readable records (all when None), newest first."""
    found: list[RunRecord] = []
    for path in reversed(_record_paths(directory)):
        record = read_run(path)
        if record is not None:
            found.append(record)
        if limit is not None and len(found) >= limit:
            break
    return found


def find_run(directory: Path, run_id: str | None) -> RunRecord:
    """The run with id (or unique id prefix) `run_id`; the newest run when None."""
    if run_id is None:
        newest = list_runs(directory, limit=1)
        if not newest:
            raise NoRecordError(
                "no run is recorded yet: every `pivot repro` and `pivot run` is; run one first"
            )
        return newest[0]
    matches = [path for path in _record_paths(directory) if path.stem.startswith(run_id)]
    if len(matches) != 1:
        problem = "matches no recorded run" if not matches else "matches several runs"
        raise NoRecordError(
            f"run id '{run_id}' {problem}; `pivot history` lists the runs and their ids"
        )
    record = read_run(matches[0])
    if record is None:
        raise NoRecordError(f"the record of run '{matches[0].stem}' is unreadable ({matches[0]})")
    return record
