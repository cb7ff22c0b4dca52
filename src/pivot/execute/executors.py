"""One executor interface, serial first: in-process (`-j 1`, tests, debuggers) and a warm loky pool.

The pool ships the tasks submitted between two `flush` calls in chunks (one pool round trip for
several small stages). Imports of Pivot: the worker only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import pickle
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any, Protocol

from pivot.execute import worker
from pivot.execute.worker import Outcome, StageTask

__all__ = [
    "Executor",
    "NotRun",
    "NotSent",
    "PoolExecutor",
    "SerialExecutor",
    "available_cpus",
    "make_executor",
    "run_chunk",
]


class Executor(Protocol):
    """Runs stage tasks; `shutdown(kill=True)` stops running work at once (Ctrl-C).

    `places_outputs` is False for an executor that leaves outputs elsewhere (a cluster run with
    `--no-download`): the runner then takes downstream inputs' hashes from the outcomes.
    `slots` is how many CPUs its stages may use at once (`-j`), which a stage declaring
    `resources={"cpus": n}` takes n of; None where the executor places stages itself.

    A submitted task may wait for `flush`, which the caller makes after each burst of submits:
    it ships them, up to `chunk` tasks a round trip (spread over idle workers first); with
    `stop_on_failure` a chunk stops at its first failed stage and the rest of it fail with
    `NotRun`.
    """

    places_outputs: bool
    slots: int | None

    def submit(self, task: StageTask) -> Future[Outcome]: ...

    def flush(self, chunk: int = 1, *, stop_on_failure: bool = False) -> None: ...

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

    def flush(self, chunk: int = 1, *, stop_on_failure: bool = False) -> None:
        return None  # each task ran when it was submitted

    def shutdown(self, *, kill: bool = False) -> None:
        return None


class NotRun(Exception):
    """A task of a chunk that stopped at an earlier stage's failure (fail-fast): never started."""


class NotSent(Exception):
    """A task that could not be pickled for a pool worker; `error` says why."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def run_chunk(
    root: str, epoch: str, payload: bytes, count: int, stop_on_failure: bool
) -> list[Outcome] | None:
    """Pool entry point for a chunk of `count` tasks pickled together (a single task pickled
    alone), run in order: their outcomes (only up to the first failure with `stop_on_failure`).
    None when a chunk of several cannot be loaded here: its tasks are then shipped again one by
    one, so that a task that cannot be loaded fails only its own stage."""
    if count == 1:
        return [worker.run_pickled_task(root, epoch, payload)]
    worker.enter_project(root, epoch)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # importing pipeline.py may print
            tasks: list[StageTask] = pickle.loads(payload)
    except Exception:
        return None
    outcomes = []
    for task in tasks:
        worker.enter_project(root, epoch)  # as the stage before may have left sys.path
        outcomes.append(worker.execute_stage(task))
        if stop_on_failure and not outcomes[-1].ok:
            break
    return outcomes


def _settle(futures: Sequence[Future[Outcome]], shipped: Future[list[Outcome] | None]) -> None:
    """Give each task of a chunk its outcome; the pool's error (a dead worker) fails them all."""
    try:
        outcomes = shipped.result() or []
    except BaseException as error:  # a dead worker; KeyboardInterrupt on a Ctrl-C to the group
        for future in futures:
            future.set_exception(error)
        return
    for index, future in enumerate(futures):
        if index < len(outcomes):
            future.set_result(outcomes[index])
        else:
            future.set_exception(NotRun())


