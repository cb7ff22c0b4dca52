"""While a stage runs, Python's and the process's standard output go to its log; afterwards
both are what they were, whatever the stage did to them (closed `sys.stdout`, descriptor 1
pointed elsewhere), and no descriptor is left open, in a pool process (which keeps its copies
of descriptors 1 and 2 from stage to stage) as in-process."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import pytest

from pivot.execute import capture, worker
from pivot.loaders import Text
from pivot.outputs import Dep, Out
from tests.unit.execute.test_execute_capture import loud, run_log, task

LOUD = "loud read 'ab'\nfrom a subprocess\n"


def closing(raw: Annotated[str, Dep("raw.txt", Text())]) -> Annotated[str, Out("c.txt", Text())]:
    print("before closing")
    sys.stdout.close()
    return raw


def rerouting(raw: Annotated[str, Dep("raw.txt", Text())]) -> Annotated[str, Out("r.txt", Text())]:
    print("before rerouting", flush=True)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # (the descriptor opened here leaks: the stage's)
    os.dup2(1, 2)
    os.write(1, b"into the void\n")  # (print writes to sys.stdout: still the log)
    return raw


@pytest.fixture(params=["in-process", "pool process"])
def root(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "raw.txt").write_text("ab")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(capture, "_FILES", capture._Files())
    monkeypatch.setattr(capture, "_LATE", [])
    if request.param == "pool process":
        capture.link_logs_late()
    return tmp_path


def _identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def test_a_stage_closing_its_stdout_is_captured_and_the_next_one_prints_as_usual(
    root: Path,
) -> None:
    stdout = sys.stdout
    first = worker.execute_stage(task(root, closing))
    second = worker.execute_stage(task(root, loud))

    assert first.ok, first.error
    assert first.output == run_log(root, "closing") == "before closing\n"
    assert second.ok, second.error
    assert second.output == run_log(root, "loud") == LOUD
    assert sys.stdout is stdout and not stdout.closed


def test_the_standard_descriptors_come_back_and_none_is_left_open(root: Path) -> None:
    standard = _identity(1), _identity(2)
    worker.execute_stage(task(root, loud, name="warm"))  # the pool process's copies are made
    count = len(os.listdir("/proc/self/fd"))

    for number in range(4):
        outcome = worker.execute_stage(task(root, rerouting, name=f"r{number}"))
        assert outcome.ok, outcome.error
        assert (_identity(1), _identity(2)) == standard
        assert run_log(root, f"r{number}") == "before rerouting\n"
        outcome = worker.execute_stage(task(root, loud, name=f"l{number}"))
        assert run_log(root, f"l{number}") == LOUD

    assert len(os.listdir("/proc/self/fd")) == count + 4  # the 4 the stages leaked themselves
