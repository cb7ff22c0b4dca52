"""One executor interface, serial first: in-process (`-j 1`, tests, debuggers), a warm loky pool,
and (`pivot` on Linux) worker processes forked from this one once it has planned.

The pools ship the tasks submitted between two `flush` calls in chunks (one pool round trip for
several small stages). Imports of Pivot: the worker and spec only.
"""

from __future__ import annotations

import _thread
import collections
import contextlib
import copyreg
import dataclasses
import functools
import gc
import math
import mmap
import os
import pickle
import selectors
import signal
import struct
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from typing import Any, Protocol

from pivot.execute import worker
from pivot.execute.worker import Outcome, StageTask
from pivot.spec import StageSpec

__all__ = [
    "Executor",
    "ForkExecutor",
    "NotRun",
    "NotSent",
    "PoolExecutor",
    "SerialExecutor",
    "available_cpus",
    "cgroup_cpu_quota",
    "fork_possible",
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
    """CPUs this process may use, as loky counts them: the CPUs it may run on (affinity), at
    most a cgroup's CPU quota (a container's limit) and `LOKY_MAX_CPU_COUNT`. On Linux counted
    here: importing loky costs a run whose workers are forked 40-60 ms it needs nowhere else."""
    if not sys.platform.startswith("linux"):
        from loky import cpu_count

        return max(1, int(cpu_count()))
    found = len(os.sched_getaffinity(0))
    quota = cgroup_cpu_quota()
    if quota is not None:
        found = min(found, quota)
    with contextlib.suppress(KeyError, ValueError):
        found = min(found, int(os.environ["LOKY_MAX_CPU_COUNT"]))
    return max(1, found)


def cgroup_cpu_quota(root: str = "/sys/fs/cgroup") -> int | None:
    """CPUs a cgroup's bandwidth limit allows this process (v2 `cpu.max`, else v1's
    `cpu.cfs_quota_us` / `cpu.cfs_period_us`, rounded up); None without a limit."""
    try:
        with open(os.path.join(root, "cpu.max")) as file:
            quota, period = file.read().split()
    except (OSError, ValueError):
        try:
            with open(os.path.join(root, "cpu", "cpu.cfs_quota_us")) as file:
                quota = file.read().strip()
            with open(os.path.join(root, "cpu", "cpu.cfs_period_us")) as file:
                period = file.read().strip()
        except OSError:
            return None
    try:
        quota_us, period_us = int(quota), int(period)
    except ValueError:  # "max": no limit
        return None
    return math.ceil(quota_us / period_us) if quota_us > 0 and period_us > 0 else None


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
    root: str,
    epoch: str,
    payload: bytes,
    count: int,
    stop_on_failure: bool,
    loads: Callable[[bytes], Any] = pickle.loads,
    starting: Callable[[int], None] | None = None,
) -> list[Outcome] | None:
    """Pool entry point for a chunk of `count` tasks pickled together (a single task pickled
    alone), run in order: their outcomes (only up to the first failure with `stop_on_failure`).
    None when a chunk of several cannot be loaded here: its tasks are then shipped again one by
    one, so that a task that cannot be loaded fails only its own stage. `loads` unpickles;
    `starting(i)` is told before the i-th task runs."""
    if count == 1:
        return [worker.run_pickled_task(root, epoch, payload, loads)]
    worker.enter_project(root, epoch)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # importing pipeline.py may print
            tasks: list[StageTask] = loads(payload)
    except Exception:
        return None
    outcomes = []
    for index, task in enumerate(tasks):
        if starting is not None:
            starting(index)
        worker.enter_project(root, epoch)  # as the stage before may have left sys.path
        outcomes.append(worker.execute_stage(task))
        if stop_on_failure and not outcomes[-1].ok:
            break
    return outcomes


