"""Library facade: init / status / repro / run / checkout / commit / push / fetch / pull.

Public module. The CLI is a thin layer over these functions. Imports of Pivot: everything below.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pivot import _collector, discovery, fingerprint, fs, graph, noop, plan, project, tracked
from pivot.errors import CacheCorruptError, NoRecordError, PivotError, UsageError
from pivot.execute import recorder
from pivot.execute.events import (
    Event,
    EventSink,
    RunFinished,
    RunReport,
    RunStarted,
    RunStatus,
    StageResult,
    flush_sink,
)
from pivot.pipeline import Pipeline
from pivot.plan import Action, Plan
from pivot.project import Project
from pivot.store import gitignore, logs, project_lock, snapshot
from pivot.store.cache import Cache
from pivot.store.lock import LockEntry, OutEntry
from pivot.store.project_lock import Held, Holder
from pivot.store.state import StateDB
from pivot.store.tracked import TrackedEntry
from pivot.workspace import Context, dep_entries, hash_path, record_output

if TYPE_CHECKING:  # running, sharing and maintenance are imported by the commands that use them
    from pivot.execute import executors
    from pivot.maintenance import Garbage, Problem
    from pivot.remote.base import Remote
    from pivot.remote.transfer import ProgressSink
    from pivot.sharing import SyncReport

__all__ = [
    "CheckoutReport",
    "Exclusive",
    "PullReport",
    "WatchScope",
    "checkout",
    "clean_litter",
    "commit",
    "fetch",
    "gc",
    "get",
    "init",
    "log_runs",
    "open_context",
    "pull",
    "push",
    "read_log",
    "remote_add",
    "remote_default",
    "remote_modify",
    "remote_remove",
    "remotes",
    "repro",
    "run",
    "status",
    "track",
    "verify",
    "watch_scope",
]


def init(directory: Path | str = ".", *, force: bool = False) -> Project:
    """Create a project in `directory`."""
    return project.init_project(Path(directory), force=force)


@contextlib.contextmanager
def _in_directory(path: Path) -> Iterator[None]:
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


@dataclasses.dataclass(frozen=True)
class Exclusive:
    """How a command that changes the workspace takes the project lock."""

    command: str
    wait: bool = True
    on_wait: Callable[[Holder | None], None] | None = None


def _command_line(name: str, targets: Sequence[str]) -> str:
    """How the lock file names this command: the CLI's own arguments, else the api call."""
    if os.path.basename(sys.argv[0]) in ("pivot", "__main__.py"):
        return shlex.join(["pivot", *sys.argv[1:]])
    return f"pivot.api.{name}({', '.join(map(repr, targets))})"


@contextlib.contextmanager
def _project_lock(
    proj: Project, exclusive: Exclusive | None, *, keep_snapshot: bool = False
) -> Iterator[Held | None]:
    """Hold the project lock for `exclusive`; the no-op snapshots go (this command may change
    what they were decided from) unless `keep_snapshot` (the caller drops them if it acts)."""
    if exclusive is None:
        yield None
        return
    on_wait = exclusive.on_wait or (lambda holder: None)
    path = proj.pivot_dir / project.LOCK_FILE
    with project_lock.hold(path, exclusive.command, wait=exclusive.wait, on_wait=on_wait) as held:
        if not keep_snapshot:
            snapshot.discard(proj.pivot_dir)
        yield held


@contextlib.contextmanager
def open_context(
    start: Path | str | None = None,
    *,
    pipeline: Pipeline | None = None,
    pipeline_optional: bool = False,
    exclusive: Exclusive | None = None,
    noop_recorder: noop.Recorder | None = None,
) -> Iterator[Context]:
    """Find the project (above `start`, default the cwd), take its lock (`exclusive`: for
    commands that change the workspace), load its `pipeline.py` unless a `pipeline` is given,
    build the graph once, open the state db. With `pipeline_optional`, a project without
    pipeline.py has no stages (for data-only commands: track, push, gc...).

    Process-wide changes last only while the block runs and are undone after it: the working
    directory is the project root (stages run there) and, for a discovered `pipeline.py`, the
    project root is first on `sys.path` (see `discovery.project_imports`). Taking over from a
    holder that was killed first cleans what its writes left behind; a command that changed the
    workspace ends by keeping the `.gitignore` files up to date. Taking the lock drops the no-op
    snapshots (`pivot.noop`), except with a `noop_recorder` (a plain `repro`, which drops them
    once it has something to do); that records what the pipeline's import and the graph read.
    """
    proj = _project(start)
    with contextlib.ExitStack() as scope:
        scope.enter_context(_collector.command())
        scope.enter_context(_in_directory(proj.root))
        keep = noop_recorder is not None
        held = scope.enter_context(_project_lock(proj, exclusive, keep_snapshot=keep))
        no_pipeline = pipeline is None and pipeline_optional and not proj.pipeline_file.exists()
        with _collector.building():
            if pipeline is None and not no_pipeline:
                scope.enter_context(discovery.project_imports(proj.root))
                with (
                    fingerprint.watch_imports(str(proj.root)),
                    _recording(noop_recorder, "importing"),
                ):
                    pipeline = discovery.load_pipeline(proj)  # (data files read on import)
            with _recording(noop_recorder, "planning"):
                dag = graph.build_graph(pipeline.stages if pipeline is not None else {}, proj.root)
        if pipeline is not None:
            project.remember_stage_names(proj, dag.order)
        state = scope.enter_context(StateDB(proj.state_db_path))
        ctx = Context(
            proj, dag, state, Cache(proj.cache_dir, proj.config.link_modes, verified=state)
        )
        scope.callback(_close_run_cache, ctx)  # before the state db closes
        if held is not None and held.interrupted is not None:
            snapshot.discard(proj.pivot_dir)
            clean_litter(ctx)
        yield ctx
        if held is not None:  # after the command: its run record saw git as it was
            _keep_ignored(ctx)


