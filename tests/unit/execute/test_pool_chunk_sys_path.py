"""Each task of a chunk starts as if it were alone in the worker: a stage that put another
directory first on `sys.path` leaves it there for none of the stages after it."""

from __future__ import annotations

import os
from pathlib import Path

from pivot.execute.events import RunStatus
from tests.unit.execute.conftest import run_on_pool

STAGES, MOVER = 60, 30

PIPELINE = f"""\
import sys
from typing import Annotated

from pivot import Pipeline, loaders
from pivot.outputs import Dep, Out


def first_on_path(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[
    str, Out("out/x.txt", loaders.Text())
]:
    return sys.path[0]


def mover(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[
    str, Out("moved.txt", loaders.Text())
]:
    sys.path.insert(0, "/elsewhere")
    return sys.path[0]


pipeline = Pipeline("chunk_sys_path")
for index in range({STAGES}):
    if index == {MOVER}:
        pipeline.register(mover)
    pipeline.register(first_on_path, name=f"s{{index:03d}}", out_path_overrides={{"return": f"out/s{{index:03d}}.txt"}})
"""


def test_a_stage_moving_sys_path_moves_it_for_no_later_stage_of_its_chunk(tmp_path: Path) -> None:
    report, pool = run_on_pool(tmp_path, PIPELINE, f"sys-path-{os.getpid()}", keep_going=False)
    assert {result.status for result in report.results} == {RunStatus.RAN}
    assert any("mover" in shipped and len(shipped) > 1 for shipped in pool.shipped), pool.shipped
    assert (tmp_path / "moved.txt").read_text(encoding="utf-8") == "/elsewhere"
    firsts = {path.read_text(encoding="utf-8") for path in (tmp_path / "out").iterdir()}
    assert firsts == {str(tmp_path)}