def _settle(futures: Sequence[Future[Outcome]], outcomes: Sequence[Outcome]) -> None:
    """Give each task of a chunk its outcome; those after the chunk stopped get `NotRun`."""
    for index, future in enumerate(futures):
        if index < len(outcomes):
            future.set_result(outcomes[index])
        else:
            future.set_exception(NotRun())


_Waiting = tuple[str, StageTask, "Future[Outcome]"]
"""A task submitted to the pool: its project root, the task, its future."""


class _ChunkingPool:
    """What both process pools share: tasks wait for `flush`, which ships them in chunks
    pickled together (see `Executor`)."""

    places_outputs = True
    jobs: int
    epoch: str
    slots: int | None
    _waiting: list[_Waiting]

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
        idle = self._idle()
        if idle > 0:  # spread over the idle workers rather than queue behind one
            chunk = min(chunk, math.ceil(len(waiting) / idle))
        size = max(1, chunk)
        for start in range(0, len(waiting), size):
            self._ship(waiting[start : start + size], stop_on_failure)

    def _idle(self) -> int:
        """Workers with no call in flight (ready to take calls)."""
        raise NotImplementedError

    def _dumps(self, tasks: list[StageTask]) -> bytes:
        """A chunk's tasks pickled for a worker (a single task alone)."""
        return worker.dumps(tasks if len(tasks) > 1 else tasks[0])

    def _call(self, chunk: Sequence[_Waiting], payload: bytes, stop_on_failure: bool) -> None:
        """Send one pool call, whose outcomes settle `chunk`'s futures."""
        raise NotImplementedError

    def _ship(self, chunk: Sequence[_Waiting], stop_on_failure: bool) -> None:
        """One pool call running `chunk` in order in one worker (each of its tasks alone when
        one of them does not pickle: that one fails with `NotSent`)."""
        tasks = [task for _, task, _ in chunk]
        try:
            payload = self._dumps(tasks)
        except Exception as error:
            if len(chunk) == 1:
                chunk[0][2].set_exception(NotSent(error))
            else:
                for one in chunk:
                    self._ship([one], stop_on_failure)
            return
        self._call(chunk, payload, stop_on_failure)

    def _answered(
        self, chunk: Sequence[_Waiting], stop_on_failure: bool, outcomes: list[Outcome] | None
    ) -> None:
        """A worker's answer to a call: None when it could not load the chunk, whose tasks
        then go again one by one."""
        if outcomes is None:
            for one in chunk:
                self._ship([one], stop_on_failure)
        else:
            _settle([future for _, _, future in chunk], outcomes)


class PoolExecutor(_ChunkingPool):
    """A reusable loky pool: workers stay warm (imports survive) across stages and runs.

    `fresh` stops the warm workers first (watch mode after a source edit: no worker may keep a
    module imported before the edit, even one no fingerprint covers).
    """

    def __init__(self, jobs: int, epoch: str, *, fresh: bool = False) -> None:
        self.epoch = epoch
        self.jobs = jobs
        self.slots = jobs
        if fresh:
            _stop_pool(jobs)
        self._pool: Any = _reusable_pool(jobs)
        self._waiting = []
        self._calls = 0  # pool calls shipped and not yet settled
        self._calls_lock = threading.Lock()

    def _idle(self) -> int:
        self._pool = _reusable_pool(self.jobs)  # a new one if a dead worker broke it
        return self.jobs - self._calls

    def _call(self, chunk: Sequence[_Waiting], payload: bytes, stop_on_failure: bool) -> None:
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
        try:
            outcomes = shipped.result()
        except BaseException as error:  # a dead worker; KeyboardInterrupt on a Ctrl-C to the group
            for _, _, future in chunk:
                future.set_exception(error)
            return
        self._answered(chunk, stop_on_failure, outcomes)

    def shutdown(self, *, kill: bool = False) -> None:
        if not kill:
            return
        try:
            self._pool.shutdown(wait=True, kill_workers=True)
        except RuntimeError as error:  # Ctrl-C landed while loky was starting its manager
            # thread: nothing reached a worker yet, and the workers die with this process
            if "before it is started" not in str(error):  # (`worker.set_up_pool_process`)
                raise