def _kept_files(proj: Project, *, holding: bool) -> tuple[list[str], list[str]]:
    """(the files a command keeps up to date besides what it decides, the paths whose existence
    matters to it): the stage-names file (`remember_stage_names`), the state db (opening it
    makes it) and, `holding` the project lock, the `.gitignore` files (`_keep_ignored`)."""
    root = proj.root
    kept, there = [proj.stage_names_file], [proj.state_db_path]
    if holding:
        kept += [root / ".gitignore", proj.pivot_dir / ".gitignore"]
        there += [directory / ".git" for directory in (root, *root.parents)]
    return [str(path) for path in kept], [str(path) for path in there]


def _close_run_cache(ctx: Context) -> None:
    """Index what the command added to the run cache, and close its pack (if it used it)."""
    if "runs" in ctx.__dict__:
        ctx.runs.close()


def _keep_ignored(ctx: Context) -> None:
    """Keep git from seeing Pivot's per-machine files and the cached outputs (the cache holds
    them; uncached outputs such as metrics stay tracked)."""
    root = ctx.project.root
    project.ensure_ignored(ctx.project)
    if any((directory / ".git").exists() for directory in (root, *root.parents)):
        cached = [
            path
            for spec in ctx.graph.stages.values()
            for out in spec.outs
            if out.cache
            for path in out.paths
        ]
        gitignore.update_gitignore(root, cached)


def clean_litter(ctx: Context) -> int:
    """Put back the previous outputs a killed stage had set aside, and delete the temp files
    that killed writes left in the cache, the lock-file directories, `.pivot/` and wherever the
    pipeline's outputs live. Call with the project lock held."""
    from pivot.execute import runner

    root = ctx.project.root
    specs = ctx.graph.stages.values()
    trees = {ctx.project.cache_dir, ctx.project.stages_dir}
    trees |= {ctx.project.lock_file(spec.name, spec.state_dir).parent for spec in specs}
    flat = {root, ctx.project.pivot_dir}
    for path in (path for spec in specs for path in spec.out_paths):
        flat.add((root / path).parent)
        if path.endswith("/"):
            trees.add(root / path)
    runner.put_back_previous_outputs(ctx)
    removed = sum(fs.remove_temp_files(tree, recursive=True) for tree in trees)
    return removed + sum(fs.remove_temp_files(directory, recursive=False) for directory in flat)


def _source(
    pipeline: Pipeline | Sequence[str] | None, targets: Sequence[str]
) -> tuple[Pipeline | None, Sequence[str]]:
    """(the pipeline given, if any; the stage names): a first argument that is not a Pipeline
    holds the stage names (the CLI's form, `repro(["train"])`)."""
    if pipeline is None or isinstance(pipeline, Pipeline):
        return pipeline, targets
    if isinstance(pipeline, str):
        raise UsageError(f"stage names are a list, not a string: write [{pipeline!r}]")
    if targets:
        raise UsageError("stage names were given twice; pass a Pipeline first, then the names")
    return None, pipeline


def _select(ctx: Context, targets: Sequence[str], *, upstream: bool) -> tuple[str, ...]:
    if not targets:
        return ctx.graph.order
    if upstream:
        return ctx.graph.with_upstream(targets)
    ctx.graph.check_known(targets)
    wanted = set(targets)
    return tuple(name for name in ctx.graph.order if name in wanted)


def status(
    pipeline: Pipeline | Sequence[str] | None = None,
    targets: Sequence[str] = (),
    *,
    force: bool = False,
    upstream: bool = True,
    root: Path | str | None = None,
    run_cache: bool = True,
    start: Path | str | None = None,
    noop_snapshot: bool = False,
) -> Plan:
    """What `repro` with the same options (`run`: upstream=False) would do, and why.

    `pipeline` is a Pipeline object to plan (from a notebook or script); without one the
    project's `pipeline.py` is loaded. The project is found at `root` (or above `start`, default
    the cwd). No stage runs and nothing is written but the state db (and, with
    `noop_snapshot`, what a plan of every stage with nothing to do was decided from: see
    `pivot.noop`; the CLI asks for it, a long-lived process should not, as the modules it
    holds may differ from their files).
    """
    given, names = _source(pipeline, targets)
    where = root if root is not None else start
    default = noop_snapshot and run_cache and upstream
    watcher = _noop_recorder("status", where, given, names, force, default)
    with open_context(where, pipeline=given, noop_recorder=watcher) as ctx:
        selected = _select(ctx, names, upstream=upstream)
        forced = selected if force else ()
        with _recording(watcher, "planning"):
            decided = plan.make_plan(ctx, selected, force=forced, run_cache=run_cache)
            decided = _with_tracked_warnings(ctx, decided) if not names else decided
        noop.write(
            ctx.project.pivot_dir, watcher, decided, *_kept_files(ctx.project, holding=False)
        )
        return decided


