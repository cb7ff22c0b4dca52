"""Shared helpers of the execution tests: a project run on the real warm pool, noting what
each pool call carried."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

from pivot import api, plan
from pivot.execute import executors, runner
from pivot.execute.events import RunReport
from pivot.execute.worker import Outcome, StageTask


class NotingPool(executors.PoolExecutor):
    """The real warm pool, noting the stages each pool call carries (`shipped`)."""

    shipped: list[list[str]]

    def _ship(
        self, chunk: Sequence[tuple[str, StageTask, Future[Outcome]]], stop_on_failure: bool
    ) -> None:
        self.shipped.append([task.spec.name for _, task, _ in chunk])
        super()._ship(chunk, stop_on_failure)


def run_on_pool(
    root: Path, pipeline: str, epoch: str, *, keep_going: bool
) -> tuple[RunReport, NotingPool]:
    """A new project at `root` with `pipeline.py` and a `raw.txt` ("in"), planned and run on
    the real pool (`epoch`: the test's own); the report, and the pool with what it shipped."""
    api.init(root)
    (root / "raw.txt").write_text("in", encoding="utf-8")
    (root / "pipeline.py").write_text(pipeline, encoding="utf-8")
    pool = NotingPool(2, epoch)
    pool.shipped = []
    with api.open_context(root) as ctx:
        decided = plan.make_plan(ctx, ctx.graph.order)
        report = runner.run_plan(ctx, decided, pool, keep_going=keep_going, emit=lambda _: None)
    return report, pool