def fork_possible() -> bool:
    """Whether worker processes may be forked from this process now: on Linux only (macOS's
    system libraries are not safe in a forked child; Windows has no fork), and only while no
    other thread runs here, Python's or native (a fork copies no thread: a lock one held stays
    held in the child, and a library's thread pool is missing there)."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    if _thread._count() or threading.active_count() > 1:
        return False
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


_ASK = struct.Struct("<IIB")
"""A call to a forked worker: the payload's size, its number of tasks, stop on failure; then
the payload."""
_SLOT = struct.Struct("<q")
"""A forked worker's place on the pool's shared board: the index, in the call it runs, of the
task it runs (what a dead worker was running, and what it had not started)."""
_ANSWER = struct.Struct("<I")
"""A forked worker's answer: its size; then the pickled outcomes (None: could not load)."""


@dataclasses.dataclass(eq=False)
class _Child:
    """A forked worker, as its parent sees it."""

    pid: int
    slot: int  # its place in the pool's `_running` board
    asks: int  # the write end of the pipe it reads calls from (non-blocking)
    answers: int  # the read end of the pipe it writes answers to
    sent: collections.deque[tuple[Sequence[_Waiting], bool]] = dataclasses.field(
        default_factory=collections.deque
    )  # the calls sent and not yet answered, oldest (the one it runs) first
    outbox: bytearray = dataclasses.field(default_factory=bytearray)  # not yet written
    inbox: bytearray = dataclasses.field(default_factory=bytearray)  # read, not yet whole
    alive: bool = True