def _plan_again(
    ctx: Context,
    watcher: noop.Recorder,
    first: Plan,
    report: RunReport,
    known: plan.KnownPrints,
    elapsed: float,
) -> tuple[Plan, Plan]:
    """After a run of every stage: the plans the next plain `repro` and `status` would make,
    recorded for their no-op snapshots (they have nothing to do unless something changed
    meanwhile), so that the first no-op after a run needs no import of `pipeline.py` either.
    The code is what this process imported (its files are in the snapshot), so fingerprints
    are reused (`known`), and so are the locks the `first` plan read that did not change (the
    stages the run skipped, whether that plan did or the early cut-off did: `report`) and the
    locks pool workers wrote that are still the files they wrote (`report.locks`). What
    the run just wrote is trusted once it has settled (`noop.RACY_NS`): waiting for that is
    worth it when it costs a small share of the run (`elapsed` seconds so far)."""
    _keep_ignored(ctx)  # what the command's end writes, before it is recorded
    untouched = {r.stage for r in report.results if r.status is RunStatus.SKIPPED}
    acted = [step.stage for step in first.steps if step.stage not in untouched]
    kept = _kept_files(ctx.project, holding=True)[0]
    written = [*_outputs_of(ctx, acted), *kept]
    settled, skipped = _left_alone(ctx, first, untouched, acted)

    def read(stage: str, path: str) -> LockEntry | None:
        step = skipped.get(stage)
        if step is not None:
            return step.previous if watcher.unchanged(path) else None
        written = report.locks.get(stage)
        return written.entry if written and watcher.holds(path, written.signature) else None

    try:
        with watcher.replanning(written, elapsed * noop.SETTLE_SHARE, _forget(ctx, acted, written)):
            selected = [step.stage for step in first.steps]
            cut_off = _cut_off(ctx, watcher, skipped.values())
            again = plan.make_plan(
                ctx, selected, known=known, read=read, settled=settled, cut_off=cut_off
            )
            status_plan = _with_tracked_warnings(ctx, again)
        # (past the span's audit hook, which every `id` call would feed)
        distinct = {id(made.sources): made.sources for _, made in known.values()}
        watcher.note_sources(source for sources in distinct.values() for source in sources)
        return again, status_plan
    except PivotError as error:  # the run succeeded: this only costs the next no-op its speed
        watcher.refuse(f"planning again after the run failed: {error}")
        return Plan((), ()), Plan((), ())


def _left_alone(
    ctx: Context, first: Plan, untouched: set[str], acted: Sequence[str]
) -> tuple[dict[str, plan.Step], dict[str, plan.Step]]:
    """The steps of `first` whose stage the run left `untouched` (skipped, by that plan or by
    the early cut-off), by stage: (the SKIP steps that no stage's run can have changed, as none
    of the stage's upstream stages `acted` (ran or restored): its inputs are as that plan found
    them; the others)."""
    downstream = ctx.graph.downstream
    below = {name for stage in acted for name in downstream[stage]}
    settled, others = {}, {}
    for step in first.steps:
        name = step.stage
        if name not in untouched:
            continue
        if step.action is Action.SKIP and name not in below:
            settled[name] = step
        else:
            others[name] = step
    return settled, others


def _cut_off(
    ctx: Context, watcher: noop.Recorder, skipped: Iterable[plan.Step]
) -> dict[str, plan.Step]:
    """Those of the `skipped` steps (of stages the run skipped) that the early cut-off rule
    skipped, when the stage's lock file and outputs (files) are still recorded as the plan
    that made the step saw them (`Recorder.still`): the plan made again needs to read neither
    again (`plan.make_plan`'s `cut_off`)."""
    proj, specs = ctx.project, ctx.graph.stages
    root = os.path.join(proj.root, "")
    found = {}
    for step in skipped:
        entry = step.previous
        if step.cutoff is None or entry is None:
            continue
        paths = [f"{root}{out.path}" for out in entry.outs]
        paths.append(proj.lock_path(step.stage, specs[step.stage].state_dir))
        if all(not path.endswith("/") and watcher.still(path) for path in paths):
            found[step.stage] = step
    return found


def _outputs_of(ctx: Context, stages: Sequence[str]) -> list[str]:
    """The absolute paths of the `stages`' outputs (a directory's ends with a separator)."""
    root, specs = os.path.join(ctx.project.root, ""), ctx.graph.stages
    return [f"{root}{path}" for name in stages for path in specs[name].out_paths]


def _forget(ctx: Context, acted: Sequence[str], written: Sequence[str]) -> noop.Forget | None:
    """What the first plan saw that the run may have changed (None: all of it, when every
    stage acted): what the run wrote (`written`), the lock files and dependencies of the
    stages that acted, and Pivot's own directory but for lock files."""
    if len(acted) == len(ctx.graph.stages):
        return None
    proj, specs = ctx.project, ctx.graph.stages
    root = os.path.join(proj.root, "")
    paths = [*written, *(f"{root}{path}" for name in acted for path in specs[name].dep_paths)]
    paths += [proj.lock_path(name, specs[name].state_dir) for name in acted]
    directories = tuple(path for path in paths if path.endswith("/"))
    return noop.Forget(
        paths=frozenset(paths + [path.rstrip("/") for path in directories]),
        below=(*directories, os.path.join(proj.pivot_dir, "")),
        except_below=(os.path.join(proj.locks_dir(), ""),),
    )


def _recording(watcher: noop.Recorder | None, span: str) -> contextlib.AbstractContextManager[None]:
    """`watcher`'s span ("importing" or "planning"), or nothing without one."""
    if watcher is None:
        return contextlib.nullcontext()
    return watcher.importing() if span == "importing" else watcher.planning()


def _noop_recorder(
    command: str,
    where: Path | str | None,
    given: Pipeline | None,
    names: Sequence[str],
    force: bool,
    default: bool,
) -> noop.Recorder | None:
    """A recorder of what a plan of the whole discovered pipeline, with the default options,
    depends on (for the no-op snapshot of `command`); None for any other plan."""
    if given is not None or names or force or not default:
        return None
    return noop.Recorder(command, _project(where).root)


def _with_tracked_warnings(ctx: Context, decided: Plan) -> Plan:
    missing, changed = tracked.stale(ctx, tracked.find_tracked(ctx.project.root))
    notes = [
        f"tracked '{path}' is missing: `pivot pull {path}` (or `pivot checkout {path}`)"
        for path in missing
    ] + [
        f"tracked '{path}' changed since `pivot track`: run `pivot track {path}` to record "
        "the new version (and commit its .pvt file)"
        for path in changed
    ]
    return dataclasses.replace(decided, warnings=decided.warnings + tuple(notes))


def _epoch(decided: Plan) -> str:
    codes = {step.stage: dict(step.code) for step in decided.steps}
    return hashlib.sha256(json.dumps(codes, sort_keys=True).encode()).hexdigest()[:16]


