"""Many small stages on the real pool: once they prove small, the outcomes of a chunk, which
arrive together, free their slots together, and the next stages go out as one chunk again
(collected one by one, each freed slot shipped a chunk of one: ~1.4 stages a pool call)."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

from pivot import api, plan
from pivot.execute import executors, runner
from pivot.execute.events import RunStatus
from pivot.execute.worker import Outcome, StageTask

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


class _CountingPool(executors.PoolExecutor):
    """The real warm pool, noting how many stages each pool call carries."""

    shipped: list[int]

    def _ship(
        self, chunk: Sequence[tuple[str, StageTask, Future[Outcome]]], stop_on_failure: bool
    ) -> None:
        self.shipped.append(len(chunk))
        super()._ship(chunk, stop_on_failure)


def test_small_stages_keep_going_out_in_chunks(tmp_path: Path) -> None:
    api.init(tmp_path)
    (tmp_path / "raw.txt").write_text("in", encoding="utf-8")
    (tmp_path / "pipeline.py").write_text(PIPELINE, encoding="utf-8")
    pool = _CountingPool(2, "chunks-test")
    pool.shipped = []

    with api.open_context(tmp_path) as ctx:
        decided = plan.make_plan(ctx, ctx.graph.order)
        report = runner.run_plan(ctx, decided, pool, keep_going=False, emit=lambda event: None)

    assert {result.status for result in report.results} == {RunStatus.RAN}
    assert sum(pool.shipped) == COUNT
    assert (tmp_path / "out" / "s239.txt").read_text(encoding="utf-8") == "IN"
    later = pool.shipped[len(pool.shipped) // 2 :]  # by then the stages have proved small
    assert sum(later) / len(later) >= 4, pool.shipped