class ForkExecutor(_ChunkingPool):
    """Worker processes forked from this one once it has planned (see `fork_possible`): they
    start in milliseconds with Pivot, the user's modules, the graph and the plan in memory.
    `held` names objects they hold (the stages' specs, the planned manifests and params): a
    task refers to those rather than carry them pickled.

    Calls go down a pipe per worker and answers come back up another, read by one thread of
    this process. A worker that dies fails the task it was running (loky's
    `TerminatedWorkerError`, naming how it ended) and those of its call it had run (their
    outcomes are lost); what it had not started goes to the other workers (fail-fast: not
    run), and once none is left, to a loky pool. Workers end
    when the pool shuts down, or at once when this process dies
    (`worker.set_up_pool_process`). This is for a `pivot` command only: forking a user's own
    process (a notebook, a script) could copy state that is not safe to copy."""

    def __init__(self, jobs: int, epoch: str, root: str, held: Iterable[object]) -> None:
        self.jobs = jobs
        self.slots = jobs
        self.epoch = epoch
        self._root = root
        self._held = {id(value): value for value in held}
        self._sendable: set[object] = set()  # classes and functions known to pickle
        self._plain_classes: dict[type, bool] = {}  # `_pickles_as_attributes`
        self._waiting = []
        self._lock = threading.Lock()  # guards each child's `sent`, `outbox` and `alive`
        self._children: list[_Child] = []
        self._exiting: list[_Child] = []  # told to exit, not yet waited for (`shutdown`)
        self._closing = False
        self._broken: BaseException | None = None  # what stopped the serving thread
        self._fallback: PoolExecutor | None = None
        for stream in (sys.stdout, sys.stderr):  # or the children would write it again
            with contextlib.suppress(Exception):
                stream.flush()
        gc.freeze()  # no collection here touches what the children share (copy on write)
        self._running = mmap.mmap(-1, _SLOT.size * jobs)  # shared: which task each one runs
        try:
            for _ in range(jobs):
                self._children.append(self._fork())
        except BaseException:
            self.shutdown(kill=True)
            raise
        self._wake = os.pipe()
        self._thread = threading.Thread(target=self._serve, name="pivot-fork-pool", daemon=True)
        self._thread.start()

    def _fork(self) -> _Child:
        asks_read, asks = os.pipe()
        answers, answers_write = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            for descriptor in (asks_read, asks, answers, answers_write):
                os.close(descriptor)
            raise
        if pid == 0:  # the worker: never returns into this process's code
            code = 1
            try:
                for child in self._children:  # or their pipes would not end when they do
                    os.close(child.asks)
                    os.close(child.answers)
                os.close(asks)
                os.close(answers)
                slot = len(self._children)
                running = (self._running, slot)
                _serve_calls(self._root, self.epoch, asks_read, answers_write, self._held, running)
                code = 0
            except KeyboardInterrupt:  # Ctrl-C to the group: this process stops the pool
                pass
            except BaseException:  # a bug of Pivot's: show it
                with contextlib.suppress(Exception):
                    traceback.print_exc()
            finally:
                os._exit(code)  # no cleanup of this process's files, connections, handlers
        os.close(asks_read)
        os.close(answers_write)
        os.set_blocking(asks, False)
        return _Child(pid, len(self._children), asks, answers)

    def _idle(self) -> int:
        with self._lock:
            return sum(1 for child in self._children if child.alive and not child.sent)

    def _dumps(self, tasks: list[StageTask]) -> bytes:
        """Each task as the list of its fields, where what the workers hold (`held`: its spec,
        planned manifest and params) is its id (`_task_of` puts it back): a plain pickle, with
        no hook called per object."""
        held = self._held
        rows = []
        for task in tasks:
            self._check_sendable(task.spec)
            row = [getattr(task, name) for name in _TASK_FIELDS]
            for index in _BY_REFERENCE:
                value = row[index]
                if held.get(id(value)) is value:
                    row[index] = id(value)
            rows.append(row)
        return pickle.dumps(rows if len(rows) > 1 else rows[0], protocol=pickle.HIGHEST_PROTOCOL)

    def _check_sendable(self, spec: StageSpec) -> None:
        """Raise what pickling `spec` for a loky worker would raise. A forked worker holds the
        spec already, but a stage must run the same way wherever it runs (loky's workers run it
        on macOS, in watch mode, from the Python API): a loader or params that do not pickle
        fail it here too."""
        if spec.params is not None:
            self._check_value(spec.params)
        for item in spec.code_objects.values():
            self._check_value(item)
        for dep in spec.deps:
            self._check_value(dep.loader)
        for out in spec.outs:
            self._check_value(out.marker)

    def _check_value(self, value: object, depth: int = 0) -> None:
        """Raise what `pickle.dumps(value)` would, without pickling it where its pickle is
        known to be its attributes' (a frozen dataclass such as a loader, over plain values):
        those are checked one by one, and each class, type or function once."""
        kind = type(value)
        if kind in _ATOMS:
            return
        if kind in _BY_NAME or isinstance(value, type):
            if value not in self._sendable:  # pickled by name: the same verdict each time
                pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
                self._sendable.add(value)
            return
        items: Iterable[Any]
        if kind in _CONTAINERS:
            items = value.items() if isinstance(value, dict) else value  # type: ignore[assignment]
        elif depth < 8 and self._pickles_as_attributes(kind):
            items = vars(value).values()
        else:
            pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            return
        for item in items:
            if type(item) not in _ATOMS:  # (the usual case, without a call)
                self._check_value(item, depth + 1)

    def _pickles_as_attributes(self, kind: type) -> bool:
        """Whether instances of `kind` pickle as their class (by reference) and `__dict__`
        alone: Python's default, neither customised nor with slots."""
        found = self._plain_classes.get(kind)
        if found is None:
            default = object.__dict__
            found = (
                getattr(kind, "__reduce_ex__", None) is default["__reduce_ex__"]
                and getattr(kind, "__reduce__", None) is default["__reduce__"]
                and getattr(kind, "__getstate__", None) is default.get("__getstate__")
                and kind not in copyreg.dispatch_table
                and not any(vars(base).get("__slots__") for base in kind.__mro__[:-1])
                and "__dict__" in dir(kind)
            )
            if found:
                pickle.dumps(kind, protocol=pickle.HIGHEST_PROTOCOL)  # importable by name
            self._plain_classes[kind] = found
        return found

    def _call(self, chunk: Sequence[_Waiting], payload: bytes, stop_on_failure: bool) -> None:
        data = _ASK.pack(len(payload), len(chunk), stop_on_failure) + payload
        with self._lock:
            if self._broken is not None:
                for _, _, future in chunk:
                    future.set_exception(self._broken)
                return
            if self._closing:
                return
            alive = [child for child in self._children if child.alive]
            if alive:
                child = min(alive, key=lambda one: len(one.sent))
                child.sent.append((chunk, stop_on_failure))
                if not child.outbox:
                    data = data[_write(child.asks, data) :]
                child.outbox += data
                if data:  # the pipe is full: the serving thread writes the rest
                    os.write(self._wake[1], b"w")
        if not alive:  # every forked worker died: loky's workers take the rest
            self._to_fallback(chunk, stop_on_failure)

    def _to_fallback(self, chunk: Sequence[_Waiting], stop_on_failure: bool) -> None:
        with self._lock:
            if self._closing:
                return
            if self._fallback is None:
                self._fallback = PoolExecutor(self.jobs, self.epoch)
            for _, task, future in chunk:
                self._fallback.submit(task).add_done_callback(functools.partial(_pass_on, future))
            self._fallback.flush(len(chunk), stop_on_failure=stop_on_failure)

    def _serve(self) -> None:
        """The thread writing what did not fit in a pipe, and reading the answers."""
        selector = selectors.DefaultSelector()
        selector.register(self._wake[0], selectors.EVENT_READ, None)
        for child in self._children:
            selector.register(child.answers, selectors.EVENT_READ, child)
        try:
            self._serve_until_closed(selector)
        except BaseException as error:  # a bug of Pivot's: fail what waits rather than hang
            with self._lock:
                self._broken = error
                waiting = [one for child in self._children for one in child.sent]
                for child in self._children:
                    child.sent.clear()
            for chunk, _ in waiting:
                for _, _, future in chunk:
                    future.set_exception(error)
        finally:
            selector.close()

    def _serve_until_closed(self, selector: selectors.BaseSelector) -> None:
        writing: set[int] = set()  # the call pipes it waits to write to
        while True:
            for key, _events in selector.select():
                child = key.data
                if child is None:
                    os.read(self._wake[0], 4096)
                    if self._closing:
                        return
                elif key.fd == child.answers:
                    self._read(child, selector)
                else:
                    with self._lock:
                        if child.outbox and child.alive:
                            del child.outbox[: _write(child.asks, child.outbox)]
            with self._lock:
                wanted = {c.asks: c for c in self._children if c.alive and c.outbox}
            for descriptor in writing - wanted.keys():
                with contextlib.suppress(KeyError, ValueError):
                    selector.unregister(descriptor)
            for descriptor in wanted.keys() - writing:
                selector.register(descriptor, selectors.EVENT_WRITE, wanted[descriptor])
            writing = set(wanted)

    def _read(self, child: _Child, selector: selectors.BaseSelector) -> None:
        data = os.read(child.answers, 1 << 20)
        if not data:
            selector.unregister(child.answers)
            if child.asks in selector.get_map():
                selector.unregister(child.asks)
            return self._lost(child)
        inbox = child.inbox
        inbox += data
        while len(inbox) >= _ANSWER.size:
            (size,) = _ANSWER.unpack_from(inbox)
            if len(inbox) < _ANSWER.size + size:
                break
            outcomes = pickle.loads(inbox[_ANSWER.size : _ANSWER.size + size])
            del inbox[: _ANSWER.size + size]
            with self._lock:
                chunk, stop_on_failure = child.sent.popleft()
            self._answered(chunk, stop_on_failure, outcomes)

    def _lost(self, child: _Child) -> None:
        """A worker ended (its answers' pipe closed): fail what it was running, and send what
        was queued behind it to other workers (fail-fast: not run)."""
        how = _ended(child.pid)
        with self._lock:
            child.alive = False
            sent = list(child.sent)
            child.sent.clear()
            os.close(child.asks)
            os.close(child.answers)
        if self._closing or not sent:
            return
        from loky.process_executor import TerminatedWorkerError

        chunk, stop_on_failure = sent[0]
        (running,) = _SLOT.unpack_from(self._running, _SLOT.size * child.slot)
        running = min(max(running, 0), len(chunk) - 1)
        ended = f"the forked worker process {child.pid} {how}"
        stage = chunk[running][1].spec.name
        lost = f"{ended} while running stage '{stage}' (this one had run, its outcome was lost)"
        for index, (_, _, future) in enumerate(chunk[: running + 1]):
            future.set_exception(TerminatedWorkerError(ended if index == running else lost))
        if chunk[running + 1 :]:  # never started: as the calls queued behind it
            sent[0] = (chunk[running + 1 :], stop_on_failure)
        else:
            del sent[0]
        for chunk, stop_on_failure in sent:
            if stop_on_failure:
                for _, _, future in chunk:
                    future.set_exception(NotRun())
            else:
                self._ship(chunk, stop_on_failure)

    def release(self) -> None:
        """End the workers' calls (the run is over) without waiting for them: they exit while
        this process goes on (plans again, writes its records); `shutdown` then waits."""
        if not self._closing:
            self._end_calls(kill=False)

    def shutdown(self, *, kill: bool = False) -> None:
        """End the workers (`kill`: at once, else once they finish their calls) and wait for
        them; idempotent."""
        if not self._closing:
            self._end_calls(kill=kill)
        elif kill:  # released, still exiting: as at Ctrl-C
            for child in self._exiting:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + ENDING_SECONDS
        while self._exiting:
            child = self._exiting.pop(0)
            _ended(child.pid, deadline)
            os.close(child.answers)
        fallback, self._fallback = self._fallback, None
        if fallback is not None:
            fallback.shutdown(kill=kill)

    def _end_calls(self, *, kill: bool) -> None:
        """Stop serving and close each worker's calls (it exits); `kill`: stop their stages."""
        with self._lock:
            self._closing = True
            if kill:  # each stops its stage as at Ctrl-C (`_serve_calls`), or is killed later
                for child in self._children:
                    if child.alive:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(child.pid, signal.SIGTERM)
        if hasattr(self, "_thread"):
            os.write(self._wake[1], b"x")
            self._thread.join()
            os.close(self._wake[0])
            os.close(self._wake[1])
        for child in self._children:  # (the serving thread, which closes a lost one's, ended)
            if child.alive:
                child.alive = False
                os.close(child.asks)  # the end of its calls: it exits
                self._exiting.append(child)