def _parallel_width(ctx: Context, decided: Plan) -> int:
    """How many RUN steps could run at once at most (widest level of the RUN sub-DAG)."""
    level: dict[str, int] = {}
    for step in decided.by_action(Action.RUN):
        ups = [level[up] for up in ctx.graph.upstream[step.stage] if up in level]
        level[step.stage] = 1 + max(ups, default=0)
    counts: dict[int, int] = {}
    for value in level.values():
        counts[value] = counts.get(value, 0) + 1
    return max(counts.values(), default=0)


POOL_START_SECONDS = 0.5
"""About what starting worker processes costs here (interpreter, imports, the user's modules)."""


def _quick(ctx: Context, decided: Plan) -> bool:
    """True when every stage to run took, last time, less in total than starting a pool costs:
    then running them in this process is faster than any parallel schedule."""
    from pivot.execute import runner

    names = [step.stage for step in decided.by_action(Action.RUN)]
    durations = runner.recorded_durations(ctx, names)
    return len(durations) == len(names) and sum(durations.values()) < POOL_START_SECONDS


def _local_executor(
    ctx: Context, decided: Plan, jobs: int | None, fresh_workers: bool, warmed: str | None
) -> executors.Executor:
    """`warmed`: the epoch of the workers `_warm_workers` started (fresh ones) for this run."""
    from pivot.execute import executors

    workers = _workers(ctx, decided, jobs)
    if warmed is None:
        return executors.make_executor(workers, _epoch(decided), fresh=fresh_workers)
    if workers > 1:  # all the warm workers (no resize, which would wait for their warm-up)
        workers = _job_limit(ctx, jobs)
    return executors.make_executor(workers, warmed)


def _workers(ctx: Context, decided: Plan, jobs: int | None) -> int:
    """How many worker processes the run takes (1: it runs in this process)."""
    workers = _parallel_width(ctx, decided)
    if jobs is None and ctx.project.config.jobs is None and _quick(ctx, decided):
        workers = 1
    if workers > 1:
        workers = min(workers, _job_limit(ctx, jobs))
    return workers


def _forked_executor(
    ctx: Context, decided: Plan, jobs: int | None, executor: str | None, warmed: str | None
) -> executors.ForkExecutor | None:
    """The run's worker processes forked from this one now that it has planned: they start
    in milliseconds, with the user's modules imported and the specs and plan in memory. Only
    for a local run on more than one worker whose warm-up started no loky workers (those are
    warm: they are kept), and only where forking is safe (`executors.fork_possible`: Linux, no
    other thread). Made before `RunStarted`, whose terminal display starts a thread. None:
    `_execute` picks the executor as usual."""
    if warmed is not None or decided.nothing_to_do or _executor_of(ctx, executor) != "local":
        return None
    from pivot.execute import executors

    if not executors.fork_possible():
        return None
    workers = _workers(ctx, decided, jobs)
    if workers <= 1:
        return None
    steps = decided.steps
    held = [*ctx.graph.stages.values(), *(s.code for s in steps), *(s.params for s in steps)]
    epoch = f"forked-{os.urandom(8).hex()}"  # this run's alone (a loky pool may take over)
    try:
        return executors.ForkExecutor(workers, epoch, str(ctx.project.root), held)
    except OSError:  # no process or pipe left to make: loky's pool then
        return None


def _job_limit(ctx: Context, jobs: int | None) -> int:
    """Stages a run may run at once: `-j`, else the project's `jobs:`, else the CPUs."""
    from pivot.execute import executors

    return jobs or ctx.project.config.jobs or executors.available_cpus()


WARM_FROM_STAGES = 1000
"""Pipelines this large take about as long to plan as workers take to start (0.2-0.5 s here):
smaller ones would not find them warm sooner, and the command would wait for them at exit."""


def _warm_workers(
    ctx: Context,
    watcher: noop.Recorder | None,
    executor: str | None,
    jobs: int | None,
    fresh_workers: bool,
    fork_workers: bool,
) -> str | None:
    """Start the pool's workers before planning when stages will most likely run, so that
    they start and import the stage modules while this process plans (about 0.5-1 s of a
    10% helper edit at N=10,000): a plain `pivot repro` whose no-op snapshot did not hold
    because the user's code was edited since it was written. Never for a no-op taking the
    usual path, for a data edit (a few stages usually run in this process then), for `status`
    or `-j 1`, nor when the workers will most likely be forked once planned (`fork_workers`,
    where forking is possible): those start in milliseconds, with the modules imported.
    (Their threads keep the first fingerprinting from forking, which only stages added since
    the snapshot, with no lock, would do.) Returns the workers' epoch (None: none started)."""
    if watcher is None or _executor_of(ctx, executor) != "local":
        return None
    if len(ctx.graph.stages) < WARM_FROM_STAGES or (jobs or ctx.project.config.jobs) == 1:
        return None
    if not _code_edited_since(ctx, snapshot.path_of(ctx.project.pivot_dir, "repro")):
        return None
    from pivot.execute import executors

    if fork_workers and executors.fork_possible():
        return None
    workers = _job_limit(ctx, jobs)  # (imports loky: only once workers may well start)
    if workers <= 1:
        return None
    found = {getattr(spec.func, "__module__", None) for spec in ctx.graph.stages.values()}
    modules = sorted(name for name in found if name and name != "__main__")
    gate = str(ctx.project.pivot_dir)
    return executors.warm_pool(
        workers, str(ctx.project.root), modules, gate=gate, fresh=fresh_workers
    )


def _executor_of(ctx: Context, executor: str | None) -> str:
    """Where the run's stages go: `executor` (`--executor`) or the project's `executor:`."""
    chosen = project.parse_executor(executor, "--executor") if executor else None
    return chosen or ctx.project.config.executor


