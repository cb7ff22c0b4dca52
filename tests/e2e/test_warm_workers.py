"""A `pivot repro` after the user's code was edited (since its no-op snapshot was written) starts
its pool workers before it plans, when it cannot fork them once planned (a library's native
thread runs): they import the stage modules meanwhile, and the run's stages then find them warm
(each stage module imported once per worker, the right code run). Where it can fork them, it
starts none early: the forked ones have every module imported already."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pivot import api
from tests.e2e.conftest import E2EProject

NOTE = """\
import multiprocessing, os
if multiprocessing.current_process().name.startswith("Loky"):  # a pool worker (only: the
    # pipeline's own import must write nothing, or no no-op snapshot is taken)
    with open(os.environ["IMPORT_LOG"], "a") as _log:
        _log.write(f"{__name__} {os.getpid()}\\n")
"""

HELPER = 'def shout(text: str) -> str:\n    return text.upper() + "{mark}"\n'

EDITED = NOTE + """\
from typing import Annotated

from helper import shout
from pivot import loaders
from pivot.outputs import Dep, Out


def left(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[str, Out("left.txt", loaders.Text())]:
    return shout(raw)


def right(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[str, Out("right.txt", loaders.Text())]:
    return shout(raw) + "."
"""

UNTOUCHED = NOTE + """\
from typing import Annotated

from pivot import loaders
from pivot.outputs import Dep, Out


def other(raw: Annotated[str, Dep("other.in", loaders.Text())]) -> Annotated[str, Out("other.txt", loaders.Text())]:
    return raw


def filler(raw: Annotated[str, Dep("filler.in", loaders.Text())]) -> Annotated[str, Out("fill/x.txt", loaders.Text())]:
    return raw
"""

PIPELINE = f"""\
import edited, untouched

FILLERS = {api.WARM_FROM_STAGES}

pipeline = Pipeline("warm")
pipeline.register(edited.left)
pipeline.register(edited.right)
pipeline.register(untouched.other)
for index in range(FILLERS):  # (workers are started early for large pipelines only)
    pipeline.register(
        untouched.filler, name=f"filler{{index}}", out_path_overrides={{"return": f"fill/{{index}}.txt"}}
    )
"""


NATIVE_THREAD = """\
import faulthandler
faulthandler.dump_traceback_later(3600)  # a native thread, as OpenBLAS starts one on import
"""


def _edited_project(project: E2EProject, pipeline: str) -> None:
    project.gen(
        {
            "raw.txt": "ab",
            "other.in": "x",
            "filler.in": "f",
            "helper.py": HELPER.format(mark="!"),
            "edited.py": EDITED,
            "untouched.py": UNTOUCHED,
        }
    )
    project.pipeline(pipeline)


def test_workers_started_before_planning_run_the_edited_code_importing_each_module_once(
    project: E2EProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "imports.log"
    _edited_project(project, NATIVE_THREAD + PIPELINE)  # (it cannot fork its workers)
    assert set(project.repro_json().values()) == {"ran"}
    time.sleep(0.3)  # (files written within 0.1 s of being read are not trusted by a snapshot)
    project.pivot("repro")  # a no-op: leaves the snapshot a plain repro answers from
    assert (project.root / ".pivot" / "noop-repro").is_file()

    project.gen({"helper.py": HELPER.format(mark="?")})
    monkeypatch.setenv("IMPORT_LOG", str(log))  # (the CLI's environment is this one's)
    result = project.pivot("repro", "--json", "-j", "2")

    acted = {name for name, value in result.json["stages"].items() if value["status"] != "skipped"}
    assert acted == {"left", "right"}
    assert project.read("left.txt") == "AB?" and project.read("right.txt") == "AB?."
    by_workers = [tuple(line.split()) for line in log.read_text().splitlines()]
    # the workers imported the stage modules while this run planned, untouched's too (no stage
    # of it ran), and kept them for the stages: never a module twice in one worker
    assert "untouched" in {name for name, _ in by_workers}
    assert len(by_workers) == len(set(by_workers))
    assert {name for name, _ in by_workers} == {"edited", "untouched"}

    # an edit that changes no code: workers are started, nothing runs, and what the plan read
    # is a sound snapshot (the workers' start left nothing in it): the next no-op answers fast
    time.sleep(0.3)
    project.pivot("repro")
    assert (project.root / ".pivot" / "noop-repro").is_file()
    project.gen({"helper.py": "# a comment\n" + HELPER.format(mark="?")})
    time.sleep(0.3)
    before = len(log.read_text().splitlines())
    result = project.pivot("repro", "--json", "-j", "2")
    assert {value["status"] for value in result.json["stages"].values()} == {"skipped"}
    assert len(log.read_text().splitlines()) > before  # (workers were started)
    snapshot = project.root / ".pivot" / "noop-repro"
    written = snapshot.stat().st_mtime_ns
    time.sleep(0.3)
    project.pivot("repro")
    assert snapshot.stat().st_mtime_ns == written  # answered from it, not written again

    # a data edit starts no workers: the one stage it re-runs runs in this process
    before = len(log.read_text().splitlines())
    project.gen({"other.in": "y"})
    result = project.pivot("repro", "--json", "-j", "2")
    acted = {name for name, value in result.json["stages"].items() if value["status"] != "skipped"}
    assert acted == {"other"}
    assert len(log.read_text().splitlines()) == before


def test_a_run_that_can_fork_its_workers_starts_none_before_planning(
    project: E2EProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "imports.log"
    _edited_project(project, PIPELINE)
    assert set(project.repro_json().values()) == {"ran"}
    time.sleep(0.3)
    project.pivot("repro")
    assert (project.root / ".pivot" / "noop-repro").is_file()

    project.gen({"helper.py": HELPER.format(mark="?")})
    monkeypatch.setenv("IMPORT_LOG", str(log))
    result = project.pivot("repro", "--json", "-j", "2")

    acted = {name for name, value in result.json["stages"].items() if value["status"] != "skipped"}
    assert acted == {"left", "right"}
    assert project.read("left.txt") == "AB?" and project.read("right.txt") == "AB?."
    assert not log.exists()  # no loky worker started, let alone imported a module