def _write(descriptor: int, data: bytes | bytearray) -> int:
    """Write what a non-blocking pipe takes of `data` now: how many bytes (all of them when the
    reader is gone: its end is then seen by the serving thread)."""
    try:
        return os.write(descriptor, data)
    except BlockingIOError:
        return 0
    except BrokenPipeError:
        return len(data)


def _pass_on(future: Future[Outcome], done: Future[Outcome]) -> None:
    error = done.exception()
    if error is None:
        future.set_result(done.result())
    else:
        future.set_exception(error)


ENDING_SECONDS = 2.0
"""How long a worker told to stop (or whose pipes closed) may take to exit before it is killed:
long enough to put back a stage's previous outputs and remove its temp files."""


def _ended(pid: int, deadline: float | None = None) -> str:
    """Wait for forked worker `pid` to exit, killing it at `deadline` (default: in
    `ENDING_SECONDS`): how it ended."""
    deadline = deadline or time.monotonic() + ENDING_SECONDS
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return "ended"
        if done:
            break
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            break
        time.sleep(0.005)
    code = os.waitstatus_to_exitcode(status)
    if code >= 0:
        return f"exited with code {code}"
    with contextlib.suppress(ValueError):
        return f"was killed by signal {signal.Signals(-code).name}"
    return f"was killed by signal {-code}"