def _code_edited_since(ctx: Context, path: str) -> bool:
    """Whether a module of the project imported now was written after file `path` (False when
    there is no such file)."""
    try:
        since = os.stat(path).st_mtime_ns
    except OSError:
        return False
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and discovery.is_user_module(module, ctx.project.root):
            with contextlib.suppress(OSError):
                if os.stat(file).st_mtime_ns > since:
                    return True
    return False


def _cluster_executor(
    ctx: Context, address: str, jobs: int | None, download: bool
) -> executors.Executor:
    from pivot import sharing
    from pivot.execute import cluster  # dask is imported only for a cluster run

    config = ctx.project.config
    local = address == cluster.LOCAL
    options = cluster.ClusterOptions(
        address=address,
        remote=None if local else sharing.worker_remote_settings(ctx.project),
        upload_code=not local and config.cluster.upload_code,
        download=download,
        workers=jobs or config.jobs,
        include_packages=config.fingerprint_packages,
    )
    return cluster.ClusterExecutor.from_context(ctx, options)


def _execute(
    ctx: Context,
    decided: Plan,
    *,
    jobs: int | None,
    keep_going: bool,
    emit: EventSink,
    run_id: str,
    executor: str | None = None,
    download: bool = True,
    strict: bool = False,
    fresh_workers: bool = False,
    warmed: str | None = None,
    running: executors.ForkExecutor | None = None,
) -> RunReport:
    """`running`: the forked workers already made (`_forked_executor`), released once the run
    ends (they exit meanwhile: the caller waits for them, `shutdown`), else an executor chosen
    here and shut down."""
    from pivot.execute import runner

    chosen = _executor_of(ctx, executor)
    if chosen == "local" and not download:
        raise UsageError("--no-download applies to a cluster run (--executor); drop it")
    made: executors.Executor
    if running is not None:
        made = running
    elif chosen == "local":
        made = _local_executor(ctx, decided, jobs, fresh_workers, warmed)
    else:
        made = _cluster_executor(ctx, chosen, jobs, download)
    logs.prune_runs(ctx.project.pivot_dir, keep=logs.KEEP_RUNS - 1)
    try:
        return runner.run_plan(
            ctx,
            decided,
            made,
            keep_going=keep_going,
            emit=emit,
            strict=strict,
            run_id=run_id,
        )
    except KeyboardInterrupt:  # workers stopped mid-write may have left temp files: none stays
        clean_litter(ctx)
        raise
    finally:
        if running is not None:
            running.release()
        else:
            made.shutdown()


def _ignore(event: Event) -> None:
    return None


class _FanOut:
    """Each event to every sink in turn; `flush` passes on to those that hold lines back."""

    def __init__(self, *sinks: EventSink) -> None:
        self._sinks = sinks

    def __call__(self, event: Event) -> None:
        for sink in self._sinks:
            sink(event)

    def flush(self) -> None:
        for sink in self._sinks:
            flush_sink(sink)


def _skipped_report(decided: Plan) -> RunReport:
    results = tuple(StageResult(s.stage, RunStatus.SKIPPED, ()) for s in decided.steps)
    return RunReport(results, decided.warnings)


def _open_remote(proj: Project, name: str | None) -> Remote:
    from pivot import sharing

    return sharing.open_named_remote(proj, name)


def _prefetch(ctx: Context, store: Remote, decide: Callable[[], Plan]) -> Plan:
    """The plan, once the remote's copies of what its RUN steps need are fetched."""
    from pivot import sharing

    return sharing.prefetch(ctx, store, decide)


