"""End to end: a stage that fails (or cannot save every output) keeps its last good outputs, even
uncached ones; a stage killed mid-run gets them back at the next run; lock-file writes and
output saves that the OS refuses are reported as Pivot errors naming the path and the fix."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import TYPE_CHECKING

from tests.e2e.integrity import violations

if TYPE_CHECKING:
    from tests.e2e.conftest import E2EProject

PIPELINE = """
class Outputs(TypedDict):
    table: Annotated[dict, Out("out/table.json", loaders.JSON())]
    score: Annotated[object, Metric("metrics/score.json")]


def build(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Outputs:
    _ran("build")
    if raw == "raise":
        raise ValueError("bad input")
    if raw == "hold":
        pathlib.Path("started").write_text("yes")
        time.sleep(60)
    score = {"n": len(raw)} if raw != "unsaveable" else {"n": object()}
    return {"table": {"raw": raw}, "score": score}


pipeline = Pipeline("keeps")
pipeline.register(build)
"""


def _good(project: E2EProject) -> dict[str, str]:
    return {path: project.read(path) for path in ("out/table.json", "metrics/score.json")}


def _built(project: E2EProject) -> dict[str, str]:
    project.gen({"raw.txt": "good"})
    project.pipeline(PIPELINE)
    project.repro_json()
    project.runs()
    return _good(project)


def test_a_stage_that_raises_keeps_its_last_good_outputs(project: E2EProject) -> None:
    before = _built(project)
    lock_before = project.lock_path("build").read_bytes()
    project.gen({"raw.txt": "raise"})

    result = project.pivot("repro", "-j", "1", expect=1)

    assert "bad input" in result.output
    assert _good(project) == before
    assert project.lock_path("build").read_bytes() == lock_before
    assert violations(project.root) == []
    project.gen({"raw.txt": "fixed"})
    project.repro_json()
    assert json.loads(project.read("out/table.json")) == {"raw": "fixed"}


def test_an_output_that_cannot_be_saved_puts_back_the_ones_already_saved(
    project: E2EProject,
) -> None:
    before = _built(project)
    project.gen({"raw.txt": "unsaveable"})

    result = project.pivot("repro", "-j", "1", expect=1)

    assert "metrics/score.json" in result.output
    assert _good(project) == before  # out/table.json was saved first, then put back
    assert violations(project.root) == []


def test_a_stage_killed_mid_run_gets_its_outputs_back_at_the_next_run(
    project: E2EProject,
) -> None:
    before = _built(project)
    project.gen({"raw.txt": "hold"})
    proc = project.start("repro", "-j", "1")
    deadline = time.monotonic() + 60
    while not project.exists("started") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not project.exists("metrics/score.json")  # set aside while the stage runs
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)

    assert project.pivot("status", "--json").json["stages"]["build"]["action"] == "run"
    project.gen({"raw.txt": "good"})
    assert project.repro_json() == {"build": "skipped"}  # the metric is back: nothing to do

    assert _good(project) == before
    assert violations(project.root) == []


def test_a_lock_file_that_cannot_be_written_fails_the_stage_with_the_path_and_fix(
    project: E2EProject,
) -> None:
    _built(project)
    stages = project.root / ".pivot" / "stages"
    for lock_file in stages.iterdir():
        lock_file.unlink()
    stages.rmdir()
    stages.write_text("not a directory")  # a real OS error on every lock write
    project.gen({"raw.txt": "changed"})

    result = project.pivot("repro", "-j", "1", expect=1)

    assert "Traceback" not in result.output
    assert ".pivot/stages/build.lock" in result.output and "Fix:" in result.output


def test_a_stage_name_too_long_for_a_file_name_is_a_clear_error(project: E2EProject) -> None:
    project.gen({"raw.txt": "x"})
    project.pipeline(
        PIPELINE.replace("pipeline.register(build)", 'pipeline.register(build, name="s" * 300)')
    )

    result = project.pivot("repro", "-j", "1", expect=None)

    assert result.code != 0
    assert "Traceback" not in result.output and "Errno" not in result.output
    assert "too long" in result.output and "shorter name" in result.output
