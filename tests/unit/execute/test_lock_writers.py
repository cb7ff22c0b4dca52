"""Who writes a stage's lock: a pool worker writes it, new or rewritten (sparing the main
process, which a run of few stages among many waits on); a stage run in the main process
(`-j 1`) has its lock rewritten by the runner, through its spare files. Either way the lock is
the same file."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path

from pivot import api, plan
from pivot.execute import executors, runner
from pivot.execute.events import RunStatus
from pivot.execute.worker import Outcome, StageTask

PIPELINE = """\
from typing import Annotated

from pivot import Pipeline, loaders
from pivot.outputs import Dep, Out


def upper(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[
    str, Out("upper.txt", loaders.Text())
]:
    return raw.upper()


def twice(text: Annotated[str, Dep("upper.txt", loaders.Text())]) -> Annotated[
    str, Out("twice.txt", loaders.Text())
]:
    return text * 2


pipeline = Pipeline("lock_writers")
pipeline.register(upper)
pipeline.register(twice)
"""


class _Noting:
    """Notes the outcome of every task an executor runs."""

    outcomes: list[Outcome]

    def note(self, future: Future[Outcome]) -> Future[Outcome]:
        future.add_done_callback(lambda done: self.outcomes.append(done.result()))
        return future


class _NotingPool(_Noting, executors.PoolExecutor):
    def submit(self, task: StageTask) -> Future[Outcome]:
        return self.note(super().submit(task))


class _NotingSerial(_Noting, executors.SerialExecutor):
    def submit(self, task: StageTask) -> Future[Outcome]:
        return self.note(super().submit(task))


def _force_run(root: Path, executor: _Noting) -> dict[str, bytes]:
    """Every stage run again on `executor`; the lock files after it."""
    executor.outcomes = []
    with api.open_context(root) as ctx:
        names = ctx.graph.order
        decided = plan.make_plan(ctx, names, force=names, run_cache=False)
        report = runner.run_plan(ctx, decided, executor, keep_going=False, emit=lambda _: None)
        locks = {name: ctx.project.lock_path(name, None) for name in names}
    assert {result.status for result in report.results} == {RunStatus.RAN}
    return {name: Path(path).read_bytes() for name, path in locks.items()}


def test_pool_workers_rewrite_locks_and_the_runner_rewrites_those_of_stages_it_ran(
    tmp_path: Path,
) -> None:
    api.init(tmp_path)
    (tmp_path / "raw.txt").write_text("in", encoding="utf-8")
    (tmp_path / "pipeline.py").write_text(PIPELINE, encoding="utf-8")
    pool = _NotingPool(2, "lock-writers-test")
    first = _force_run(tmp_path, pool)  # new locks
    assert all(outcome.run_key for outcome in pool.outcomes)

    assert _force_run(tmp_path, pool) == first  # rewrites, by the workers
    assert len(pool.outcomes) == 2 and all(outcome.run_key for outcome in pool.outcomes)

    serial = _NotingSerial("lock-writers-serial")
    assert _force_run(tmp_path, serial) == first  # rewrites, by the runner
    assert len(serial.outcomes) == 2 and not any(outcome.run_key for outcome in serial.outcomes)
