"""Plain output lines are shown while a run goes on: the line announcing a stage appears while
that stage still runs (lines are written many at once, but never held while Pivot waits)."""

from __future__ import annotations

import queue
import threading
import time
from typing import IO

import pytest

from tests.e2e.conftest import E2EProject

PIPELINE = """
def first(text: Annotated[str, Dep("data/in.txt", loaders.Text())]) -> Annotated[str, Out("out/first.txt", loaders.Text())]:
    return text.upper()


def slow(text: Annotated[str, Dep("out/first.txt", loaders.Text())]) -> Annotated[str, Out("out/slow.txt", loaders.Text())]:
    deadline = time.monotonic() + 60
    while not pathlib.Path("release").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return text + "slow\\n"


pipeline = Pipeline("prompt")
pipeline.register(first)
pipeline.register(slow)
"""


def _lines(stream: IO[str]) -> tuple[queue.Queue[str], threading.Thread]:
    """The lines of `stream` as they come, read on a thread (which ends with the stream)."""
    found: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in stream:
            found.put(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return found, reader


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_the_line_of_a_running_stage_shows_before_it_ends(project: E2EProject, jobs: str) -> None:
    project.gen({"data/in.txt": "hello\n"})
    project.pipeline(PIPELINE)
    running = project.start("repro", "-j", jobs)
    assert running.stdout is not None and running.stderr is not None
    (lines, reader), seen = _lines(running.stdout), []
    try:
        deadline = time.monotonic() + 30
        while "[2/2] slow ..." not in seen:
            assert time.monotonic() < deadline, f"not shown while the stage runs: {seen}"
            try:
                seen.append(lines.get(timeout=0.5))
            except queue.Empty:
                continue
        assert seen == ["[1/2] first ...", "[1/2] first done" + seen[1][16:], "[2/2] slow ..."]
        assert not (project.root / "out/slow.txt").exists()
    finally:
        (project.root / "release").write_text("")
        code = running.wait(60)
        reader.join(10)
        running.stdout.close()
        running.stderr.close()
    assert code == 0
    assert (project.root / "out/slow.txt").read_text() == "HELLO\nslow\n"
