"""Typed events an execution emits; the console, --json output and progress are subscribers.

An emitter may be called from a helper thread (live output), so a sink must be quick and must
not assume the main thread. A sink may hold lines back to write many at once if it has a
`flush()` method, which the runner calls (`flush_sink`) before it waits, and before a step
that runs in this process. Imports nothing of Pivot's but the plan's values.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping

from pivot.plan import Plan, WrittenLock

__all__ = [
    "Event",
    "EventSink",
    "FilesChanged",
    "PipelineError",
    "RunFinished",
    "RunReport",
    "RunStarted",
    "RunStatus",
    "StageFinished",
    "StageOutput",
    "StageProgress",
    "StageResult",
    "StageStarted",
    "WatchReady",
    "flush_sink",
]


class RunStatus(enum.Enum):
    """The result of one stage in a run."""

    RAN = "ran"
    SKIPPED = "skipped"
    RESTORED = "restored"
    FAILED = "failed"
    BLOCKED = "blocked"  # not run because an upstream stage failed or the run stopped early


@dataclasses.dataclass(frozen=True)
class StageResult:
    stage: str
    status: RunStatus
    reasons: tuple[str, ...]
    duration: float = 0.0
    output: str = ""
    error: str = ""
    worker: str = ""  # the cluster worker that ran it ("" on this machine)


@dataclasses.dataclass(frozen=True)
class RunReport:
    """Per-stage results in plan order, and the plan's warnings."""

    results: tuple[StageResult, ...]
    warnings: tuple[str, ...] = ()
    locks: Mapping[str, WrittenLock] = dataclasses.field(
        default_factory=dict, repr=False, compare=False
    )  # the locks pool workers wrote, by stage (for the plan made again after the run)

    @property
    def failed(self) -> tuple[StageResult, ...]:
        return tuple(r for r in self.results if r.status is RunStatus.FAILED)

    @property
    def ok(self) -> bool:
        return not any(r.status in (RunStatus.FAILED, RunStatus.BLOCKED) for r in self.results)


@dataclasses.dataclass(frozen=True)
class RunStarted:
    """The plan is decided and execution starts next (`--explain` prints the plan here).

    `run_id` names this run's logs (`pivot logs STAGE --run ID`) and its history.
    """

    run_id: str
    plan: Plan


@dataclasses.dataclass(frozen=True)
class StageStarted:
    stage: str
    index: int
    total: int


@dataclasses.dataclass(frozen=True)
class StageOutput:
    """Lines a running stage printed (stdout and stderr, in the order written)."""

    stage: str
    lines: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class StageProgress:
    """A running stage's own report of how far it is (`pivot.progress`)."""

    stage: str
    done: int
    total: int | None
    description: str = ""


@dataclasses.dataclass(frozen=True)
class StageFinished:
    """A stage's result; `index` is 0 for a stage that never started (blocked)."""

    stage: str
    status: RunStatus
    index: int
    total: int
    duration: float
    output: str = ""
    error: str = ""
    reasons: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class RunFinished:
    """The run is over: every stage's result, and how long the whole run took."""

    run_id: str
    report: RunReport
    duration: float


@dataclasses.dataclass(frozen=True)
class WatchReady:
    """Watch mode is waiting for changes under `paths` (project-relative directories)."""

    paths: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class FilesChanged:
    """Watch mode saw these project-relative paths change; a run follows."""

    paths: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class PipelineError:
    """Watch mode could not load or plan the pipeline; it keeps watching for a fix."""

    message: str


Event = (
    RunStarted
    | StageStarted
    | StageOutput
    | StageProgress
    | StageFinished
    | RunFinished
    | WatchReady
    | FilesChanged
    | PipelineError
)
EventSink = Callable[[Event], None]


def flush_sink(sink: EventSink) -> None:
    """Have `sink` write out the lines it holds back, if it holds any back (see the module)."""
    flush = getattr(sink, "flush", None)
    if flush is not None:
        flush()
