"""A step the early cut-off rule may skip is decided as soon as its upstream settles, on the
real pool: it needs no CPU slot, so it is not held behind stages that fill every slot (a
helper edit re-runs 10% of a pipeline and cuts off most of their downstream stages; held,
those were settled in one burst at the end while the workers had nothing to do)."""

from __future__ import annotations

from pathlib import Path

from pivot import api, plan
from pivot.execute import executors, runner
from pivot.execute.events import Event, RunStatus, StageFinished

PIPELINE = """\
import time
from typing import Annotated

from pivot import Pipeline, loaders
from pivot.outputs import Dep, Out


def first_letter(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[
    str, Out("letter.txt", loaders.Text())
]:
    return raw[:1]


def doubled(letter: Annotated[str, Dep("letter.txt", loaders.Text())]) -> Annotated[
    str, Out("doubled.txt", loaders.Text())
]:
    return letter * 2


def slow(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[
    str, Out("slow.txt", loaders.Text())
]:
    time.sleep(1.5 if raw == "ix" else 0)
    return raw


pipeline = Pipeline("cut-off-slots")
pipeline.register(first_letter)
pipeline.register(doubled)
pipeline.register(slow, name="slow_a", out_path_overrides={"return": "slow_a.txt"})
pipeline.register(slow, name="slow_b", out_path_overrides={"return": "slow_b.txt"})
"""


def _run(root: Path, epoch: str) -> tuple[runner.RunReport, list[Event]]:
    events: list[Event] = []
    pool = executors.PoolExecutor(2, epoch)
    try:
        with api.open_context(root) as ctx:
            decided = plan.make_plan(ctx, ctx.graph.order)
            report = runner.run_plan(ctx, decided, pool, keep_going=False, emit=events.append)
    finally:
        pool.shutdown()
    return report, events


def test_a_cut_off_stage_is_settled_while_every_slot_is_taken(tmp_path: Path) -> None:
    api.init(tmp_path)
    (tmp_path / "raw.txt").write_text("in", encoding="utf-8")
    (tmp_path / "pipeline.py").write_text(PIPELINE, encoding="utf-8")
    first, _ = _run(tmp_path, "cut-off-slots-1")
    assert first.ok
    (tmp_path / "raw.txt").write_text("ix", encoding="utf-8")  # same first letter

    report, events = _run(tmp_path, "cut-off-slots-2")

    statuses = {result.stage: result.status for result in report.results}
    assert statuses == {
        "first_letter": RunStatus.RAN,
        "doubled": RunStatus.SKIPPED,
        "slow_a": RunStatus.RAN,
        "slow_b": RunStatus.RAN,
    }
    finished = [event.stage for event in events if isinstance(event, StageFinished)]
    # while `first_letter` ran, the slow stages took the slots it left: `doubled` was cut off
    # at once, not once a slow stage freed a slot
    assert finished.index("doubled") < finished.index("slow_a"), finished
    assert finished.index("doubled") < finished.index("slow_b"), finished
    assert (tmp_path / "slow_b.txt").read_text(encoding="utf-8") == "ix"
