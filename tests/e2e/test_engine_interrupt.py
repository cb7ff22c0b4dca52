"""End to end: `pivot repro` killed (SIGKILL) or interrupted (Ctrl-C) mid-stage, then run again.

The slow stages write a marker file when they start, then wait until a release file exists (a
bounded wait), so the test signals the run at a known point and the re-run finishes at once.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from typing import TYPE_CHECKING

import pytest

from pivot import fs
from pivot.store import hashing
from tests.e2e.integrity import group_gone, temp_files

if TYPE_CHECKING:
    from tests.e2e.conftest import E2EProject

PIPELINE = """
def _hold(name: str) -> None:
    \"\"\"Say this stage started, then wait (at most a minute) until the test releases it.\"\"\"
    pathlib.Path("markers").mkdir(exist_ok=True)
    pathlib.Path(f"markers/{name}.started").write_text(str(os.getpid()))
    deadline = time.monotonic() + 60
    while not pathlib.Path("markers/release").exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def first(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[str, Out("first.txt", loaders.Text())]:
    _ran("first")
    return raw.upper()


def slow_a(text: Annotated[str, Dep("first.txt", loaders.Text())]) -> Annotated[str, Out("a.txt", loaders.Text())]:
    _ran("slow_a")
    _hold("slow_a")
    return text + " a"


def slow_b(text: Annotated[str, Dep("first.txt", loaders.Text())]) -> Annotated[str, Out("b.txt", loaders.Text())]:
    _ran("slow_b")
    _hold("slow_b")
    return text + " b"


def last(
    a: Annotated[str, Dep("a.txt", loaders.Text())],
    b: Annotated[str, Dep("b.txt", loaders.Text())],
) -> Annotated[dict, Metric("last.json")]:
    _ran("last")
    return {"a": a, "b": b}


pipeline = Pipeline("interrupt")
pipeline.register(first)
pipeline.register(slow_a)
pipeline.register(slow_b)
pipeline.register(last)
"""


def _wait_for_markers(project: E2EProject, proc: subprocess.Popen[str], count: int) -> None:
    """Wait until `count` slow stages have started (in whatever order the run picks)."""
    markers = [project.root / "markers" / f"{name}.started" for name in ("slow_a", "slow_b")]
    deadline = time.monotonic() + 60
    while sum(marker.exists() for marker in markers) < count:
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            pytest.fail(
                f"the slow stages did not start; pivot exited {proc.returncode}\n{out}\n{err}"
            )
        time.sleep(0.02)


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, out, err


def _release_and_rerun(project: E2EProject) -> None:
    (project.root / "markers" / "release").write_text("go")
    assert project.repro_json() == {
        "first": "skipped",
        "slow_a": "ran",
        "slow_b": "ran",
        "last": "ran",
    }
    assert json.loads(project.read("last.json")) == {"a": "NEW a", "b": "NEW b"}
    assert project.repro_json() == dict.fromkeys(("first", "slow_a", "slow_b", "last"), "skipped")


@pytest.fixture
def ran_once(project: E2EProject) -> E2EProject:
    """Every stage ran once on raw.txt 'old'; then raw.txt changed to 'new'."""
    project.gen({"raw.txt": "old", "markers/release": "go"})
    project.pipeline(PIPELINE)
    project.repro_json()
    shutil.rmtree(project.root / "markers")
    project.gen({"raw.txt": "new"})
    project.runs()
    return project


def _locks(project: E2EProject) -> dict[str, bytes]:
    return {name: project.lock_path(name).read_bytes() for name in ("slow_a", "slow_b", "last")}


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_sigkill_mid_stage_then_repro_recovers(ran_once: E2EProject, jobs: str) -> None:
    old_locks = _locks(ran_once)
    proc = ran_once.start("repro", "-j", jobs)
    _wait_for_markers(ran_once, proc, int(jobs))

    os.killpg(proc.pid, signal.SIGKILL)
    code, _, _ = _finish(proc)

    assert code == -signal.SIGKILL
    assert group_gone(proc.pid)
    assert ran_once.read("first.txt") == "NEW"  # committed before the kill
    assert ran_once.lock("first")["deps"] == [
        {"path": "raw.txt", "hash": hashing.hash_file(ran_once.root / "raw.txt")}
    ]
    assert _locks(ran_once) == old_locks  # the killed stages' locks are the old, stale ones
    planned = ran_once.status_json()
    assert planned["first"]["action"] == "skip"
    assert planned["slow_a"]["action"] == "run"
    assert planned["slow_a"]["reasons"] == ["dependencies changed: first.txt"]
    _release_and_rerun(ran_once)


def test_the_spare_lock_file_of_a_killed_run_is_removed_by_the_next_run(
    ran_once: E2EProject,
) -> None:
    """A run rewrites lock files through a spare file (`fs.SpareFiles`): killed, it leaves the
    spare (a temp file) next to the locks; the next run deletes it, and leaves none itself."""
    proc = ran_once.start("repro", "-j", "1")
    _wait_for_markers(ran_once, proc, 1)  # `first` is committed: its old lock is the spare

    os.killpg(proc.pid, signal.SIGKILL)
    _finish(proc)

    stages_dir = ran_once.lock_path("first").parent
    assert [name for name in os.listdir(stages_dir) if fs.is_temp_name(name)] != []
    _release_and_rerun(ran_once)
    assert temp_files(ran_once.root) == []


def test_sigkill_on_a_first_run_leaves_no_lock(project: E2EProject) -> None:
    project.gen({"raw.txt": "new"})
    project.pipeline(PIPELINE)
    proc = project.start("repro", "-j", "1")
    _wait_for_markers(project, proc, 1)

    os.killpg(proc.pid, signal.SIGKILL)
    _finish(proc)

    assert project.lock_path("first").is_file()
    assert not project.lock_path("slow_a").exists() and not project.lock_path("slow_b").exists()
    assert not project.exists("a.txt") and not project.exists("b.txt")
    _release_and_rerun(project)


@pytest.mark.parametrize(("jobs", "whole_group"), [("1", False), ("2", True), ("2", False)])
def test_ctrl_c_mid_stage_exits_130_and_records_nothing(
    ran_once: E2EProject, jobs: str, whole_group: bool
) -> None:
    old_locks = _locks(ran_once)
    proc = ran_once.start("repro", "-j", jobs)
    _wait_for_markers(ran_once, proc, int(jobs))

    if whole_group:  # what a terminal's Ctrl-C does
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    code, _, err = _finish(proc)

    assert code == 130, err
    assert group_gone(proc.pid)  # pool workers were stopped too
    assert "Interrupted" in err and "pivot repro" in err
    assert "Traceback" not in err
    assert _locks(ran_once) == old_locks
    started = [name for name in ("a", "b") if ran_once.exists(f"markers/slow_{name}.started")]
    # the interrupted stages' last good outputs were put back; nothing new was written
    assert all(ran_once.read(f"{name}.txt") == f"OLD {name}" for name in started)
    _release_and_rerun(ran_once)
