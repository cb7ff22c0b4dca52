"""Many small stages on the real pool: once they prove small, the outcomes of a chunk, which
arrive together, free their slots together, and the next stages go out as one chunk again
(collected one by one, each freed slot shipped a chunk of one: ~1.4 stages a pool call)."""

from __future__ import annotations

from pathlib import Path

from pivot.execute.events import RunStatus
from tests.unit.execute.conftest import run_on_pool

COUNT = 240

PIPELINE = f"""\
from typing import Annotated

from pivot import Pipeline, loaders
from pivot.outputs import Dep, Out


def small(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[
    str, Out("out/x.txt", loaders.Text())
]:
    return raw.upper()


pipeline = Pipeline("chunks")
for index in range({COUNT}):
    pipeline.register(small, name=f"s{{index:03d}}", out_path_overrides={{"return": f"out/s{{index:03d}}.txt"}})
"""


def test_small_stages_keep_going_out_in_chunks(tmp_path: Path) -> None:
    report, pool = run_on_pool(tmp_path, PIPELINE, "chunks-test", keep_going=False)

    assert {result.status for result in report.results} == {RunStatus.RAN}
    sizes = [len(chunk) for chunk in pool.shipped]
    assert sum(sizes) == COUNT
    assert (tmp_path / "out" / "s239.txt").read_text(encoding="utf-8") == "IN"
    later = sizes[len(sizes) // 2 :]  # by then the stages have proved small
    assert sum(later) / len(later) >= 4, sizes
