"""End to end: two and three `pivot repro` started at once on one project.

The project lock lets one change the workspace at a time: the others wait (saying for whom) and
then find everything up to date. Every trial checks that each stage ran exactly once, no blob is
corrupt, no lock points at missing content, a 300-file directory output is whole and an
IncrementalOut lost no append. `PIVOT_SOAK=1` (`make soak`) runs many more trials.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import cli_env
from tests.e2e.integrity import violations

if TYPE_CHECKING:
    from tests.e2e.conftest import E2EProject

SOAK = os.environ.get("PIVOT_SOAK") == "1"

PIPELINE = """
def many(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[dict[str, str], DirectoryOut("many/", loaders.Text())]:
    _ran("many")
    time.sleep(0.2)
    return {f"{i:03d}.txt": f"{raw} {i}" for i in range(300)}


def total(files: Annotated[pathlib.Path, Dep("many/", loaders.PathOnly())]) -> Annotated[dict, Metric("total.json")]:
    _ran("total")
    return {"files": len(list(files.iterdir()))}


def history(
    seen: Annotated[list, IncrementalOut("history.json", loaders.JSON())],
    raw: Annotated[str, Dep("raw.txt", loaders.Text())],
) -> Annotated[list, IncrementalOut("history.json", loaders.JSON())]:
    _ran("history")
    time.sleep(0.1)
    return [*seen, raw]


pipeline = Pipeline("concurrent")
pipeline.register(many)
pipeline.register(total)
pipeline.register(history)
"""

STAGES = ("history", "many", "total")


@pytest.fixture
def built(project: E2EProject) -> E2EProject:
    project.gen({"raw.txt": "v0"})
    project.pipeline(PIPELINE)
    project.repro_json()
    assert sorted(project.runs()) == list(STAGES)
    return project


def _run_together(project: E2EProject, count: int, trial: int) -> list[tuple[int, str]]:
    """Start `count` repro processes at once (alternating -j 1 / -j 2); (exit code, stderr)."""
    procs = [project.start("repro", "-j", str(1 + (trial + i) % 2)) for i in range(count)]
    results = []
    for proc in procs:
        try:
            _out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        results.append((proc.returncode, err))
    return results


@pytest.mark.parametrize("count", [2, 3])
def test_simultaneous_repros_run_each_stage_once_and_corrupt_nothing(
    built: E2EProject, count: int
) -> None:
    trials = 12 if SOAK else 3
    for trial in range(1, trials + 1):
        built.gen({"raw.txt": f"v{trial}"})

        results = _run_together(built, count, trial)

        assert all(code == 0 for code, _err in results), results
        waited = [err for _code, err in results if "waiting for the project lock" in err]
        assert all("pivot repro" in err and "pid" in err for err in waited), waited
        assert sorted(built.runs()) == list(STAGES), f"trial {trial}"
        assert violations(built.root) == [], f"trial {trial}"
        assert json.loads(built.read("total.json")) == {"files": 300}
        assert built.read("many/299.txt") == f"v{trial} 299"
        assert json.loads(built.read("history.json")) == [f"v{i}" for i in range(trial + 1)]
    assert built.repro_json() == dict.fromkeys(STAGES, "skipped")


HOLD = """
def held(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[str, Out("held.txt", loaders.Text())]:
    _ran("held")
    pathlib.Path("started").write_text("yes")
    deadline = time.monotonic() + 60
    while not pathlib.Path("release").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return raw


pipeline = Pipeline("held")
pipeline.register(held)
"""


def _wait_for(path: os.PathLike[str], proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not os.path.exists(path):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)


def test_a_second_command_waits_or_fails_at_once_naming_the_holder(project: E2EProject) -> None:
    project.gen({"raw.txt": "x"})
    project.pipeline(HOLD)
    holder = project.start("repro", "-j", "1")
    try:
        _wait_for(project.root / "started", holder)

        refused = project.pivot("repro", "--no-wait", expect=2)
        assert "project is locked" in refused.stderr
        assert f"pid {holder.pid}" in refused.stderr and "pivot repro -j 1" in refused.stderr
        for command in (
            ("checkout", "--no-wait"),
            ("commit", "--no-wait"),
            ("run", "held", "--no-wait"),
        ):
            assert "project is locked" in project.pivot(*command, expect=2).stderr
        # read-only commands never block
        assert project.status_json()["held"]["action"] == "run"
        assert "held" in project.pivot("repro", "--dry-run").stdout

        log = project.root.parent / "waiter.err"
        with open(log, "w") as sink:
            waiter = subprocess.Popen(
                [sys.executable, "-m", "pivot", "repro", "-j", "1"],
                cwd=project.root,
                env=cli_env(),
                stdout=subprocess.DEVNULL,
                stderr=sink,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while "waiting for the project lock" not in log.read_text():
            assert waiter.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        (project.root / "release").write_text("go")
        holder.communicate(timeout=60)
        assert holder.returncode == 0
        assert waiter.wait(timeout=60) == 0, log.read_text()
        assert f"pid {holder.pid}" in log.read_text()
    finally:
        if holder.poll() is None:
            os.killpg(holder.pid, signal.SIGKILL)
            holder.communicate()
    assert project.runs() == ["held"]
    assert project.read("held.txt") == "x"


def test_a_lock_left_by_a_killed_command_is_taken_over(project: E2EProject) -> None:
    project.gen({"raw.txt": "x"})
    project.pipeline(HOLD)
    holder = project.start("repro", "-j", "1")
    _wait_for(project.root / "started", holder)
    os.killpg(holder.pid, signal.SIGKILL)
    holder.communicate(timeout=30)
    lock_text = (project.root / ".pivot" / "lock").read_text()
    assert str(holder.pid) in lock_text  # the dead holder's record is still there
    (project.root / "release").write_text("go")

    result = project.pivot("repro", "--no-wait")

    assert "project is locked" not in result.stderr
    assert project.read("held.txt") == "x"
    assert (project.root / ".pivot" / "lock").read_text() == ""


def test_gc_and_track_wait_for_a_running_repro(project: E2EProject) -> None:
    """gc must not decide what is garbage while a run adds blobs its lock does not name yet."""
    project.gen({"raw.txt": "x", "extra.bin": "data"})
    project.pipeline(HOLD)
    holder = project.start("repro", "-j", "1")
    try:
        _wait_for(project.root / "started", holder)
        waiters = [project.start("gc", "-f"), project.start("track", "extra.bin")]
        time.sleep(1.0)
        assert all(waiter.poll() is None for waiter in waiters), "gc/track did not wait"
        (project.root / "release").write_text("go")
        holder.communicate(timeout=60)
        for waiter in waiters:
            out, err = waiter.communicate(timeout=60)
            assert waiter.returncode == 0, out + err
    finally:
        for process in (holder,):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
    assert project.blob(project.out_hash("held", "held.txt")).is_file()
    assert (project.root / "extra.bin.pvt").is_file()
