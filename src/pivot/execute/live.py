"""Follow running stages as they go: new lines in their logs and their `pivot.progress` reports.

A helper thread polls the log files the workers write (every `INTERVAL` seconds) and emits
`StageOutput` and `StageProgress` events; it works the same for in-process and pool workers.
Imports of Pivot: events, store.logs, stage_progress.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import threading
from pathlib import Path

from pivot.execute.events import EventSink, StageOutput, StageProgress
from pivot.stage_progress import read_progress
from pivot.store import logs

__all__ = ["INTERVAL", "LiveOutput"]

INTERVAL = 0.1


@dataclasses.dataclass
class _Followed:
    """How far one running stage's log has been read, and its last progress report."""

    log: str
    offset: int = 0
    partial: bytes = b""
    progress: tuple[int, int | None, str] | None = None


class LiveOutput:
    """Emits what running stages print, line by line, and their progress, while they run.

    `follow` when a stage starts, `finish` (emits the rest) before its end is reported, `close`
    at the end of the run. All emitting happens under one lock, so events stay ordered.
    Only the `watch` oldest followed stages are polled (stages run in the order they start: the
    others wait in a queue behind them); None polls all.
    """

    def __init__(self, emit: EventSink, watch: int | None = None) -> None:
        self._emit = emit
        self._watch = watch
        self._lock = threading.Lock()
        self._followed: dict[str, _Followed] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="pivot-live-output", daemon=True)
        self._thread.start()

    def follow(self, stage: str, log: Path | str) -> None:
        with self._lock:
            self._followed[stage] = _Followed(os.fspath(log))

    def finish(self, stage: str, *, printed: bool = True, progressed: bool = True) -> None:
        """Emit what is left of a stage that ended. `printed` False: its log is known to be
        empty; `progressed` False: it is known to have left no progress report (neither is
        looked at then)."""
        with self._lock:
            followed = self._followed.pop(stage, None)
            if followed is not None:
                self._read(stage, followed, final=True, printed=printed, progressed=progressed)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._stop.wait(INTERVAL):
            with self._lock:
                stages = list(itertools.islice(self._followed, self._watch))
            for stage in stages:  # one at a time: `finish` never waits for a whole sweep
                with self._lock:
                    followed = self._followed.get(stage)
                    if followed is not None:
                        self._read(stage, followed, final=False)

    def _read(
        self,
        stage: str,
        followed: _Followed,
        *,
        final: bool,
        printed: bool = True,
        progressed: bool = True,
    ) -> None:
        """Emit complete new lines (and on `final`, an unterminated last one), then progress."""
        chunk = b""
        try:
            if printed and os.stat(followed.log).st_size != followed.offset:  # a stat per quiet log
                with open(followed.log, "rb") as handle:
                    handle.seek(followed.offset)
                    chunk = handle.read()
        except OSError:
            pass
        followed.offset += len(chunk)
        data = followed.partial + chunk
        *complete, followed.partial = data.split(b"\n")
        if final and followed.partial:
            complete.append(followed.partial)
            followed.partial = b""
        if complete:
            lines = tuple(line.decode("utf-8", errors="replace").rstrip("\r") for line in complete)
            self._emit(StageOutput(stage, lines))
        if not progressed:
            return
        found = read_progress(followed.log + logs.PROGRESS_SUFFIX)  # logs.progress_path
        if found is not None and found != followed.progress:
            followed.progress = found
            self._emit(StageProgress(stage, *found))
