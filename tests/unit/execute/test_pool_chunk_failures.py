"""A chunk's tasks are pickled together; a task that cannot be pickled, or that a worker cannot
load, fails only its own stage: its chunk-mates are shipped again one by one and run."""

from __future__ import annotations

import os
from pathlib import Path

from pivot.execute.events import RunStatus
from tests.unit.execute.conftest import run_on_pool

FIRST, LATER = 120, 24

PIPELINE = f"""\
import dataclasses
import os
import pathlib
from typing import Annotated, Callable

from pivot import Pipeline, loaders
from pivot.outputs import Dep, Out

MAIN = {os.getpid()}


def _only_in_main() -> "Fragile":
    if os.getpid() != MAIN:
        raise RuntimeError("this loader cannot be loaded in a worker")
    return Fragile()


@dataclasses.dataclass(frozen=True)
class Fragile(loaders.Writer[str]):
    def save(self, data: str, path: pathlib.Path) -> None:
        path.write_text(data)

    def __reduce__(self):
        return (_only_in_main, ())


@dataclasses.dataclass(frozen=True)
class Shaped(loaders.Writer[str]):
    shape: Callable[[str], str] = lambda text: text.upper()  # a lambda: does not pickle

    def save(self, data: str, path: pathlib.Path) -> None:
        path.write_text(self.shape(data))


def small(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[
    str, Out("out/x.txt", loaders.Text())
]:
    return raw.upper()


def later(raw: Annotated[str, Dep("out/s{FIRST - 1:03d}.txt", loaders.Text())]) -> Annotated[
    str, Out("later/x.txt", loaders.Text())
]:
    return raw + "!"


def unloadable(raw: Annotated[str, Dep("out/s{FIRST - 1:03d}.txt", loaders.Text())]) -> Annotated[
    str, Out("fragile.txt", Fragile())
]:
    return raw


def unpicklable(raw: Annotated[str, Dep("out/s{FIRST - 1:03d}.txt", loaders.Text())]) -> Annotated[
    str, Out("shaped.txt", Shaped())
]:
    return raw


pipeline = Pipeline("chunk_failures")
for index in range({FIRST}):
    pipeline.register(small, name=f"s{{index:03d}}", out_path_overrides={{"return": f"out/s{{index:03d}}.txt"}})
for index in range({LATER}):
    pipeline.register(later, name=f"t{{index:03d}}", out_path_overrides={{"return": f"later/t{{index:03d}}.txt"}})
    if index == {LATER // 2}:
        pipeline.register(unloadable)
        pipeline.register(unpicklable)
"""


def test_a_task_that_does_not_pickle_or_load_fails_alone(tmp_path: Path) -> None:
    report, pool = run_on_pool(tmp_path, PIPELINE, "chunk-failures-test", keep_going=True)

    results = {result.stage: result for result in report.results}
    failed = {name for name, result in results.items() if result.status is not RunStatus.RAN}
    assert failed == {"unloadable", "unpicklable"}, {n: results[n].error for n in failed}
    assert "could not load the stage in a worker process" in results["unloadable"].error
    assert "cannot be loaded in a worker" in results["unloadable"].error
    assert "could not be sent to a worker process" in results["unpicklable"].error
    assert "lambda" in results["unpicklable"].error
    assert (tmp_path / "later" / f"t{LATER - 1:03d}.txt").read_text(encoding="utf-8") == "IN!"
    for name in ("unloadable", "unpicklable"):  # shipped with others first, then alone
        assert any(name in chunk and len(chunk) > 1 for chunk in pool.shipped), pool.shipped
        assert [name] in pool.shipped, pool.shipped