_Waiting = tuple[str, StageTask, "Future[Outcome]"]
"""A task submitted to the pool: its project root, the task, its future."""


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
            _stop_pool(jobs)
        self._pool: Any = _reusable_pool(jobs)
        self._waiting: list[_Waiting] = []
        self._calls = 0  # pool calls shipped and not yet settled
        self._calls_lock = threading.Lock()

    def submit(self, task: StageTask) -> Future[Outcome]:
        """Queue `task` for the next `flush`. What only a cluster worker, or a worker writing
        the stage's lock, reads (the planned inputs and manifest) is left out of the others. A
        task that cannot be pickled fails with `NotSent` at the flush, which pickles each chunk's
        tasks together (sharing what they repeat: classes, loaders, paths)."""
        future: Future[Outcome] = Future()
        local = task if task.lock_path else dataclasses.replace(task, inputs=(), code={})
        self._waiting.append((task.root, local, future))
        return future

    def flush(self, chunk: int = 1, *, stop_on_failure: bool = False) -> None:
        waiting, self._waiting = self._waiting, []
        if not waiting:
            return
        self._pool = _reusable_pool(self.jobs)
        idle = self.jobs - self._calls
        if idle > 0:  # spread over the idle workers rather than queue behind one
            chunk = min(chunk, math.ceil(len(waiting) / idle))
        size = max(1, chunk)
        for start in range(0, len(waiting), size):
            self._ship(waiting[start : start + size], stop_on_failure)

    def _ship(self, chunk: Sequence[_Waiting], stop_on_failure: bool) -> None:
        """One pool call running `chunk` in order in one worker (each of its tasks alone when
        one of them does not pickle: that one fails with `NotSent`)."""
        tasks = [task for _, task, _ in chunk]
        try:
            payload = worker.dumps(tasks if len(tasks) > 1 else tasks[0])
        except Exception as error:
            if len(chunk) == 1:
                chunk[0][2].set_exception(NotSent(error))
            else:
                for one in chunk:
                    self._ship([one], stop_on_failure)
            return
        try:
            shipped = self._pool.submit(
                run_chunk, chunk[0][0], self.epoch, payload, len(chunk), stop_on_failure
            )
        except Exception as error:  # the pool is shut down or broken
            for _, _, future in chunk:
                future.set_exception(error)
            return
        with self._calls_lock:
            self._calls += 1
        shipped.add_done_callback(functools.partial(self._settled, chunk, stop_on_failure))

    def _settled(
        self,
        chunk: Sequence[_Waiting],
        stop_on_failure: bool,
        shipped: Future[list[Outcome] | None],
    ) -> None:
        with self._calls_lock:  # counted before the futures wake the runner
            self._calls -= 1
        if not shipped.cancelled() and shipped.exception() is None and shipped.result() is None:
            for one in chunk:  # the worker could not load the chunk: each task alone
                self._ship([one], stop_on_failure)
            return
        _settle([future for _, _, future in chunk], shipped)

    def shutdown(self, *, kill: bool = False) -> None:
        if not kill:
            return
        try:
            self._pool.shutdown(wait=True, kill_workers=True)
        except RuntimeError as error:  # Ctrl-C landed while loky was starting its manager
            # thread: nothing reached a worker yet, and the workers die with this process
            if "before it is started" not in str(error):  # (`worker.set_up_pool_process`)
                raise


def _reusable_pool(jobs: int) -> Any:
    """The warm pool of `jobs` workers; a new one if a dead worker broke the previous one."""
    from loky import get_reusable_executor

    return get_reusable_executor(
        max_workers=jobs,
        timeout=600,
        reuse="auto",
        initializer=worker.set_up_pool_process,
        initargs=(os.getpid(),),
    )


def _stop_pool(jobs: int) -> None:
    _reusable_pool(jobs).shutdown(wait=True, kill_workers=True)


def warm_pool(
    jobs: int, root: str, modules: Sequence[str], *, gate: str = "", fresh: bool = False
) -> str:
    """Start the pool's `jobs` worker processes now (`fresh`: new ones) and have each import
    `modules` while this process goes on planning; returns the epoch they entered the project
    with, which a `PoolExecutor` of this run then takes (the code they imported is the code on
    disk now, as the plan reads it), keeping their imports.

    With two CPUs, planning (which the run waits for) and two importing workers would share
    them three ways: the workers then import one at a time, each holding an exclusive `flock`
    on directory `gate`. With more CPUs, a core is left to planning anyway."""
    gate = gate if available_cpus() <= 2 else ""
    if fresh:
        _stop_pool(jobs)
    pool = _reusable_pool(jobs)
    epoch = f"warm-{os.urandom(8).hex()}"  # this run's alone: no worker keeps older modules
    for _ in range(jobs):  # one each: a worker takes the next call only when it is done
        pool.submit(worker.warm_up, root, epoch, list(modules), gate)
    return epoch


def make_executor(jobs: int, epoch: str, *, fresh: bool = False) -> Executor:
    """Serial for one job, otherwise the warm pool (`fresh`: with new worker processes)."""
    if jobs <= 1:
        return SerialExecutor(epoch)
    return PoolExecutor(jobs, epoch, fresh=fresh)
