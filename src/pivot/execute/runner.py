"""Carry out a Plan: restore in-process, dispatch RUN steps as their upstream completes, commit locks.

A stage's lock is written only after its outputs are in the cache (the commit point). On Ctrl-C
the pool is killed and nothing running is recorded. The runner decides nothing: it applies the
plan's steps, including their early cut-off rule. Imports of Pivot: plan, workspace, spec,
execute, store, errors; never api or cli.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import queue
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future

from pivot import _collector, fingerprint, fs
from pivot.errors import CacheCorruptError, LockFileError, PivotError
from pivot.execute.events import (
    Event,
    EventSink,
    RunReport,
    RunStatus,
    StageFinished,
    StageResult,
    StageStarted,
    flush_sink,
)
from pivot.execute.executors import (
    Executor,
    ForkExecutor,
    NotRun,
    NotSent,
    PoolExecutor,
    SerialExecutor,
)
from pivot.execute.live import LiveOutput
from pivot.execute.worker import Outcome, OutcomeKind, StageTask
from pivot.plan import (
    Action,
    Plan,
    Reason,
    ReasonKind,
    Step,
    WrittenLock,
    fingerprints_of,
    undeclared_outputs,
)
from pivot.spec import StageSpec
from pivot.store import backup, hashing, lock, logs, run_cache
from pivot.store.lock import DepEntry, LockEntry, OutEntry
from pivot.workspace import Context, dep_entries, remember_outputs

__all__ = [
    "RunReport",
    "StageResult",
    "check_restorable",
    "commit_outputs",
    "put_back_previous_outputs",
    "recorded_durations",
    "restore_outputs",
    "run_plan",
    "undeclared_files",
]


def commit_outputs(
    ctx: Context,
    step: Step,
    deps: tuple[DepEntry, ...],
    outs: tuple[OutEntry, ...],
    observed: tuple[str, ...] | None = None,
    *,
    placed: bool = True,
    spares: fs.SpareFiles | None = None,
) -> None:
    """The commit point: outputs are already in the cache (or, with `placed=False`, on the
    remote a cluster pushed them to, and not in the workspace); write the lock atomically
    (through `spares`, a run's, when given). `observed` is the code the run was seen entering;
    None keeps the step's (no run)."""
    spec = ctx.graph.stages[step.stage]
    code, kept = dict(step.code), step.observed
    if observed is not None:
        code, kept = _observed_code(ctx, step, observed)
    entry = LockEntry(
        stage=spec.name,
        code=code,
        params=dict(step.params),
        deps=deps,
        outs=outs,
        observed=kept,
    )
    lock.write_lock(ctx.project.lock_path(spec.name, spec.state_dir), entry, spares)
    if placed:
        remember_outputs(ctx, outs)
        remember_run(ctx, run_cache.run_key_of(entry), outs)


INLINE_LIMIT = 4 * 1024 * 1024
"""Uncached output files a run-cache entry may hold inline, in bytes (metrics, small files)."""


def remember_run(ctx: Context, key: str, outs: tuple[OutEntry, ...]) -> None:
    """Add a successful run (its run key, and the outputs it made) to the run cache. Uncached
    output files are kept inside the entry (the cache's `files/` holds only cached outputs); a
    run with an uncached directory, or with more than `INLINE_LIMIT` bytes of uncached files, is
    not remembered."""
    uncached = [out for out in outs if not out.cache]
    if any(out.is_directory for out in uncached):
        return
    paths = [ctx.project.root / out.path for out in uncached]
    if sum(path.stat().st_size for path in paths) > INLINE_LIMIT:
        return
    inline = {out.path: path.read_bytes() for out, path in zip(uncached, paths)}
    if any(hashing.hash_bytes(data) != out.hash for out, data in zip(uncached, inline.values())):
        return  # changed since it was recorded: do not remember a run we cannot reproduce
    ctx.runs.save(key, outs, inline)


def _observed_code(
    ctx: Context, step: Step, observed: tuple[str, ...]
) -> tuple[dict[str, str], tuple[str, ...]]:
    """The manifest to record, and the observed references it covers: what the run entered
    that the static reach does not cover (references recorded last time stay while seen)."""
    kept = fingerprint.kept_observed(step.code, step.observed, observed)
    if kept == step.observed:
        return dict(step.code), kept
    spec = ctx.graph.stages[step.stage]
    found = fingerprints_of(ctx, [spec], {spec.name: kept})[spec.name]
    return dict(found.manifest), kept


def undeclared_files(outcome: Outcome) -> list[str]:
    """One message per project file the stage read or wrote without declaring it."""
    stage = outcome.stage
    messages = [
        f"stage '{stage}' read '{path}', which it does not declare: a change to it will not "
        f're-run the stage. Declare it as a Dep (`Annotated[..., Dep("{path}", ...)]`)'
        for path in outcome.undeclared_reads
    ]
    messages += [
        f"stage '{stage}' wrote '{path}', which is not one of its outputs: Pivot neither caches "
        f'nor restores it. Declare it as an Out (`Annotated[..., Out("{path}", ...)]`) or write '
        "it outside the project"
        for path in outcome.undeclared_writes
    ]
    return messages


def check_restorable(ctx: Context, spec: StageSpec, entry: LockEntry) -> None:
    """Refuse (before anything is touched) outputs of a lock that the stage does not declare,
    and outputs that lead out of the project through a symlink."""
    undeclared = undeclared_outputs(spec, entry)
    if undeclared:
        raise LockFileError(
            f"the lock file of stage '{spec.name}' ({ctx.project.lock_file(spec.name, spec.state_dir)}) records "
            f"output(s) {', '.join(repr(path) for path in undeclared)} that the stage does not "
            "declare, so nothing was restored. Fix: restore the lock file from git, or run "
            f"`pivot repro {spec.name}` to rewrite it."
        )
    for out in entry.outs:
        fs.check_inside(ctx.project.root, out.path)


def restore_outputs(ctx: Context, spec: StageSpec, entry: LockEntry) -> None:
    """Put a stage's recorded cached outputs back in the workspace (uncached ones are not there).

    Only paths the stage declares are touched, never through a symlink leading out of the
    project; every byte placed is checked against its hash (a corrupt blob is moved aside and
    CacheCorruptError raised)."""
    root = ctx.project.root
    check_restorable(ctx, spec, entry)
    for out in entry.outs:
        if not out.cache:
            continue
        if out.is_directory:
            ctx.cache.restore_directory(out.hash, root / out.path)
        else:
            ctx.cache.restore_file(out.hash, root / out.path)
    remember_outputs(ctx, tuple(out for out in entry.outs if out.cache))


def restore_run(ctx: Context, step: Step, spares: fs.SpareFiles | None = None) -> None:
    """Apply a run-cache hit: put that run's outputs in the workspace (uncached ones too, from
    the blobs the run cache keeps), then commit them as this stage's result."""
    root = ctx.project.root
    assert step.run_entry is not None
    spec = ctx.graph.stages[step.stage]
    entry = LockEntry(
        stage=spec.name,
        code=dict(step.code),
        params=dict(step.params),
        deps=dep_entries(ctx, spec),
        outs=step.from_run_cache,
        observed=step.observed,
    )
    check_restorable(ctx, spec, entry)  # run-cache entries come from remotes too
    try:
        inline = run_cache.inline_from_bytes(ctx.runs.read(step.run_entry))
    except (KeyError, ValueError) as error:  # gone, or not matching its hash: re-run the stage
        raise CacheCorruptError(
            f"run-cache entry {step.run_entry} of stage '{spec.name}' is corrupt ({error}); "
            "nothing was placed and the stage re-runs"
        ) from None
    for out in step.from_run_cache:
        if out.path in inline:
            fs.atomic_write_bytes(root / out.path, inline[out.path])
        elif out.is_directory:
            ctx.cache.restore_directory(out.hash, root / out.path)
        else:
            ctx.cache.restore_file(out.hash, root / out.path)
    lock.write_lock(ctx.project.lock_file(spec.name, spec.state_dir), entry, spares)
    remember_outputs(ctx, step.from_run_cache)


def put_back_previous_outputs(ctx: Context) -> list[str]:
    """Put back the previous outputs that stages killed mid-run had set aside (only where the
    workspace has nothing, and only outputs the pipeline declares); the paths put back."""
    declared = {path for spec in ctx.graph.stages.values() for path in spec.out_paths}
    return backup.recover(ctx.project.root, ctx.project.pivot_dir / SCRATCH_DIR, declared)


SCRATCH_DIR = "tmp"  # `.pivot/tmp`: a running stage's previous outputs wait here (git-ignored)
DURATIONS = "stage-seconds"  # state db namespace: how long each stage's last run took


def recorded_durations(ctx: Context, stages: Sequence[str]) -> dict[str, float]:
    """Seconds each stage's last successful run took, for the stages this machine has run."""
    found = ctx.state.get_values(DURATIONS, stages)
    return {name: float(value.decode()) for name, value in found.items()}


def _summaries(step: Step, note: str = "") -> tuple[str, ...]:
    """What a step's result says about why: its reasons' summaries, then `note`."""
    reasons = tuple([reason.summary for reason in step.reasons]) if step.reasons else ()
    return (*reasons, note) if note else reasons


def _up_to_date(step: Step) -> StageResult:
    """The result of a step the plan skips: no event, nothing read."""
    return StageResult(step.stage, RunStatus.SKIPPED, _summaries(step))


def _cut_off(step: Step, deps: tuple[DepEntry, ...]) -> bool:
    """The plan's early cut-off rule applied: its inputs came out as the lock records them."""
    return step.cutoff is not None and frozenset(deps) == step.cutoff


def _not_sent(stage: str, error: Exception) -> str:
    return (
        f"stage '{stage}' could not be sent to a worker process: {type(error).__name__}: "
        f"{error}\nA stage run by a pool worker must pickle: its function, params and loaders "
        "must be defined at module level (or run it in this process with -j 1)"
    )


def _worker_died(stage: str, error: Exception) -> Outcome:
    message = (
        f"stage '{stage}': the worker process running it died ({type(error).__name__}: {error}). "
        "A native crash, os._exit() or the out-of-memory killer ends a worker, and the stages "
        "running beside it fail too: run `pivot repro` again (with -j 1 to see a crash in this "
        "process)"
    )
    return Outcome(stage, OutcomeKind.WORKER_DIED, (), 0.0, "", message)


_STOPPED = "not run: the run stopped after a failure (use --keep-going)"

SMALL_STAGE = 0.02
"""Seconds: stages this run finishes faster than this (on average) are shipped in chunks."""
SMALL_AFTER = 8
"""Stages this run must have finished before it judges them small."""
CHUNK_SECONDS = 0.05
"""About how long one chunk of small stages should keep a worker busy."""
MAX_CHUNK = 32
"""Most stages shipped to a pool worker in one round trip."""


@dataclasses.dataclass
class _Run:
    """Mutable bookkeeping of one execution (local to `run_plan`).

    Each step waits on a count of unfinished upstream steps; finishing a step releases its
    downstream, and a finished future reports itself on a queue (never a wait on all that are
    running), so scheduling N stages costs O(N + edges).

    What is in flight is bounded: `-j` stages at a time, as long as stages take long (what
    `StageStarted` reports is then what runs). Once this run's stages prove small (a mean under
    `SMALL_STAGE`), they go to the workers in chunks and two chunks per worker are in flight,
    so no worker waits for this process between two stages.
    """

    ctx: Context
    plan: Plan
    executor: Executor
    keep_going: bool
    emit: EventSink
    strict: bool = False
    warnings: list[str] = dataclasses.field(default_factory=list)
    run_id: str = ""
    live: LiveOutput | None = None
    results: dict[str, StageResult] = dataclasses.field(default_factory=dict)
    running: dict[Future[Outcome], tuple[Step, tuple[DepEntry, ...], int]] = dataclasses.field(
        default_factory=dict
    )
    """Each future in flight: its step, the dependencies it runs on, the CPU slots it takes."""
    stopping: bool = False
    counter: int = 0
    index: dict[str, int] = dataclasses.field(default_factory=dict)
    ready: collections.deque[Step] = dataclasses.field(default_factory=collections.deque)
    """Steps to start (or settle as blocked), their upstream settled, in the order they got so."""
    up_to_date: list[Step] = dataclasses.field(default_factory=list)
    """SKIP steps whose upstream is settled, last in first out: settled depth first and after
    any step in `ready` (they use no worker), so a step to run they release is sent at once,
    not after every other up-to-date step of the pipeline."""
    pending: dict[str, int] = dataclasses.field(default_factory=dict)
    poisoned: set[str] = dataclasses.field(default_factory=set)
    inputs: dict[str, tuple[DepEntry, ...]] = dataclasses.field(default_factory=dict)
    """The dependencies of steps whose early cut-off rule said run (`_decide_cut_off`), by
    stage, until they start."""
    steps: dict[str, Step] = dataclasses.field(default_factory=dict)
    total: int = 0
    produced: dict[str, str] = dataclasses.field(default_factory=dict)
    """Output path -> hash of what ran in this run and was left off the workspace."""
    locks: dict[str, WrittenLock] = dataclasses.field(default_factory=dict)
    """The locks pool workers wrote, by stage (what `RunReport.locks` says)."""
    held: collections.deque[Step] = dataclasses.field(default_factory=collections.deque)
    """Ready steps waiting for free CPU slots, oldest first (`-j`; a stage declaring
    `resources={"cpus": n}` takes n)."""
    slots_used: int = 0
    slots_of: dict[str, int] = dataclasses.field(default_factory=dict)
    """Stage -> the CPU slots its step takes (`_slots`)."""
    wide: int = 0
    """Steps in flight taking more than one slot: while one is, nothing is queued beside it."""
    mean_seconds: float = 0.0
    """Moving mean of how long this run's stages took in their worker."""
    measured: int = 0
    """Stages that count in `mean_seconds`."""
    unshipped: int = 0
    """Tasks submitted since the executor's last `flush`."""
    finished: queue.SimpleQueue[Future[Outcome]] = dataclasses.field(
        default_factory=queue.SimpleQueue
    )
    spares: fs.SpareFiles = dataclasses.field(default_factory=fs.SpareFiles)
    """Lock files are rewritten through these (no file created or freed per rewrite)."""

    def __post_init__(self) -> None:
        project = self.ctx.project
        self._root, self._cache_dir = str(project.root), str(project.cache_dir)
        self._scratch_dir = str(project.pivot_dir / SCRATCH_DIR)
        self._log_dir = str(logs.run_log_dir(project.pivot_dir, self.run_id)) if self.run_id else ""
        self._pivot_dir = project.pivot_dir
        self.in_process = isinstance(self.executor, SerialExecutor)  # stages run in `submit`
        steps = self.steps = {step.stage: step for step in self.plan.steps}
        self.total = sum(1 for step in self.plan.steps if step.action is not Action.SKIP)
        upstream = self.ctx.graph.upstream
        pending, results = self.pending, self.results
        for step in self.plan.steps:  # (in topological order)
            name = step.stage
            count = sum(up in steps and up not in results for up in upstream[name])
            if count == 0 and step.action is Action.SKIP:
                # settled here, as nothing upstream of it runs: a run of few stages among many
                # (a helper edit) sends its first tasks at once, with no pass over the rest
                results[name] = _up_to_date(step)
                continue
            pending[name] = count
            if count == 0:
                self._queue(step)
        self.up_to_date.reverse()  # the first in plan order first

    def _queue(self, step: Step) -> None:
        (self.up_to_date if step.action is Action.SKIP else self.ready).append(step)

    def finish(
        self,
        step: Step,
        status: RunStatus,
        duration: float = 0.0,
        output: str = "",
        error: str = "",
        note: str = "",
        worker: str = "",
        *,
        ended: Outcome | None = None,
    ) -> None:
        """Settle a step. `ended`: the outcome of its run in a worker, which tells what its
        log and progress side file hold (else both are looked at)."""
        reasons = _summaries(step, note)
        self.results[step.stage] = StageResult(
            step.stage, status, reasons, duration, output, error, worker
        )
        printed = progressed = True
        published = False
        if ended is not None and ended.kind is not OutcomeKind.WORKER_DIED:
            printed, progressed = bool(output), ended.progressed  # its log holds `output`
            published = ended.published
        if self.live is not None:
            self.live.finish(step.stage, printed=printed, progressed=progressed)
        if published:  # by the worker, which left the progress reports to the live output
            if progressed:
                logs.remove_progress(os.path.join(self._log_dir, logs.log_name(step.stage)))
        elif self.run_id and status in (RunStatus.RAN, RunStatus.FAILED):
            logs.publish_log(
                self._pivot_dir,
                self.run_id,
                step.stage,
                output,
                progressed=progressed,
                first=step.previous is None,
            )
        if step.stage in self.index or status is RunStatus.BLOCKED:  # blocked: never started
            index = self.index.get(step.stage, 0)
            self.emit(
                StageFinished(
                    step.stage, status, index, self.total, duration, output, error, reasons
                )
            )
        self._release(step.stage, failed=status in (RunStatus.FAILED, RunStatus.BLOCKED))

    def _release(self, stage: str, *, failed: bool) -> None:
        """Count a settled step off its downstream steps; those with nothing left to wait for
        are ready (a failed or blocked step poisons them)."""
        steps, pending = self.steps, self.pending
        for down in self.ctx.graph.downstream[stage]:
            if down not in steps:
                continue
            if failed:
                self.poisoned.add(down)
            pending[down] -= 1
            if pending[down] == 0:
                self._queue(steps[down])

    def _skip(self, step: Step) -> None:
        """Settle a step the plan skips (up to date): a result, no event, nothing to read."""
        self.results[step.stage] = _up_to_date(step)
        self._release(step.stage, failed=False)

    def dispatch(self, step: Step) -> None:
        """Start a ready step, or settle it without running (skip, blocked, stopped)."""
        if step.action is Action.SKIP:
            self._skip(step)
        elif step.stage in self.poisoned:
            self.finish(step, RunStatus.BLOCKED, error="not run: an upstream stage failed")
        elif self.stopping:
            self.finish(step, RunStatus.BLOCKED, error=_STOPPED)
        elif step.cutoff is not None and step.stage not in self.inputs:
            self._decide_cut_off(step)
        elif not self._fits(step):
            self.held.append(step)
        else:
            self.start(step)

    def _decide_cut_off(self, step: Step) -> None:
        """Apply a step's early cut-off rule as soon as its upstream is settled, without waiting
        for a CPU slot (it takes none when it holds): skip it, or keep the dependencies it was
        decided on and start it (or hold it) as any step to run."""
        deps = self._dependencies(step)
        if deps is None:
            return
        if _cut_off(step, deps):
            self._begin(step)
            note = "not run: upstream re-ran with byte-identical outputs (early cut-off)"
            return self.finish(step, RunStatus.SKIPPED, note=note)
        self.inputs[step.stage] = deps
        self.dispatch(step)

    def _dependencies(self, step: Step) -> tuple[DepEntry, ...] | None:
        """The step's dependencies as they are now; None when one is missing (the step has
        failed then, numbered first if it was not)."""
        try:
            return dep_entries(self.ctx, self.ctx.graph.stages[step.stage], self.produced)
        except PivotError as error:
            if step.stage not in self.index:
                self._begin(step)
            self.fail(step, str(error))
            return None

    def _slots(self, step: Step) -> int:
        """CPU slots a RUN step takes: its declared `cpus` (at least 1, at most all of them);
        worked out once per step (asked when it is held, started and collected)."""
        found = self.slots_of.get(step.stage)
        if found is None:
            slots = self.executor.slots
            found = 0
            if slots is not None and step.action is Action.RUN:
                declared = self.ctx.graph.stages[step.stage].resources.get("cpus", 1)
                found = max(1, min(slots, int(declared)))
            self.slots_of[step.stage] = found
        return found

    def release_held(self) -> None:
        """Dispatch held steps, oldest first, while CPU slots are free; a step that still does
        not fit keeps its place. Costs O(started + wide steps skipped), never O(held)."""
        skipped: list[Step] = []
        while self.held and (self.stopping or not self.running or self.slots_used < self._limit(1)):
            step = self.held.popleft()
            if self.stopping or self._fits(step):
                self.dispatch(step)
            else:
                skipped.append(step)
        self.held.extendleft(reversed(skipped))

    @property
    def chunk(self) -> int:
        """Stages a pool round trip carries: 1 until this run's stages prove small."""
        mean = self.mean_seconds
        if self.measured < SMALL_AFTER or mean >= SMALL_STAGE:
            return 1
        return max(1, min(MAX_CHUNK, int(CHUNK_SECONDS / max(mean, 1e-4))))

    def flush(self) -> None:
        """Ship what was submitted: in chunks of `chunk` while plenty of work waits, smaller
        ones when little does (a narrow DAG: each result releases the next stages sooner)."""
        slots = self.executor.slots or 1
        backlog = self.unshipped + len(self.held)
        self.unshipped = 0
        chunk = max(1, min(self.chunk, backlog // (2 * slots)))
        self.executor.flush(chunk, stop_on_failure=not self.keep_going)

    def _limit(self, need: int) -> int:
        """Slots that may be in flight for a step taking `need` of them."""
        slots = self.executor.slots
        if slots is None:
            return 1 << 62
        chunk = self.chunk
        if need > 1 or self.wide or chunk == 1:
            return slots
        return slots * 2 * chunk

    def _fits(self, step: Step) -> bool:
        need = self._slots(step)
        return not self.running or self.slots_used + need <= self._limit(need)

    def _begin(self, step: Step) -> None:
        """Number a step and tell that it starts."""
        self.counter += 1
        self.index[step.stage] = self.counter
        self.emit(StageStarted(step.stage, self.counter, self.total))

    def start(self, step: Step) -> None:
        self._begin(step)
        if step.action is Action.RESTORE:
            flush_sink(self.emit)  # (restoring may take long)
            try:
                return self._restore(step)
            except CacheCorruptError as error:  # a blob is missing or bad: make it again
                summary = f"cache cannot restore it, re-running: {error}"
                step = dataclasses.replace(
                    step, reasons=(*step.reasons, Reason(ReasonKind.CORRUPT, summary))
                )
        deps = self.inputs.pop(step.stage, None)
        if deps is None:
            deps = self._dependencies(step)
            if deps is None:
                return
        task = self._task(step, deps)
        if self.live is not None and task.log_path:
            self.live.follow(step.stage, task.log_path)
        if self.in_process:  # the stage runs in `submit`
            flush_sink(self.emit)
        try:
            future = self.executor.submit(task)
        except Exception as error:  # e.g. the task does not pickle for a pool worker
            return self.fail(step, _not_sent(step.stage, error))
        slots = self._slots(step)
        self.running[future] = (step, deps, slots)
        self.slots_used += slots
        self.wide += slots > 1
        if future.done():  # the serial executor: take the result now so fail-fast stops at once
            self.collect(future)
        else:
            future.add_done_callback(self.finished.put)
            self.unshipped += 1

    def _restore(self, step: Step) -> None:
        """Restore a step's outputs (from its lock or a run-cache hit); CacheCorruptError (to
        re-run it) when the cache lacks good content for one."""
        try:
            if step.from_run_cache:
                restore_run(self.ctx, step, self.spares)
            else:
                assert step.previous is not None
                spec = self.ctx.graph.stages[step.stage]
                restore_outputs(self.ctx, spec, step.previous)
        except CacheCorruptError:
            raise
        except PivotError as error:
            return self.fail(step, f"stage '{step.stage}': {error}")
        self.finish(step, RunStatus.RESTORED)

    def _task(self, step: Step, deps: tuple[DepEntry, ...]) -> StageTask:
        spec = self.ctx.graph.stages[step.stage]
        previous: Mapping[str, str] = {}
        if step.previous is not None:
            previous = {out.path: out.hash for out in step.previous.outs if out.cache}
        log = os.path.join(self._log_dir, logs.log_name(spec.name)) if self._log_dir else ""
        placed = self.executor.places_outputs
        # A pool worker writes the lock (a new one or a rewrite), sparing this process, which
        # a run of few stages among many (a helper edit) waits on. Written here: a lock that
        # --strict may refuse after the run, and a rewrite by a stage run in this process
        # (through `spares`: no file created).
        lock_path = ""
        if placed and not self.strict and (step.previous is None or not self.in_process):
            lock_path = self.ctx.project.lock_path(spec.name, spec.state_dir)
        return StageTask(
            spec,
            self._root,
            self._cache_dir,
            self.ctx.project.config.link_modes,
            {path: previous[path] for path in spec.out_paths if path in previous},
            inputs=deps,
            code=step.code,
            log_path=log,
            scratch_dir=self._scratch_dir,
            lock_path=lock_path,
            params=step.params,
            observed=step.observed,
            publish_log=placed,
            first_run=step.previous is None,
        )

    def fail(
        self,
        step: Step,
        error: str,
        duration: float = 0.0,
        output: str = "",
        worker: str = "",
        *,
        ended: Outcome | None = None,
    ) -> None:
        self.finish(step, RunStatus.FAILED, duration, output, error, worker=worker, ended=ended)
        self.stopping = self.stopping or not self.keep_going

    def collect(self, future: Future[Outcome]) -> None:
        step, deps, slots = self.running.pop(future)
        self.slots_used -= slots
        self.wide -= slots > 1
        try:
            outcome = future.result()
        except NotRun:  # its chunk stopped at an earlier stage's failure
            return self.finish(step, RunStatus.BLOCKED, error=_STOPPED)
        except NotSent as error:  # the task does not pickle for a pool worker
            return self.fail(step, _not_sent(step.stage, error.error))
        except Exception as error:  # a pool worker died: native crash, os._exit(), OOM kill
            outcome = _worker_died(step.stage, error)
        self.measured += 1
        weight = max(0.2, 1 / self.measured)
        self.mean_seconds += weight * (outcome.duration - self.mean_seconds)
        if not outcome.ok:
            return self.fail(
                step, outcome.error, outcome.duration, outcome.output, outcome.worker, ended=outcome
            )
        undeclared = undeclared_files(outcome)
        if undeclared and self.strict:
            text = "\n".join([*undeclared, "(--strict: undeclared files fail the stage)"])
            return self.fail(
                step, text, outcome.duration, outcome.output, outcome.worker, ended=outcome
            )
        self.warnings += undeclared
        placed = self.executor.places_outputs
        if not placed:
            self.produced.update((out.path, out.hash) for out in outcome.outs)
        try:
            if outcome.run_key:  # the worker wrote the lock (see `worker._write_lock`)
                remember_outputs(self.ctx, outcome.outs)
                remember_run(self.ctx, outcome.run_key, outcome.outs)
            else:
                commit_outputs(
                    self.ctx,
                    step,
                    deps,
                    outcome.outs,
                    outcome.observed,
                    placed=placed,
                    spares=self.spares,
                )
        except PivotError as error:  # e.g. the lock file's directory is read-only
            return self.fail(
                step,
                f"stage '{step.stage}': {error}",
                outcome.duration,
                outcome.output,
                ended=outcome,
            )
        if outcome.lock_signature is not None:  # the entry the worker wrote (`_write_lock`)
            entry = LockEntry(step.stage, step.code, step.params, deps, outcome.outs, step.observed)
            self.locks[step.stage] = WrittenLock(entry, outcome.lock_signature)
        self.ctx.state.set_value(DURATIONS, step.stage, f"{outcome.duration:.6f}".encode())
        self.finish(
            step,
            RunStatus.RAN,
            outcome.duration,
            outcome.output,
            worker=outcome.worker,
            ended=outcome,
        )


def _next_finished(finished: queue.SimpleQueue[Future[Outcome]]) -> Future[Outcome]:
    """The next future to finish; waits in short slices so that Ctrl-C is seen at once."""
    while True:
        try:
            return finished.get(timeout=0.2)
        except queue.Empty:
            continue


class _Serialized:
    """`emit` made safe to call from the live-output thread and the main thread alike; `flush`
    has it write out what it holds back (`events.flush_sink`)."""

    def __init__(self, emit: EventSink) -> None:
        self._emit, self._guard = emit, threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._guard:
            self._emit(event)

    def flush(self) -> None:
        with self._guard:
            flush_sink(self._emit)


def run_plan(
    ctx: Context,
    plan: Plan,
    executor: Executor,
    *,
    keep_going: bool,
    emit: EventSink,
    strict: bool = False,
    run_id: str = "",
) -> RunReport:
    """Execute every RUN/RESTORE step, as parallel as the DAG and executor allow; `strict`
    fails a stage that read or wrote a project file it does not declare (else a warning).

    With a `run_id`, what each stage prints goes to its log (`pivot logs`) and is emitted live
    as `StageOutput` events, with its `pivot.progress` reports.
    """
    emit = _Serialized(emit)
    slots = executor.slots
    watch = 2 * slots if slots else None  # what can be running; the rest wait in the pool
    runs = any(step.action is Action.RUN for step in plan.steps)
    live = LiveOutput(emit, watch) if run_id and runs else None
    run = _Run(ctx, plan, executor, keep_going, emit, strict, run_id=run_id, live=live)
    # While this machine's pool workers run the stages, this process only keeps the books
    # (little cyclic garbage): the collector is paused, and what the run keeps is frozen after
    # (`_collector.building`). Never while a stage runs in this process, nor beside a cluster
    # client (both may make cycles at any rate).
    books_only = isinstance(executor, ForkExecutor | PoolExecutor)
    try:
        with _collector.building() if books_only else contextlib.nullcontext():
            while run.ready or run.up_to_date or run.running or run.held:
                run.release_held()
                while run.ready or run.up_to_date:
                    if not run.ready:
                        run.dispatch(run.up_to_date.pop())
                        continue
                    run.dispatch(run.ready.popleft())
                    if run.unshipped == len(run.running) >= (executor.slots or 1):
                        run.flush()  # for idle workers: sent now, not after the other steps
                run.flush()
                # One chunk's outcomes (they come at once), then back to ship its freed slots
                # as one chunk: taking every finished chunk first left the workers idle.
                if run.running:
                    if run.finished.empty():  # about to wait: what was printed must show now
                        emit.flush()
                    run.collect(_next_finished(run.finished))
                    for _ in range(run.chunk - 1):
                        if not run.running or run.finished.empty():
                            break
                        run.collect(run.finished.get_nowait())
    except BaseException:
        executor.shutdown(kill=True)
        put_back_previous_outputs(ctx)  # of the stages the killed workers were running
        raise
    finally:
        if live is not None:
            live.close()
        emit.flush()
        run.spares.close()
        backup.remove_discarded(ctx.project.pivot_dir / SCRATCH_DIR)  # what workers left
        ctx.runs.flush()
        ctx.state.flush()
    ordered = tuple(run.results[step.stage] for step in plan.steps if step.stage in run.results)
    warnings = tuple(dict.fromkeys([*plan.warnings, *run.warnings]))
    return RunReport(ordered, warnings, run.locks)