_TASK_FIELDS = tuple(field.name for field in dataclasses.fields(StageTask))
"""A task's fields, in the order `ForkExecutor._dumps` sends them."""
_BY_REFERENCE = tuple(_TASK_FIELDS.index(name) for name in ("spec", "code", "params"))
"""The fields a forked worker usually holds already (sent as their id)."""
_ATOMS = frozenset({str, int, float, bool, bytes, type(None), complex})
_BY_NAME = frozenset({type, types.FunctionType, types.BuiltinFunctionType})
_CONTAINERS = frozenset({tuple, list, frozenset, set, dict})


def _task_of(row: list[Any], held: dict[int, object]) -> StageTask:
    """A task sent by `ForkExecutor._dumps`, in a forked worker holding `held`."""
    for index in _BY_REFERENCE:
        if type(row[index]) is int:
            row[index] = held[row[index]]
    task = object.__new__(StageTask)
    task.__dict__.update(zip(_TASK_FIELDS, row))  # (frozen: no __init__ to call again)
    return task


def _tasks_of(payload: bytes, held: dict[int, object]) -> StageTask | list[StageTask]:
    value = pickle.loads(payload)
    if value and type(value[0]) is list:  # a chunk: a list of rows
        return [_task_of(row, held) for row in value]
    return _task_of(value, held)


