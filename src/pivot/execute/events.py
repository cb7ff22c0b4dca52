"""Typed events an execution emits; the console, --json output and progress are subscribers.

Imports nothing of Pivot's but the plan's values.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable

from pivot.plan import Plan

__all__ = ["Event", "EventSink", "PlanReady", "RunStatus", "StageFinished", "StageStarted"]


class RunStatus(enum.Enum):
    """The result of one stage in a run."""

    RAN = "ran"
    SKIPPED = "skipped"
    RESTORED = "restored"
    FAILED = "failed"
    BLOCKED = "blocked"  # not run because an upstream stage failed or the run stopped early


@dataclasses.dataclass(frozen=True)
class PlanReady:
    """The plan is decided; execution starts next (`--explain` prints it here)."""

    plan: Plan


@dataclasses.dataclass(frozen=True)
class StageStarted:
    stage: str
    index: int
    total: int


@dataclasses.dataclass(frozen=True)
class StageFinished:
    stage: str
    status: RunStatus
    index: int
    total: int
    duration: float
    output: str = ""
    error: str = ""


Event = PlanReady | StageStarted | StageFinished
EventSink = Callable[[Event], None]
