"""`pivot repro --watch` driven as a user would: edits on disk, the JSON event stream read live.

Each step asserts exactly which stages ran: a data file, a helper in a user module (the new
code must run in the pool's workers), a broken then fixed pipeline.py; outputs written by the
runs never trigger another run; Ctrl-C exits 130.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import E2EProject

HELPERS = 'def tag() -> str:\n    return "v1"\n'

PIPELINE = """
import helpers


def prepare(raw: Annotated[str, Dep("data.txt", loaders.Text())]) -> Annotated[str, Out("prepared.txt", loaders.Text())]:
    return raw.strip() + "\\n"


def left(text: Annotated[str, Dep("prepared.txt", loaders.Text())]) -> Annotated[str, Out("left.txt", loaders.Text())]:
    return f"{text.strip()} {helpers.tag()} pid={os.getpid()}\\n"


def right(text: Annotated[str, Dep("prepared.txt", loaders.Text())]) -> Annotated[str, Out("right.txt", loaders.Text())]:
    return f"{text.strip()} {helpers.tag()} pid={os.getpid()}\\n"


def solo(raw: Annotated[str, Dep("other.txt", loaders.Text())]) -> Annotated[dict, Metric("solo.json")]:
    return {"length": len(raw)}


pipeline = Pipeline("watched")
pipeline.register(prepare)
pipeline.register(left)
pipeline.register(right)
pipeline.register(solo)
"""


class EventStream:
    """Reads the watcher's stdout (one JSON object per line) on a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        assert proc.stdout is not None
        stdout = proc.stdout
        self.reader = threading.Thread(target=lambda: [self.lines.put(x) for x in stdout])
        self.reader.start()

    def close(self) -> None:
        """Stop the process if it still runs; close its pipes."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.reader.join()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()

    def next(self, timeout: float) -> dict[str, Any] | None:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            return None
        event: dict[str, Any] = json.loads(line)
        assert event["schema"] == 1, event
        self.seen.append(event)
        return event

    def until(self, wanted: Callable[[dict[str, Any]], bool], timeout: float = 60) -> list[Any]:
        """Events up to and including the first one `wanted` accepts."""
        deadline = time.monotonic() + timeout
        taken = []
        while time.monotonic() < deadline:
            event = self.next(timeout=max(0.01, deadline - time.monotonic()))
            if event is None:
                continue
            taken.append(event)
            if wanted(event):
                return taken
        self.fail(f"timed out; events so far: {taken}")
        raise AssertionError  # unreachable

    def run(self) -> dict[str, str]:
        """Wait for the next run to end; {stage: status} of the stages that ran or failed."""
        events = self.until(lambda e: e["event"] == "run_end")
        return {
            e["stage"]: e["status"]
            for e in events
            if e["event"] == "stage_end" and e["status"] != "skipped"
        }

    def ready(self) -> None:
        self.until(lambda e: e["event"] == "watch_ready")

    def fail(self, message: str) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        assert self.proc.stderr is not None
        pytest.fail(f"{message}\n--- stderr\n{self.proc.stderr.read()}")


def test_watch_reruns_exactly_what_changed(project: E2EProject) -> None:
    project.gen({"data.txt": "alpha\n", "other.txt": "x\n", "helpers.py": HELPERS})
    project.pipeline(PIPELINE)
    proc = project.start("repro", "--watch", "--json", "--debounce", "50", "-j", "2")
    stream = EventStream(proc)
    try:
        assert stream.run() == dict.fromkeys(("prepare", "left", "right", "solo"), "ran")
        stream.ready()
        assert project.read("left.txt").startswith("alpha v1")

        project.gen({"other.txt": "xyz\n"})
        assert stream.run() == {"solo": "ran"}
        stream.ready()

        project.gen({"data.txt": "beta!\n"})
        assert stream.run() == {"prepare": "ran", "left": "ran", "right": "ran"}
        stream.ready()

        project.gen({"helpers.py": HELPERS.replace("v1", "v2")})
        changed = stream.until(lambda e: e["event"] == "files_changed")[-1]
        assert changed["paths"] == ["helpers.py"]
        assert stream.run() == {"left": "ran", "right": "ran"}
        stream.ready()
        # the new helper ran in the worker processes (the pool ran left and right in parallel)
        assert project.read("left.txt").startswith("beta! v2")
        assert project.read("right.txt").startswith("beta! v2")

        good = project.read("pipeline.py")
        project.gen({"pipeline.py": good + "\ndef broken(:\n"})
        error = stream.until(lambda e: e["event"] in ("pipeline_error", "run_start"))[-1]
        assert error["event"] == "pipeline_error" and "SyntaxError" in error["error"]
        stream.ready()
        project.gen({"other.txt": "changed while broken\n"})  # watched with the last good scope
        again = stream.until(lambda e: e["event"] in ("pipeline_error", "run_start"))[-1]
        assert again["event"] == "pipeline_error"
        stream.ready()
        project.gen({"pipeline.py": good})
        assert stream.run() == {"solo": "ran"}
        stream.ready()

        # the runs' own outputs (and logs, state db, cache) never trigger another run
        assert stream.next(timeout=1.5) is None, stream.seen[-1]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
    finally:
        stream.close()
