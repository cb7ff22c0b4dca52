"""Records every `repro`/`run` in the run history: a subscriber of the engine's events that
writes one `store.runs.RunRecord` when the run ends, also when it fails or is interrupted.

Imports of Pivot: execute events and runner values, plan, project, store; never api or cli.
"""

from __future__ import annotations

import contextlib
import datetime
import platform
import shlex
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pivot
from pivot.execute.events import Event, RunReport, RunStarted, StageFinished
from pivot.plan import Action, Plan
from pivot.project import Project
from pivot.store import git, runs
from pivot.store.runs import RunRecord, StageRecord

__all__ = ["HistoryWarning", "RunRecorder", "command_line", "recording"]

MAX_ERROR_CHARS = 20_000


class HistoryWarning(UserWarning):
    """A run could not be written to `.pivot/runs/`; the run itself is unaffected."""


def command_line() -> str:
    """How this process was started, as the user typed it (`pivot repro -j 1`)."""
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    if program in ("__main__.py", "pivot", ""):
        program = "pivot"
    return shlex.join([program, *sys.argv[1:]])


def _clip(error: str) -> str:
    return error if len(error) <= MAX_ERROR_CHARS else "…" + error[-MAX_ERROR_CHARS:]


class RunRecorder:
    """Collects the plan and each finished stage from the event stream (use as an EventSink)."""

    def __init__(self, project: Project, command: str) -> None:
        self.project = project
        self.command = command
        self.started = datetime.datetime.now(datetime.UTC)
        self.id = runs.new_run_id(self.started.isoformat(timespec="milliseconds"))
        """The run id, made when the run starts: it names the record and the run's logs."""
        self.clock = time.perf_counter()
        self.plan: Plan | None = None
        self.finished: dict[str, StageFinished] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.plan = event.plan
        elif isinstance(event, StageFinished):
            self.finished[event.stage] = event

    def _stages(self, report: RunReport | None) -> tuple[StageRecord, ...]:
        steps = self.plan.steps if self.plan is not None else ()
        results = {result.stage: result for result in report.results} if report else {}
        records = []
        for step in steps:
            reasons = tuple(reason.summary for reason in step.reasons)
            if step.stage in results:
                result = results[step.stage]
                status, duration, error = result.status.value, result.duration, result.error
                reasons = result.reasons or reasons
            elif step.stage in self.finished:
                event = self.finished[step.stage]
                status, duration, error = event.status.value, event.duration, event.error
            else:
                status = "skipped" if step.action is Action.SKIP else "interrupted"
                duration, error = 0.0, ""
            records.append(
                StageRecord(step.stage, step.action.value, status, reasons, duration, _clip(error))
            )
        return tuple(records)

    def record(self, report: RunReport | None, *, interrupted: bool) -> RunRecord:
        """Write the record of this run (`report` is None when the run did not finish)."""
        started = self.started.isoformat(timespec="milliseconds")
        stages = self._stages(report)
        record = RunRecord(
            id=self.id,
            started=started,
            duration=round(time.perf_counter() - self.clock, 4),
            command=self.command,
            git=git.head_state(self.project.root),
            pivot_version=pivot.__version__,
            python_version=platform.python_version(),
            ok=report is not None and report.ok,
            interrupted=interrupted,
            stages=stages,
            warnings=tuple(report.warnings if report else self.plan.warnings if self.plan else ()),
        )
        try:
            runs.write_run(runs.runs_dir(self.project.pivot_dir), record)
        except OSError as error:  # the history must never fail a run that worked
            warnings.warn(
                f"this run could not be recorded in the history ({error})",
                HistoryWarning,
                stacklevel=2,
            )
        return record


@contextlib.contextmanager
def recording(project: Project, command: str | None = None) -> Iterator[RunRecorder]:
    """Yield a recorder to subscribe to the run's events. The caller calls `recorder.record(report,
    interrupted=False)` when the run completes; if it raises instead (Ctrl-C, a crash), what had
    finished is recorded here."""
    recorder = RunRecorder(project, command or command_line())
    try:
        yield recorder
    except BaseException as error:
        recorder.record(None, interrupted=isinstance(error, KeyboardInterrupt))
        raise
