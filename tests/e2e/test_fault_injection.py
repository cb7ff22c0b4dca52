"""Fault injection: `pivot repro` killed or interrupted at many points, then recovered.

Each trial changes the input, starts `pivot repro -j J` in its own process group, and after a
random delay sends one of: SIGKILL to the whole group, SIGKILL to the main process alone (what
an OOM kill does), or SIGINT to the group (Ctrl-C in a terminal). Then it checks:
  - every process of the run is gone (pool workers die with their parent),
  - every blob hashes to its name, every lock parses and references only blobs that exist,
  - the next `repro` exits 0, leaves no temp file, and its outputs are byte-identical to what a
    clean build of that input makes; a further `repro` runs nothing.
Kill points are timed from when the run holds the project lock. The normal run tries two kill
points of each kind and -j; `make soak` (tests/e2e/soak.py) tries hundreds and prints the counts.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import cli_env, run_pivot
from tests.e2e.integrity import group_gone, tree_bytes, violations

if TYPE_CHECKING:
    from tests.e2e.conftest import E2EProject

PIPELINE = """
def upper(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[str, Out("up.txt", loaders.Text())]:
    time.sleep(0.1)
    return raw.upper()


def shards(up: Annotated[str, Dep("up.txt", loaders.Text())]) -> Annotated[dict[str, str], DirectoryOut("shards/", loaders.Text())]:
    return {f"{i:02d}.txt": up * i for i in range(40)}


def left(up: Annotated[str, Dep("up.txt", loaders.Text())]) -> Annotated[str, Out("left.txt", loaders.Text())]:
    time.sleep(0.15)
    return up + " left"


def right(up: Annotated[str, Dep("up.txt", loaders.Text())]) -> Annotated[str, Out("sub/right.txt", loaders.Text())]:
    time.sleep(0.15)
    return up + " right"


def summary(
    left: Annotated[str, Dep("left.txt", loaders.Text())],
    right: Annotated[str, Dep("sub/right.txt", loaders.Text())],
    shards: Annotated[pathlib.Path, Dep("shards/", loaders.PathOnly())],
) -> Annotated[dict, Metric("summary.json")]:
    return {"left": left, "right": right, "shards": len(list(shards.iterdir()))}


pipeline = Pipeline("faults")
pipeline.register(upper)
pipeline.register(shards)
pipeline.register(left)
pipeline.register(right)
pipeline.register(summary)
"""

STAGES = ("upper", "shards", "left", "right", "summary")
OUTPUTS = ["up.txt", "shards", "left.txt", "sub/right.txt", "summary.json"]
KINDS = ("kill-group", "kill-main", "interrupt")


def expected_outputs(raw: str) -> dict[str, bytes]:
    """What a clean build makes from `raw` (the stages above, by hand)."""
    up = raw.upper()
    files = {f"shards/{i:02d}.txt": (up * i).encode() for i in range(40)}
    summary = {"left": up + " left", "right": up + " right", "shards": 40}
    return {
        "up.txt": up.encode(),
        **files,
        "left.txt": (up + " left").encode(),
        "sub/right.txt": (up + " right").encode(),
        "summary.json": json.dumps(summary).encode(),
    }


def _normalised(found: dict[str, bytes]) -> dict[str, bytes]:
    """The metric compared by value (its JSON layout belongs to the loader), the rest by bytes."""
    result = dict(found)
    if "summary.json" in result:
        result["summary.json"] = json.dumps(json.loads(result["summary.json"])).encode()
    return result


def _signal(proc: subprocess.Popen[str], kind: str) -> None:
    if kind == "kill-group":
        os.killpg(proc.pid, signal.SIGKILL)
    elif kind == "kill-main":
        os.kill(proc.pid, signal.SIGKILL)
    else:
        os.killpg(proc.pid, signal.SIGINT)


def _run_pivot(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pivot", *args],
        cwd=root,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _wait_until_running(project: E2EProject, proc: subprocess.Popen[str]) -> None:
    """Until the run holds the project lock (Python and Pivot have started: a Ctrl-C while the
    interpreter itself starts is Python's, not Pivot's, to handle)."""
    lock = project.root / ".pivot" / "lock"
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if lock.exists() and f'"pid": {proc.pid}' in lock.read_text():
            return
        time.sleep(0.01)


def one_trial(project: E2EProject, raw: str, kind: str, jobs: int, delay: float) -> list[str]:
    """Kill a run of input `raw` after `delay` seconds; every invariant it broke."""
    project.gen({"raw.txt": raw})
    proc = project.start("repro", "-j", str(jobs))
    _wait_until_running(project, proc)
    time.sleep(delay)
    if proc.poll() is None:
        _signal(proc, kind)
    try:
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    where = f"[{kind} -j {jobs} after {delay:.2f}s, exit {proc.returncode}]"
    problems = [] if group_gone(proc.pid, timeout=15) else ["a process of the run survived"]
    if kind == "interrupt" and proc.returncode not in (0, 130):
        problems.append(f"Ctrl-C exited {proc.returncode}, not 130: {err[-500:]}")
    problems += violations(project.root, temp_allowed=True)
    recovery = _run_pivot(project.root, "repro", "-j", str(jobs))
    if recovery.returncode != 0:
        problems.append(f"the next repro exited {recovery.returncode}: {recovery.stderr[-800:]}")
    problems += violations(project.root)
    found = _normalised(tree_bytes(project.root, OUTPUTS))
    if found != expected_outputs(raw):
        problems.append("outputs differ from a clean build")
    again = run_pivot(project.root, "repro", "--json", "-j", "1", expect=None)
    statuses = {name: value["status"] for name, value in again.json["stages"].items()}
    if set(statuses.values()) != {"skipped"}:
        problems.append(f"a further repro ran stages: {statuses}")
    return [f"{where} {problem}" for problem in problems]


def build(project: E2EProject) -> E2EProject:
    """The fault pipeline, built once on input 'start'."""
    project.gen({"raw.txt": "start"})
    project.pipeline(PIPELINE)
    project.pivot("repro", "-j", "1")
    assert _normalised(tree_bytes(project.root, OUTPUTS)) == expected_outputs("start")
    return project


@pytest.fixture
def faulty(project: E2EProject) -> E2EProject:
    return build(project)


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("kind", KINDS)
def test_killed_or_interrupted_runs_recover_exactly(
    faulty: E2EProject, kind: str, jobs: int
) -> None:
    rng = random.Random(f"{kind}-{jobs}")
    problems = []
    for trial in range(2):
        delay = rng.uniform(0.0, 1.2)
        problems += one_trial(faulty, f"value {kind} {jobs} {trial}", kind, jobs, delay)
    assert problems == []


WRITER = """
def scribble(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[str, Out("done.txt", loaders.Text())]:
    pathlib.Path("scribbles").mkdir(exist_ok=True)
    for i in range(600):  # about 12 s of writing a file every 20 ms
        pathlib.Path(f"scribbles/{os.getpid()}-{i}.txt").write_text(raw)
        time.sleep(0.02)
    return raw


def scribble_too(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[str, Out("done_too.txt", loaders.Text())]:
    return scribble(raw)


pipeline = Pipeline("writer")
pipeline.register(scribble)
pipeline.register(scribble_too)
"""


def test_pool_workers_die_with_their_parent_and_write_nothing_after(project: E2EProject) -> None:
    project.gen({"raw.txt": "x"})
    project.pipeline(WRITER)
    proc = project.start("repro", "-j", "2")
    scribbles = project.root / "scribbles"
    deadline = time.monotonic() + 60
    while len(list(scribbles.glob("*"))) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()

    os.kill(proc.pid, signal.SIGKILL)  # the main process alone, as an OOM kill does
    proc.communicate(timeout=30)

    assert group_gone(proc.pid, timeout=10), "a pool worker outlived pivot"
    written = sorted(os.listdir(scribbles))
    time.sleep(0.5)
    assert sorted(os.listdir(scribbles)) == written
    assert len(written) < 400  # they stopped long before finishing
    assert not project.exists("done.txt") and not project.exists("done_too.txt")