def repro(
    pipeline: Pipeline | Sequence[str] | None = None,
    targets: Sequence[str] = (),
    *,
    force: bool = False,
    jobs: int | None = None,
    keep_going: bool = False,
    emit: EventSink = _ignore,
    root: Path | str | None = None,
    start: Path | str | None = None,
    upstream: bool = True,
    executor: str | None = None,
    download: bool = True,
    strict: bool = False,
    fresh_workers: bool = False,
    run_cache: bool = True,
    pull: bool = False,
    remote: str | None = None,
    wait: bool = True,
    on_wait: Callable[[Holder | None], None] | None = None,
    noop_snapshot: bool = False,
    fork_workers: bool = False,
) -> tuple[Plan, RunReport]:
    """Bring `targets` (default: every stage) and their upstream up to date.

    `pipeline` is a Pipeline object to run (stages defined in a notebook or a script are
    fine); without one the project's `pipeline.py` is loaded. The project is found at `root`
    (or above `start`, default the cwd). Returns the plan and the report the CLI renders.
    `executor`: `local`, `dask` (a local Dask cluster) or a scheduler address (default: the
    project's `executor:` setting); `download=False` leaves a cluster's outputs on the remote.
    A stage that reads or writes a project file it does not declare gets a warning in the
    report; with `strict`, it fails instead.
    `run_cache=False` runs stages even when an earlier run had the same inputs; `pull` first
    fetches from the remote what the stages to run need (their recorded outputs, a run-cache
    hit, tracked data), so only stages with nothing to fetch run.
    Emits `RunStarted` (with this run's id) once the plan is decided, the stages' events, and
    `RunFinished` with the report. `fresh_workers` starts new worker processes instead of
    reusing warm ones (after the user's code changed on disk). `fork_workers` (the `pivot`
    command sets it): once planned, start the worker processes by forking this process, where
    that is safe (Linux, no other thread running); off by default, as forking a caller's own
    process (a notebook, a script with threads) is not safe in general.
    Holds the project lock meanwhile: if another command holds it, waits (calling `on_wait`
    with its holder) or, with `wait=False`, raises ProjectLockedError. `noop_snapshot`: as for
    `status`.
    """
    started = time.perf_counter()
    given, names = _source(pipeline, targets)
    where = root if root is not None else start
    store = _open_remote(_project(where), remote) if pull else None
    exclusive = Exclusive(_command_line("repro" if upstream else "run", names), wait, on_wait)
    default = noop_snapshot and run_cache and upstream and store is None
    watcher = _noop_recorder("repro", where, given, names, force, default)
    with (
        open_context(where, pipeline=given, exclusive=exclusive, noop_recorder=watcher) as ctx,
        contextlib.ExitStack() as forked_workers,  # waited for before the project lock goes
    ):
        warmed = _warm_workers(ctx, watcher, executor, jobs, fresh_workers, fork_workers)
        selected = _select(ctx, names, upstream=upstream)
        forced = selected if force else ()
        known: plan.KnownPrints = {}

        fork = (jobs or ctx.project.config.jobs) != 1  # -j 1: one CPU, planning included

        def decide() -> Plan:
            return plan.make_plan(
                ctx, selected, force=forced, run_cache=run_cache, known=known, fork=fork
            )

        if store is not None:
            decided = _prefetch(ctx, store, decide)
        else:
            with _recording(watcher, "planning"):
                decided = decide()
        if not decided.nothing_to_do:  # what the no-op snapshots were decided from changes
            snapshot.discard(ctx.project.pivot_dir)
        with recorder.recording(ctx.project) as record:
            emit_all = _FanOut(record, emit)
            forked = None
            if fork_workers and download:
                forked = _forked_executor(ctx, decided, jobs, executor, warmed)
                if forked is not None:  # they exit once released, while this process goes on
                    forked_workers.callback(forked.shutdown)
            try:
                emit_all(RunStarted(record.id, decided))
            except BaseException:
                if forked is not None:
                    forked.shutdown(kill=True)
                raise
            if decided.nothing_to_do:
                report = _skipped_report(decided)
            else:
                report = _execute(
                    ctx,
                    decided,
                    jobs=jobs,
                    keep_going=keep_going,
                    emit=emit_all,
                    executor=executor,
                    download=download,
                    strict=strict,
                    run_id=record.id,
                    fresh_workers=fresh_workers,
                    warmed=warmed,
                    running=forked,
                )
            record.record(report, interrupted=False)
        if not report.ok:  # a stage failed, maybe a worker died mid-write: leave no temp files
            clean_litter(ctx)
        settled, status_plan = decided, None
        if watcher is not None and report.ok and not decided.nothing_to_do:
            elapsed = time.perf_counter() - started
            settled, status_plan = _plan_again(ctx, watcher, decided, report, known, elapsed)
    if report.ok:  # after `.gitignore` was kept up to date: the files it keeps are recorded too
        kept, there = _kept_files(ctx.project, holding=True)
        noop.write(ctx.project.pivot_dir, watcher, settled, kept, there)
        if status_plan is not None:
            kept, there = _kept_files(ctx.project, holding=False)
            noop.write(ctx.project.pivot_dir, watcher, status_plan, kept, there, "status")
    emit(RunFinished(record.id, report, time.perf_counter() - started))
    return decided, report


@dataclasses.dataclass(frozen=True)
class WatchScope:
    """What watch mode reacts to, as project-relative paths: the stages' dependencies (files or
    directories) and their outputs (which never trigger: Pivot writes them)."""

    root: Path
    stages: tuple[str, ...]
    deps: frozenset[str]
    outputs: frozenset[str]


def watch_scope(start: Path | str | None = None) -> WatchScope:
    """Load the pipeline and collect the paths `pivot repro --watch` reacts to."""
    with open_context(start) as ctx:
        stages = ctx.graph.stages.values()
        deps = frozenset(path for spec in stages for path in spec.dep_paths)
        outputs = frozenset(path for spec in stages for path in spec.out_paths)
        return WatchScope(ctx.project.root, ctx.graph.order, deps, outputs)


def read_log(stage: str, run_id: str | None = None, *, start: Path | str | None = None) -> str:
    """What `stage` printed in its last run (or in run `run_id`), from `.pivot/logs/`."""
    proj = project.load_project(Path(start) if start is not None else None)
    return logs.read_log(proj.pivot_dir, stage, run_id)


def log_runs(*, start: Path | str | None = None) -> list[tuple[str, tuple[str, ...]]]:
    """The runs whose logs are kept, oldest first, with the stages that ran in each."""
    proj = project.load_project(Path(start) if start is not None else None)
    return [
        (run_id, logs.run_stages(proj.pivot_dir, run_id))
        for run_id in logs.list_runs(proj.pivot_dir)
    ]


def run(
    pipeline: Pipeline | Sequence[str],
    stages: Sequence[str] = (),
    *,
    force: bool = False,
    jobs: int | None = None,
    keep_going: bool = False,
    emit: EventSink = _ignore,
    root: Path | str | None = None,
    start: Path | str | None = None,
    executor: str | None = None,
    download: bool = True,
    strict: bool = False,
    run_cache: bool = True,
    pull: bool = False,
    wait: bool = True,
    on_wait: Callable[[Holder | None], None] | None = None,
) -> tuple[Plan, RunReport]:
    """Run only `stages` (no upstream); their dependencies must already exist.

    `run(["train"])` runs stages of the project's `pipeline.py`, `run(pipeline, ["train"])`
    stages of a Pipeline object.
    """
    given, names = _source(pipeline, stages)
    if not names:
        raise UsageError("`pivot run` needs at least one stage name; use `pivot repro` for all")
    return repro(
        given,
        names,
        force=force,
        jobs=jobs,
        keep_going=keep_going,
        emit=emit,
        root=root,
        start=start,
        upstream=False,
        executor=executor,
        download=download,
        strict=strict,
        run_cache=run_cache,
        pull=pull,
        wait=wait,
        on_wait=on_wait,
    )


@dataclasses.dataclass(frozen=True)
class CheckoutReport:
    """Stages whose cached outputs were put back, were already in place, or never ran; and
    outputs that are missing or modified but not cached (only `pivot repro` can make them)."""

    restored: tuple[str, ...]
    unchanged: tuple[str, ...]
    never_ran: tuple[str, ...] = ()
    not_cached: tuple[str, ...] = ()
    unsaved: tuple[str, ...] = ()
    """Tracked data changed in the workspace and not re-tracked: left alone."""


