"""LiveOutput: lines of followed logs as they are written; only the oldest `watch` are polled."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from pivot.execute import live
from pivot.execute.events import Event, StageOutput


def _lines(events: list[Event], stage: str) -> list[str]:
    return [
        line for e in events if isinstance(e, StageOutput) and e.stage == stage for line in e.lines
    ]


def _wait_for(check: Callable[[], object], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_only_the_oldest_watched_stages_are_polled_and_finish_reads_the_rest(
    tmp_path: Path,
) -> None:
    events: list[Event] = []
    guard = threading.Lock()

    def emit(event: Event) -> None:
        with guard:
            events.append(event)

    running, queued = tmp_path / "running.log", tmp_path / "queued.log"
    output = live.LiveOutput(emit, watch=1)
    try:
        output.follow("running", running)
        output.follow("queued", queued)
        running.write_text("first line\n")
        queued.write_text("printed while queued\n")
        _wait_for(lambda: _lines(events, "running"))
        time.sleep(3 * live.INTERVAL)  # several sweeps: the queued stage is not among them

        assert _lines(events, "running") == ["first line"]
        assert _lines(events, "queued") == []

        output.finish("running")  # now "queued" is the oldest followed: polled live
        with queued.open("a") as handle:
            handle.write("more\n")
        _wait_for(lambda: len(_lines(events, "queued")) == 2)
        assert _lines(events, "queued") == ["printed while queued", "more"]

        with queued.open("a") as handle:
            handle.write("last, unterminated")
        output.finish("queued")
        assert _lines(events, "queued") == ["printed while queued", "more", "last, unterminated"]
    finally:
        output.close()


def test_without_watch_every_followed_stage_is_polled(tmp_path: Path) -> None:
    events: list[Event] = []
    output = live.LiveOutput(events.append)
    try:
        logs = {name: tmp_path / f"{name}.log" for name in ("a", "b", "c")}
        for name, log in logs.items():
            output.follow(name, log)
            log.write_text(f"{name} says hi\n")
        _wait_for(lambda: all(_lines(events, name) for name in logs))
        assert {name: _lines(events, name) for name in logs} == {
            name: [f"{name} says hi"] for name in logs
        }
    finally:
        output.close()