def _left_to_the_pool(signum: int, frame: types.FrameType | None) -> None:
    return None


def _stop_the_stage(signum: int, frame: types.FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # once: the next one ends the process
    raise KeyboardInterrupt


def _serve_calls(
    root: str,
    epoch: str,
    asks: int,
    answers: int,
    held: dict[int, object],
    running: tuple[mmap.mmap, int],
) -> None:
    """A forked worker's life: run the calls read from pipe `asks` and write their answers to
    pipe `answers`, until the pool closes its end."""
    gc.freeze()
    # Ctrl-C reaches the whole process group: the pool's owner decides what stops and tells
    # this worker with SIGTERM (`ForkExecutor.shutdown`), which interrupts the stage once, as a
    # Ctrl-C would (its previous outputs are put back, its temp files removed). A stage's own
    # subprocesses still get Ctrl-C (a handled signal is not inherited through exec).
    signal.signal(signal.SIGINT, _left_to_the_pool)
    signal.signal(signal.SIGTERM, _stop_the_stage)
    null = os.open(os.devnull, os.O_RDONLY)  # as loky's workers: no stage reads the terminal
    os.dup2(null, 0)
    os.close(null)
    worker.set_up_pool_process(os.getppid())
    worker.adopt_project(root, epoch)

    loads = functools.partial(_tasks_of, held=held)
    board, slot = running

    def starting(index: int) -> None:  # where the pool looks if this process dies
        _SLOT.pack_into(board, _SLOT.size * slot, index)

    with open(asks, "rb") as incoming, open(answers, "wb") as outgoing, worker.spare_lock_files():
        while True:
            header = incoming.read(_ASK.size)
            if len(header) < _ASK.size:
                return  # the pool closed: the run is over
            size, count, stop_on_failure = _ASK.unpack(header)
            payload = incoming.read(size)
            starting(0)
            outcomes = run_chunk(
                root, epoch, payload, count, bool(stop_on_failure), loads, starting
            )
            data = pickle.dumps(outcomes, protocol=pickle.HIGHEST_PROTOCOL)
            outgoing.write(_ANSWER.pack(len(data)))
            outgoing.write(data)
            outgoing.flush()


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