def checkout(
    targets: Sequence[str] = (),
    *,
    start: Path | str | None = None,
    wait: bool = True,
    on_wait: Callable[[Holder | None], None] | None = None,
) -> CheckoutReport:
    """Restore recorded outputs of stages (or of the stages producing the given paths) and
    tracked data.

    Without targets, stages that never ran are reported and passed over; a named one that
    never ran is an error.
    """
    from pivot import sharing

    exclusive = Exclusive(_command_line("checkout", targets), wait, on_wait)
    with open_context(start, pipeline_optional=True, exclusive=exclusive) as ctx:
        selection = sharing.resolve_targets(ctx, targets, with_deps=False)
        placed = _checkout(ctx, selection.stages, strict=bool(targets))
        return _merge(placed, _checkout_tracked(ctx, selection.tracked))


def _checkout_tracked(ctx: Context, entries: Sequence[TrackedEntry]) -> CheckoutReport:
    """Put tracked data back where it is missing or differs, unless the workspace holds a
    version that only exists there (changed and not re-tracked: it would be lost)."""
    restored, unchanged, unsaved = [], [], []
    for entry in entries:
        found = hash_path(ctx.hasher, ctx.project.root, entry.path)
        if found is not None and found[0] == entry.hash:
            unchanged.append(entry.path)
        elif found is not None and not ctx.cache.has(found[0]):
            unsaved.append(entry.path)
        else:
            tracked.restore(ctx, entry)
            restored.append(entry.path)
    return CheckoutReport(tuple(restored), tuple(unchanged), unsaved=tuple(unsaved))


def _merge(first: CheckoutReport, second: CheckoutReport) -> CheckoutReport:
    return CheckoutReport(
        *(
            getattr(first, field.name) + getattr(second, field.name)
            for field in dataclasses.fields(CheckoutReport)
        )
    )


def _checkout(ctx: Context, names: Sequence[str], *, strict: bool) -> CheckoutReport:
    from pivot.execute import runner

    restored, unchanged, never_ran, not_cached = [], [], [], []
    for name in names:
        spec = ctx.graph.stages[name]
        entry = plan.read_previous(ctx, spec)
        if entry is None and strict:
            raise NoRecordError(
                f"stage '{name}' has never run, so there is nothing to check out; "
                f"run `pivot repro {name}`"
            )
        if entry is None:
            never_ran.append(name)
            continue
        runner.check_restorable(ctx, spec, entry)
        stale = plan.stale_outputs(ctx, entry)
        not_cached += [o.path for o in stale if not o.cache]
        if any(o.cache for o in stale):
            try:
                runner.restore_outputs(ctx, spec, entry)
            except CacheCorruptError as error:
                raise CacheCorruptError(
                    f"stage '{name}': its outputs cannot be restored: {error} Run "
                    f"`pivot repro {name}` to make them again."
                ) from None
            restored.append(name)
        elif not stale:
            unchanged.append(name)
    return CheckoutReport(tuple(restored), tuple(unchanged), tuple(never_ran), tuple(not_cached))


def _current_outputs(ctx: Context, name: str) -> tuple[OutEntry, ...]:
    spec = ctx.graph.stages[name]
    entries = []
    for out in spec.outs:
        for path in out.paths:
            entry = record_output(ctx.project.root, out, path, ctx.cache)
            if entry is None:
                raise NoRecordError(
                    f"cannot commit stage '{name}': output '{path}' does not exist. Create it or run "
                    f"`pivot repro {name}`"
                )
            entries.append(entry)
    return tuple(entries)


def commit(
    stages: Sequence[str] = (),
    *,
    start: Path | str | None = None,
    wait: bool = True,
    on_wait: Callable[[Holder | None], None] | None = None,
) -> tuple[str, ...]:
    """Record the workspace outputs, deps, params and current code as the stages' result.

    The escape hatch for "I changed the code but the outputs are still right": nothing runs.
    """
    from pivot.execute import runner

    committed = []
    exclusive = Exclusive(_command_line("commit", stages), wait, on_wait)
    with open_context(start, exclusive=exclusive) as ctx:
        names = _select(ctx, stages, upstream=False)
        decided = plan.make_plan(ctx, names)
        for step in decided.steps:
            outs = _current_outputs(ctx, step.stage)
            deps = dep_entries(ctx, ctx.graph.stages[step.stage])
            runner.commit_outputs(ctx, step, deps, outs)
            committed.append(step.stage)
    return tuple(committed)


# --- sharing through remotes --------------------------------------------------------------------


def push(
    targets: Sequence[str] = (),
    *,
    remote: str | None = None,
    jobs: int | None = None,
    with_deps: bool = False,
    progress: ProgressSink | None = None,
    start: Path | str | None = None,
) -> SyncReport:
    """Upload the cached outputs of `targets` (default: everything) that the remote lacks."""
    from pivot import sharing

    return _sync(sharing.push, targets, remote, jobs, with_deps, progress, start)


def fetch(
    targets: Sequence[str] = (),
    *,
    remote: str | None = None,
    jobs: int | None = None,
    with_deps: bool = False,
    progress: ProgressSink | None = None,
    start: Path | str | None = None,
) -> SyncReport:
    """Download into the cache the recorded outputs of `targets` that it lacks."""
    from pivot import sharing

    return _sync(sharing.fetch, targets, remote, jobs, with_deps, progress, start)


def _sync(
    move: Callable[..., SyncReport],
    targets: Sequence[str],
    remote: str | None,
    jobs: int | None,
    with_deps: bool,
    progress: ProgressSink | None,
    start: Path | str | None,
) -> SyncReport:
    """Push or fetch (`move`) the recorded outputs of `targets` through the named remote."""
    from pivot import sharing

    store = sharing.open_named_remote(_project(start), remote)
    with open_context(start, pipeline_optional=True) as ctx:
        selection = sharing.resolve_targets(ctx, targets, with_deps=with_deps)
        records = sharing.records_of(ctx, selection)
        return move(ctx, store, records, jobs=jobs, progress=progress)


