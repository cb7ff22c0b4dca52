"""The fast no-op: a plain `pivot repro` / `pivot status` answered from the no-op snapshot
(`store.snapshot`) without importing `pipeline.py`, when nothing it recorded changed.

Each function returns False when the snapshot cannot answer (missing, corrupt, anything
changed, the project lock busy or left by a killed holder): the caller then takes the usual
path, which writes a fresh snapshot when it again decides there is nothing to do. What is
printed, written (the run record) and returned is what the usual path gives for a no-op.
Imports of Pivot: project, store, plan and execute values, the cli's renderers; never api.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pivot
from pivot import project
from pivot.errors import NotInitializedError
from pivot.execute import recorder
from pivot.execute.events import (
    EventSink,
    RunFinished,
    RunReport,
    RunStarted,
    RunStatus,
    StageResult,
)
from pivot.fs import PIVOT_DIR
from pivot.plan import Action, Plan, Step
from pivot.store import project_lock, snapshot
from pivot.store.project_lock import Holder
from pivot.store.snapshot import Snapshot

__all__ = ["repro", "status"]


class _TakeOver(Exception):
    """The previous holder of the project lock was killed: the usual path cleans up after it
    (not a PivotError, so the lock file keeps naming an unclean end)."""


def _found(command: str) -> tuple[Path, Snapshot] | None:
    """(the project's root, its snapshot of `command`), if it has one."""
    try:
        root = project.find_root(Path.cwd())
    except NotInitializedError:
        return None
    found = snapshot.load(root / PIVOT_DIR, command)
    return None if found is None or found.root != str(root) else (root, found)


def _holds(found: Snapshot) -> bool:
    return snapshot.holds(found, version=pivot.__version__, environ=os.environ)


def _plan(found: Snapshot) -> Plan:
    """The plan the snapshot's decision made: every stage up to date."""
    steps = tuple(
        Step(
            stage=name,
            action=Action.SKIP,
            reasons=(),
            code={},
            params={},
            previous=None,
            packages=found.packages.get(name, {}),
            cutoff=None,
        )
        for name in found.stages
    )
    return Plan(steps, found.warnings)


def status() -> Plan | None:
    """The plan of a plain `pivot status`, or None when the snapshot cannot answer."""
    found = _found("status")
    return _plan(found[1]) if found is not None and _holds(found[1]) else None


def repro(
    emit: EventSink, *, wait: bool, on_wait: Callable[[Holder | None], None]
) -> RunReport | None:
    """A plain `pivot repro` that has nothing to do: take the project lock as `repro` does,
    record the run, emit its events; None (nothing done) when the snapshot cannot answer."""
    started = time.perf_counter()
    loaded = _found("repro")
    if loaded is None:
        return None
    root, found = loaded
    pivot_dir = root / PIVOT_DIR
    lock_path = pivot_dir / project.LOCK_FILE
    if project_lock.read_holder(lock_path) is not None:
        return None  # another command is running, or was killed: the usual path deals with it
    proj = project.load_project(root)
    try:
        with project_lock.hold(
            lock_path, recorder.command_line(), wait=wait, on_wait=on_wait
        ) as held:
            if held.interrupted is not None:
                raise _TakeOver
            if not _holds(found):  # (checked under the lock: no command changes it meanwhile)
                return None
            decided = _plan(found)
            with recorder.recording(proj) as record:
                record(RunStarted(record.id, decided))
                emit(RunStarted(record.id, decided))
                results = tuple(StageResult(s.stage, RunStatus.SKIPPED, ()) for s in decided.steps)
                report = RunReport(results, decided.warnings)
                record.record(report, interrupted=False)
    except _TakeOver:
        return None
    emit(RunFinished(record.id, report, time.perf_counter() - started))
    return report
