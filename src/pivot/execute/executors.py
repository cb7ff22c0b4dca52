"""One executor interface, serial first: in-process (`-j 1`, tests, debuggers) and a warm loky pool.

Imports of Pivot: the worker only.
"""

from __future__ import annotations

import os
from concurrent.futures import Future
from typing import Any, Protocol

from pivot.execute import worker
from pivot.execute.worker import Outcome, StageTask

__all__ = ["Executor", "PoolExecutor", "SerialExecutor", "available_cpus", "make_executor"]


class Executor(Protocol):
    """Runs stage tasks; `shutdown(kill=True)` stops running work at once (Ctrl-C).

    `places_outputs` is False for an executor that leaves outputs elsewhere (a cluster run with
    `--no-download`): the runner then takes downstream inputs' hashes from the outcomes.
    `slots` is how many CPUs its stages may use at once (`-j`), which a stage declaring
    `resources={"cpus": n}` takes n of; None where the executor places stages itself.
    """

    places_outputs: bool
    slots: int | None

    def submit(self, task: StageTask) -> Future[Outcome]: ...

    def shutdown(self, *, kill: bool = False) -> None: ...


def available_cpus() -> int:
    """CPUs this process may use (cgroup and affinity aware)."""
    from loky import cpu_count

    return max(1, int(cpu_count()))


class SerialExecutor:
    """Runs each task in this process when submitted."""

    places_outputs = True
    slots: int | None = None  # one stage at a time anyway

    def __init__(self, epoch: str) -> None:
        self.epoch = epoch

    def submit(self, task: StageTask) -> Future[Outcome]:
        future: Future[Outcome] = Future()
        future.set_result(worker.execute_stage(task))
        return future

    def shutdown(self, *, kill: bool = False) -> None:
        return None


class PoolExecutor:
    """A reusable loky pool: workers stay warm (imports survive) across stages and runs.

    `fresh` stops the warm workers first (watch mode after a source edit: no worker may keep a
    module imported before the edit, even one no fingerprint covers).
    """

    places_outputs = True

    def __init__(self, jobs: int, epoch: str, *, fresh: bool = False) -> None:
        self.epoch = epoch
        self.jobs = jobs
        self.slots: int | None = jobs
        if fresh:
            self._reusable_pool().shutdown(wait=True, kill_workers=True)
        self._pool: Any = self._reusable_pool()

    def _reusable_pool(self) -> Any:
        """The warm pool; a new one if a dead worker broke the previous one."""
        from loky import get_reusable_executor

        return get_reusable_executor(
            max_workers=self.jobs,
            timeout=600,
            reuse="auto",
            initializer=worker.die_with_parent,
            initargs=(os.getpid(),),
        )

    def submit(self, task: StageTask) -> Future[Outcome]:
        payload = worker.dumps(task)
        self._pool = self._reusable_pool()
        future: Future[Outcome] = self._pool.submit(
            worker.run_pickled_task, task.root, self.epoch, payload
        )
        return future

    def shutdown(self, *, kill: bool = False) -> None:
        if kill:
            self._pool.shutdown(wait=True, kill_workers=True)


def make_executor(jobs: int, epoch: str, *, fresh: bool = False) -> Executor:
    """Serial for one job, otherwise the warm pool (`fresh`: with new worker processes)."""
    if jobs <= 1:
        return SerialExecutor(epoch)
    return PoolExecutor(jobs, epoch, fresh=fresh)