@dataclasses.dataclass(frozen=True)
class PullReport:
    """A fetch, then the outputs placed in the workspace."""

    fetched: SyncReport
    checkout: CheckoutReport


def pull(
    targets: Sequence[str] = (),
    *,
    remote: str | None = None,
    jobs: int | None = None,
    with_deps: bool = False,
    progress: ProgressSink | None = None,
    start: Path | str | None = None,
) -> PullReport:
    """Fetch `targets`' outputs, then put them in the workspace (stages whose objects could
    not all be fetched are left as they are)."""
    from pivot import sharing

    store = sharing.open_named_remote(_project(start), remote)
    exclusive = Exclusive(_command_line("pull", targets))
    with open_context(start, pipeline_optional=True, exclusive=exclusive) as ctx:
        selection = sharing.resolve_targets(ctx, targets, with_deps=with_deps)
        records = sharing.records_of(ctx, selection)
        fetched = sharing.fetch(ctx, store, records, jobs=jobs, progress=progress)
        failed = fetched.failed_stages
        complete = [name for name in selection.stages if name not in failed]
        placed = _checkout(ctx, complete, strict=False)
        tracked_ok = [t for t in selection.tracked if t.path not in fetched.failed_tracked]
        return PullReport(fetched, _merge(placed, _checkout_tracked(ctx, tracked_ok)))


def remotes(
    start: Path | str | None = None,
) -> tuple[Mapping[str, Mapping[str, object]], str | None]:
    """The configured remotes (name -> settings) and the default one."""
    config = project.load_project(Path(start) if start is not None else None).config
    return config.remotes, config.default_remote


def remote_add(
    name: str,
    url: str,
    *,
    default: bool = False,
    local: bool = False,
    start: Path | str | None = None,
) -> None:
    from pivot import sharing

    sharing.add_remote(_project(start), name, url, default=default, local=local)


def remote_remove(name: str, *, start: Path | str | None = None) -> None:
    from pivot import sharing

    sharing.remove_remote(_project(start), name)


def remote_default(name: str, *, local: bool = False, start: Path | str | None = None) -> None:
    from pivot import sharing

    sharing.set_default_remote(_project(start), name, local=local)


def remote_modify(
    name: str, key: str, value: str | None, *, local: bool = False, start: Path | str | None = None
) -> None:
    from pivot import sharing

    sharing.modify_remote(_project(start), name, key, value, local=local)


def _project(start: Path | str | None) -> Project:
    return project.load_project(Path(start).expanduser() if start is not None else None)


def track(paths: Sequence[str], *, start: Path | str | None = None) -> list[TrackedEntry]:
    """Cache raw data `paths` (relative to the current directory) and record them in `.pvt`
    files; a path a stage writes is refused."""
    absolute = [os.path.abspath(path) for path in paths]
    exclusive = Exclusive(_command_line("track", paths))
    with open_context(start, pipeline_optional=True, exclusive=exclusive) as ctx:
        return tracked.track(ctx, absolute)


def gc(
    *,
    all_commits: bool = False,
    remote: str | None = None,
    confirm: Callable[[Garbage], bool] = lambda garbage: True,
    start: Path | str | None = None,
) -> tuple[Garbage, bool]:
    """Remove cache objects that nothing keeps (the workspace's lock and .pvt files, or every
    commit's, and their run-cache entries) from the local cache or from `remote`.

    `confirm` sees what would go and may refuse; returns (garbage, whether it was removed).
    """
    from pivot import maintenance, sharing

    store = sharing.open_named_remote(_project(start), remote) if remote else None
    # Held so that no run adds a blob its lock file does not reference yet while gc decides.
    exclusive = Exclusive(_command_line("gc", ()))
    with open_context(start, pipeline_optional=True, exclusive=exclusive) as ctx:
        garbage = maintenance.collect_garbage(ctx, all_commits=all_commits, remote=store)
        if not garbage.keys or not confirm(garbage):
            return garbage, False
        maintenance.delete_garbage(ctx, garbage, store)
        return garbage, True


def verify(
    targets: Sequence[str] = (),
    *,
    remote: str | None = None,
    jobs: int | None = None,
    start: Path | str | None = None,
) -> tuple[int, list[Problem]]:
    """Check that every recorded output and tracked file of `targets` (default: all) is in the
    local cache (or on `remote`) and hashes to its recorded value; (objects checked, problems).
    A local check of everything also checks the run cache (damaged entries are moved aside)."""
    from pivot import maintenance, sharing

    store = sharing.open_named_remote(_project(start), remote) if remote else None
    with open_context(start, pipeline_optional=True) as ctx:
        selection = sharing.resolve_targets(ctx, targets, with_deps=False)
        records = sharing.records_of(ctx, selection)
        return maintenance.verify(ctx, records, remote=store, jobs=jobs, runs=not targets)


def get(
    path: str,
    *,
    rev: str,
    out: Path | str | None = None,
    force: bool = False,
    remote: str | None = None,
    start: Path | str | None = None,
) -> tuple[Path, OutEntry]:
    """Write the version of output or tracked `path` (project-relative) recorded at git
    revision `rev` to `out` (default: its name in the current directory)."""
    from pivot import maintenance, sharing

    relative = Path(path).as_posix().strip("/").removeprefix("./")
    dest = Path(os.path.abspath(out if out is not None else Path(relative).name))
    if os.path.lexists(dest) and not force:
        raise NoRecordError(
            f"'{dest}' exists; refusing to overwrite it. Fix: pass -o DEST, or --force."
        )
    proj = _project(start)
    store = sharing.open_named_remote(proj, remote) if remote or proj.config.remotes else None
    with open_context(start, pipeline_optional=True) as ctx:
        return dest, maintenance.get(ctx, rev, relative, dest, remote=store)
