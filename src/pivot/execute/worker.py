"""The worker: carry out one RUN step (load deps, call the stage, save, hash and cache outputs).

Runs in a pool process or in-process. It never decides staleness and never lets an exception
escape: every failure comes back as an `Outcome` saying whose it was (the stage's code, or
Pivot's own saving and caching) with formatted text. Imports of Pivot: discovery, spec,
returns, workspace, fs, store, errors, fingerprint.observe, execute.capture; never plan, api or
cli.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import dataclasses
import enum
import functools
import gc
import importlib
import os
import pickle
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from pivot import discovery, fs, loaders
from pivot.errors import FilesystemError, LoaderError, PivotError
from pivot.execute import capture
from pivot.fingerprint import observe
from pivot.fingerprint import observed as observed_refs
from pivot.returns import OutputWrite, expand_return_value
from pivot.spec import DepSpec, OutKind, OutSpec, Shape, StageSpec
from pivot.stage_progress import PROGRESS_ENV
from pivot.store import lock, logs, run_cache
from pivot.store.backup import Backup
from pivot.store.cache import Cache
from pivot.store.lock import DepEntry, LockEntry, OutEntry
from pivot.workspace import record_output

__all__ = [
    "Outcome",
    "OutcomeKind",
    "StageTask",
    "adopt_project",
    "dumps",
    "enter_project",
    "execute_stage",
    "run_pickled_task",
    "set_up_pool_process",
    "spare_lock_files",
    "warm_up",
]

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class StageTask:
    """Everything a worker needs for one stage; pickled in the main process."""

    spec: StageSpec
    root: str
    cache_dir: str
    link_modes: tuple[str, ...]
    incremental: Mapping[str, str]  # IncrementalOut path -> previous hash in the cache
    inputs: tuple[DepEntry, ...] = ()  # the deps as planned (a cluster worker fetches them)
    code: Mapping[str, str] = dataclasses.field(default_factory=dict)  # the planned manifest
    log_path: str = ""  # where what the stage prints goes, live (empty: a temporary file)
    scratch_dir: str = ""  # where previous outputs wait while the stage runs (default: tmp/
    # beside the cache, i.e. .pivot/tmp)
    lock_path: str = ""  # set: the worker writes the stage's lock there itself (`_write_lock`)
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # planned, for that lock
    observed: tuple[str, ...] = ()  # the observed code the plan recorded, for that lock
    publish_log: bool = False  # make `log_path` the stage's last-run log when it ends
    first_run: bool = False  # the stage has no lock yet (nor, most likely, a last-run log)


class OutcomeKind(enum.Enum):
    """Whose a stage's outcome is: success, the stage's code, Pivot itself, or the process."""

    RAN = "ran"
    STAGE_FAILED = "stage failed"  # the stage (its code, loaders or return value) raised
    PIVOT_FAILED = "pivot failed"  # Pivot could not prepare, save, hash, cache or restore
    WORKER_DIED = "worker died"  # the process running the stage ended (set by the runner)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What happened: outputs recorded on success, a formatted error on failure."""

    stage: str
    kind: OutcomeKind
    outs: tuple[OutEntry, ...]
    duration: float
    output: str
    error: str = ""
    worker: str = ""  # the cluster worker that ran the stage ("" when run on this machine)
    observed: tuple[str, ...] = ()  # user code the run entered (see fingerprint.observe)
    undeclared_reads: tuple[str, ...] = ()  # project files read that are not declared deps
    undeclared_writes: tuple[str, ...] = ()  # project files written that are not declared outs
    progressed: bool = True  # False: the run left no `pivot.progress` side file by its log
    run_key: str = ""  # set: the worker wrote the stage's lock (that run's key; see `_write_lock`)
    published: bool = False  # the worker made the stage's log its last-run log
    lock_signature: tuple[int, int, int] | None = None  # (inode, size, mtime_ns) of that lock

    @property
    def ok(self) -> bool:
        return self.kind is OutcomeKind.RAN


class _StageError(Exception):
    """A failure of the stage, already formatted for the user."""


class _PivotFailure(Exception):
    """A failure of Pivot's own work around the stage, already formatted for the user."""


# What user code may raise that fails its stage: `sys.exit()` in a stage or loader fails that
# stage, not the whole run. KeyboardInterrupt still propagates (Ctrl-C stops the run).
_USER_ERRORS = (Exception, SystemExit)


# --- process set-up -------------------------------------------------------------------------

_pool_process: dict[str, str] = {}
"""A pool (or cluster) worker's state for its whole life: the project root and code epoch it
has imported (a warm worker keeps the user's modules across stages; a new epoch or project
forgets them)."""


def enter_project(root: str, epoch: str) -> None:
    """In a pool or cluster worker: make `root` the cwd and first on sys.path, forgetting user
    modules of older code (another project, or code edited since this worker imported it)."""
    if _pool_process.get("root") != root or _pool_process.get("epoch") != epoch:
        old_root = _pool_process.get("root", root)
        discovery.forget_user_modules(old_root)
        discovery.forget_user_modules(root)
        if old_root in sys.path:
            sys.path.remove(old_root)
        _pool_process.update(root=root, epoch=epoch)
    elif (
        sys.path[:1] == [root]
        and getattr(next(iter(sys.path_hooks), None), "pivot_root", "") == root
    ):
        os.chdir(root)  # as the last stage left it (the usual case): nothing to add
        return
    discovery.add_to_sys_path(Path(root))
    os.chdir(root)


def adopt_project(root: str, epoch: str) -> None:
    """In a worker forked from the process that imported the project's code: take that code
    as this worker's, as of `epoch` (`enter_project` then keeps it rather than import it again)."""
    _pool_process.update(root=root, epoch=epoch)


def warm_up(root: str, epoch: str, modules: Sequence[str], gate: str = "") -> None:
    """Pool entry point run while the main process plans: enter the project with the run's
    epoch and import the modules its stages are defined in, so the first stages find this
    worker ready. A module that fails to import fails its stages later, with their names.

    `gate`, a directory: the workers import one at a time, each holding an exclusive `flock`
    on it meanwhile, so that planning (which the run waits for) shares the CPUs with one
    importing worker, not all of them."""
    enter_project(root, epoch)
    with _one_at_a_time(gate), contextlib.redirect_stdout(sys.stderr):  # importing may print
        for name in modules:
            with contextlib.suppress(Exception):
                importlib.import_module(name)


GATE_SECONDS = 5.0
"""The longest a warming worker waits for the one importing before it: the gate only orders
work and guards nothing (a process an import forked may even keep it held), so after this the
worker imports anyway."""


@contextlib.contextmanager
def _one_at_a_time(gate: str) -> Iterator[None]:
    """Hold an exclusive `flock` on directory `gate`, waiting for it at most `GATE_SECONDS`
    (nothing when `gate` is "" or cannot be opened)."""
    try:
        descriptor = os.open(gate, os.O_RDONLY) if gate else -1
    except OSError:
        descriptor = -1
    try:
        if descriptor >= 0:
            _lock_within(descriptor, time.monotonic() + GATE_SECONDS)
        yield
    finally:
        if descriptor >= 0:
            os.close(descriptor)  # releases the lock


def _lock_within(descriptor: int, deadline: float) -> None:
    import fcntl

    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return
            time.sleep(0.01)


def dumps(value: object) -> bytes:
    """`value` (a task, a spec) pickled for a worker process. Module-level objects pickle by
    reference, except those of `__main__` (a script or a notebook), which a worker cannot
    import: cloudpickle (loky's own dependency) sends those by value."""
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    if b"__main__" not in payload:
        return payload
    import cloudpickle

    return bytes(cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


def set_up_pool_process(parent: int) -> None:
    """Pool-worker initializer: kill this worker the moment `parent` (the Pivot process that
    started the pool) is gone, so no stage keeps running and writing into the workspace after
    Pivot died (an OOM kill or SIGKILL takes only the main process). At exit (the pool shut
    down, while Pivot waits for it), skip the last garbage collection over everything the
    user's modules made: 0.3-0.5 s of a worker that imported 10,000 stages, for nothing.
    What successful stages set aside is removed by a thread of its own (`_Remover`), and a
    stage's log is linked only once it runs a while (`capture.link_logs_late`)."""
    global _remove_later
    atexit.register(gc.freeze)
    _remove_later = _Remover()
    capture.link_logs_late()
    watch = threading.Thread(
        target=_watch_parent, args=(parent,), name="pivot-parent-watch", daemon=True
    )
    watch.start()


class _Remover:
    """A pool process's thread removing the files that successful stages set aside, so the
    stage's outcome does not wait for the unlinks (0.5-2 ms each here, mostly waiting on the
    file system). It takes them in batches, `BATCH_SECONDS` apart, so that handing one over
    costs the stage no switch to this thread. What is still waiting when the run ends, the
    runner removes (`backup.remove_discarded`); a killed worker loses nothing but the wait."""

    BATCH_SECONDS = 0.05

    def __init__(self) -> None:
        self._paths: collections.deque[str] = collections.deque()
        self._waiting = threading.Event()
        thread = threading.Thread(target=self._remove, name="pivot-remover", daemon=True)
        thread.start()

    def __call__(self, path: str) -> None:
        self._paths.append(path)
        if not self._waiting.is_set():
            self._waiting.set()

    def _remove(self) -> None:
        while True:
            self._waiting.wait()
            time.sleep(self.BATCH_SECONDS)
            self._waiting.clear()
            while self._paths:
                path = self._paths.popleft()
                with contextlib.suppress(OSError):  # gone (the runner's sweep), or not a file
                    os.unlink(path)


_remove_later: _Remover | None = None
"""Set in a pool process: what removes discarded files there (elsewhere they go at once)."""

_lock_spares: fs.SpareFiles | None = None
"""Set in a forked pool worker for its life (`spare_lock_files`): the lock files its stages
rewrite go through spares, neither creating nor freeing a file per lock."""


@contextlib.contextmanager
def spare_lock_files() -> Iterator[None]:
    """For the body (a forked pool worker's life, one run): rewrite lock files through spare
    files (`fs.SpareFiles`): a lock rewrite here cost a new file and freed the old one, the
    dearest part of a re-run stage. The spares are deleted when the body ends (a worker killed
    meanwhile leaves them as temp files, which the next command's litter cleaning deletes)."""
    global _lock_spares
    spares = _lock_spares = fs.SpareFiles()
    try:
        yield
    finally:
        _lock_spares = None
        with contextlib.suppress(OSError):
            spares.close()


def _watch_parent(parent: int) -> None:
    try:
        handle = os.pidfd_open(parent)  # readable once the parent exits (Linux 5.3+)
    except (AttributeError, OSError):  # no pidfd here, or the parent is already gone
        while os.getppid() == parent:
            time.sleep(0.05)
    else:
        select.select([handle], [], [])
    os.kill(os.getpid(), signal.SIGKILL)


def run_pickled_task(
    root: str, epoch: str, payload: bytes, loads: Callable[[bytes], Any] = pickle.loads
) -> Outcome:
    """Pool entry point: set up the process for the project, then unpickle (`loads`) and run
    the task."""
    enter_project(root, epoch)
    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(sys.stderr):  # importing pipeline.py may print
            task: StageTask = loads(payload)
    except Exception as error:
        return Outcome(
            "?",
            OutcomeKind.PIVOT_FAILED,
            (),
            time.perf_counter() - started,
            "",
            f"could not load the stage in a worker process: {type(error).__name__}: {error}",
        )
    return execute_stage(task)


# --- the stage ------------------------------------------------------------------------------


def _guarded(stage: str, doing: str, action: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`action(*args, **kwargs)`; any failure becomes a `_StageError` with the user's traceback."""
    try:
        return action(*args, **kwargs)
    except _StageError:
        raise
    except PivotError as error:
        raise _StageError(str(error)) from None
    except _USER_ERRORS as error:
        raise _StageError(
            f"stage '{stage}' failed {doing}:\n{discovery.user_traceback(error)}"
        ) from None


def _prepare_incremental(task: StageTask, cache: Cache) -> None:
    """Give each IncrementalOut the value the stage starts from (the other previous outputs are
    gone already: moved aside by `_keep_previous_outputs`, so a stage never reads its own stale
    output by accident).

    Its recorded previous value is restored from the cache as a private writable copy (none
    recorded: removed, the stage starts from `empty()`); an uncached one keeps its state only in
    the workspace file, which is left as it is.
    """
    for out in task.spec.outs:
        if out.kind is not OutKind.INCREMENTAL:
            continue
        for path in out.paths:
            target = Path(task.root, path)
            previous = task.incremental.get(path)
            with fs.map_os_errors(path, "remove the previous output"):
                if previous and cache.has(previous):
                    cache.restore_file(previous, target, writable=True)
                elif out.cache:
                    fs.remove_path(target)


class _Place:
    """A declared path of the stage, made ready before the stage is observed (the observation
    slows down every Python call inside it): the absolute path as a string, its directory, and
    the `Path` a loader gets (made when first asked for: an output Pivot writes itself needs
    none)."""

    __slots__ = ("_path", "directory", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.directory = os.path.dirname(text)
        self._path: Path | None = None

    @property
    def path(self) -> Path:
        if self._path is None:
            self._path = Path(self.text)
        return self._path


def _places(task: StageTask) -> dict[str, _Place]:
    root = _root_text(task.root)
    join = os.path.join
    return {
        relative: _Place(join(root, relative.rstrip("/")))
        for relative in (*task.spec.dep_paths, *task.spec.out_paths)
    }


def _load_dep(dep: DepSpec, places: Mapping[str, _Place], stage: str) -> Any:
    if dep.incremental:
        path = places[dep.paths[0]].path
        loader: Any = dep.loader
        return loader.load(path) if path.exists() else loader.empty()
    for relative in dep.paths:
        try:
            os.stat(places[relative].text)
        except (OSError, ValueError):
            raise _StageError(
                f"stage '{stage}': dependency '{dep.name}' file '{relative}' does not exist. Run the "
                "stage that produces it (`pivot repro` runs upstream stages) or create the file"
            ) from None
    if dep.shape is Shape.SINGLE:
        return dep.loader.load(places[dep.paths[0]].path)
    values = []
    for relative in dep.paths:
        values.append(dep.loader.load(places[relative].path))
    return values if dep.shape is Shape.LIST else tuple(values)


@functools.lru_cache(maxsize=8)
def _root_text(root: str) -> str:
    """`root` normalised, as `str(Path(root))`: declared paths joined to it read as
    `Path(root) / relative` would (they are normalised already, see `spec.checks`)."""
    return str(Path(root))


def _call(task: StageTask, places: Mapping[str, _Place]) -> Any:
    spec = task.spec
    kwargs: dict[str, Any] = {}
    if spec.params_arg is not None and spec.params is not None:
        kwargs[spec.params_arg] = spec.params.model_copy(deep=True)
    for dep in spec.deps:
        doing = f"loading dependency '{dep.name}' ({', '.join(dep.paths)})"
        with observe.paused() if type(dep.loader) in _NO_USER_CODE else _OBSERVED:
            kwargs[dep.name] = _guarded(spec.name, doing, _load_dep, dep, places, spec.name)
    if spec.command is not None:  # a command stage: deps checked above, the command reads them
        for path in spec.out_paths:  # outputs were removed; their directories are made here
            os.makedirs(places[path].directory, exist_ok=True)
        return _guarded(spec.name, "running its command", spec.func, spec.command)
    return _guarded(spec.name, "in the stage function", spec.func, **kwargs)


def _save(
    task: StageTask, result: Any, places: Mapping[str, _Place], backup: Backup | None
) -> dict[str, bytes]:
    """Save the outputs the stage returned: the bytes of those Pivot wrote itself, by path
    (`backup`: the previous outputs, kept aside while the stage runs)."""
    spec = task.spec
    written: dict[str, bytes] = {}
    if spec.command is not None:
        return written  # the command wrote its outputs itself
    writes = _guarded(spec.name, "validating its return value", expand_return_value, spec, result)
    for write in writes:
        unobserved = type(write.out.loader) in _NO_USER_CODE and type(write.value) is str
        with observe.paused() if unobserved else _OBSERVED:
            data = _write(task, write, places.get(write.path), backup, plain=unobserved)
        if data is not None:
            written[write.path] = data
    return written


_NO_USER_CODE = frozenset({loaders.Text, loaders.PathOnly})
"""Loaders whose `load`, and `save` of a `str`, run no user code: Pivot runs them unobserved
(`observe.paused`), at full speed."""
_OBSERVED = contextlib.nullcontext()


def _write(
    task: StageTask,
    write: OutputWrite,
    place: _Place | None,
    backup: Backup | None,
    *,
    plain: bool,
) -> bytes | None:
    """Save one output file (`place`: none for the files of a DirectoryOut). With `plain` (a
    plain `str` for one of `_NO_USER_CODE`), the bytes a `Text` output was written with
    (`loaders.text_bytes`, as `Text.save` writes): what the file holds, which caching then
    need not read back. When the previous output kept in `backup` holds those bytes already
    (a re-run whose output did not change: the usual case of a code edit), it is put back
    instead (`Backup.put_back_same`)."""
    spec = task.spec
    place = place or _Place(os.path.join(_root_text(task.root), write.path))
    directory = place.directory
    try:
        fs.make_directory(directory)
    except OSError as error:
        raise fs.translate_os_error(error, write.path, "create the directory of output") from error
    try:
        if plain and type(write.out.loader) is loaders.Text and len(write.value) < _KEPT_BELOW:
            data = loaders.text_bytes(write.value)
            made = _NEW_FILES.get(directory)
            if made is None or backup is None or not backup.put_back_same(write.path, data, made):
                st = fs.atomic_write_stat(place.text, data)
                _NEW_FILES[directory] = (st.st_mode, st.st_uid, st.st_gid)
            return data
        write.out.loader.save(write.value, place.path)
    except (LoaderError, FilesystemError) as error:
        raise _StageError(f"stage '{spec.name}': {error}") from None
    except OSError as error:  # the file system refused the write, whatever the value
        raise _PivotFailure(fs.translate_os_error(error, write.path, "save output")) from None
    except _USER_ERRORS as error:
        raise _StageError(
            f"stage '{spec.name}': saving output '{write.path}' with {write.out.loader!r} "
            f"failed; check the value returned for '{write.out.name}':\n{discovery.user_traceback(error)}"
        ) from None
    return None


_KEPT_BELOW = 256 * 1024
"""Characters of a `Text` output below which its bytes are kept for the cache (not read back)."""
_NEW_FILES: dict[str, tuple[int, int, int]] = {}
"""Directory -> the (mode, uid, gid) of the last output file this process wrote there anew:
what a kept previous output must have to be put back in place of a new file."""


def _record_output(
    out: OutSpec, path: str, root: str, cache: Cache, data: bytes | None = None
) -> OutEntry:
    entry = record_output(root, out, path, cache, data)
    if entry is not None:
        return entry
    if out.kind is OutKind.DIRECTORY:
        raise _StageError(f"directory output '{path}' was not created")
    if os.path.isdir(os.path.join(root, path)):
        raise _StageError(
            f"output '{path}' is a directory, but it is declared as a file; declare it as "
            f"'{path}/' (a directory output)"
        )
    raise _StageError(
        f"output '{path}' does not exist after the stage ran (declared in '{out.name}'); "
        "make sure the stage returns a value for it or, for PathOnly, writes the file"
    )


@contextlib.contextmanager
def _captured(log_path: str = "") -> Iterator[Callable[[], str]]:
    """Capture everything the stage prints, at the file-descriptor level too (subprocesses, C
    code), so nothing reaches Pivot's own stdout (e.g. `--json`). Yields a reader. With a log,
    `pivot.progress` in the stage (and its subprocesses) reports to the log's side file."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with capture.log_sink(log_path) as sink:
        progress = os.environ.get(PROGRESS_ENV)
        if log_path:
            os.environ[PROGRESS_ENV] = log_path + logs.PROGRESS_SUFFIX  # logs.progress_path
        saved = capture.save_standard_fds()
        text = capture.text_stream(sink)

        def read() -> str:
            if not text.closed:  # (a stage may close its sys.stdout)
                text.flush()
            return capture.read_all(sink).decode("utf-8", errors="replace")

        streams = sys.stdout, sys.stderr
        try:
            os.dup2(sink, 1)
            os.dup2(sink, 2)
            sys.stdout = sys.stderr = text
            yield read
        finally:
            text.close()  # flushes it (the descriptor is the sink's, left open)
            capture.restore_standard_fds(saved)
            sys.stdout, sys.stderr = streams
            if log_path and progress is None:
                os.environ.pop(PROGRESS_ENV, None)
            elif log_path and progress is not None:
                os.environ[PROGRESS_ENV] = progress


def _declared(spec: StageSpec, paths: tuple[str, ...]) -> tuple[str, ...]:
    """`paths` minus those the stage declares (files, and files inside declared directories)."""
    if not paths:
        return paths
    declared = {*spec.dep_paths, *spec.out_paths}
    directories = tuple(p for p in declared if p.endswith("/"))
    return tuple(p for p in paths if p not in declared and not p.startswith(directories))


def _not_temporary(spec: StageSpec, paths: tuple[str, ...]) -> tuple[str, ...]:
    """`paths` minus the temp files of a declared output's atomic write (`fs.temp_name_for`:
    renamed onto the output, or else litter that the next command deletes), which every save
    of a loader writing through `fs` leaves among the files written."""
    outs = spec.out_paths
    kept = []
    for path in paths:
        directory, slash, name = path.rpartition("/")
        if not (fs.is_temp_name(name) and f"{directory}{slash}{name[1:-21]}" in outs):
            kept.append(path)
    return tuple(kept)


def _remaining(root: str, paths: tuple[str, ...]) -> tuple[str, ...]:
    """Written files still there after the run (not temporary files renamed or deleted)."""
    return tuple(p for p in paths if os.path.lexists(os.path.join(root, p)))


def _observed_call(
    task: StageTask, backup: Backup | None
) -> tuple[observe.Observation, dict[str, bytes]]:
    """Call the stage and save its outputs, watching the code it enters and the files it opens:
    what it did, and the bytes of the outputs Pivot wrote itself (see `_save`)."""
    places = _places(task)
    with observe.observing(task.root) as seen:
        written = _save(task, _call(task, places), places, backup)
    return seen[0], written


def _keep_previous_outputs(task: StageTask) -> Backup:
    """Move the previous outputs aside (copy an IncrementalOut, which the stage reads), so a
    failure can put them back; never through a symlink leading out of the project."""
    present = {path: fs.inside_lstat(task.root, path) for path in task.spec.out_paths}
    scratch = task.scratch_dir or str(Path(task.cache_dir).parent / "tmp")
    backup = Backup(task.root, scratch, task.spec.name)
    try:
        for out in task.spec.outs:
            incremental = out.kind is OutKind.INCREMENTAL
            doing = "copy the previous output" if incremental else "remove the previous output"
            for path in out.paths:
                st = present[path]
                if st is None:
                    continue  # no previous output (a first run): nothing to set aside
                with fs.map_os_errors(path, doing):
                    if incremental:
                        backup.copy(path)
                    else:
                        backup.move(path, st)
    except BaseException:
        backup.restore()
        raise
    return backup


class _Result(NamedTuple):
    """How a stage's run ended (the `Outcome` without what it printed and the time taken)."""

    kind: OutcomeKind
    outs: tuple[OutEntry, ...] = ()
    error: str = ""
    seen: observe.Observation | None = None


def _run_captured(task: StageTask, cache: Cache) -> tuple[_Result, str]:
    """How the run ended, and what it printed.

    The previous outputs are kept aside meanwhile: put back unless every output was saved and
    cached (a failing or interrupted stage leaves its last good outputs in place)."""
    with _captured(task.log_path) as output:
        try:
            backup = _keep_previous_outputs(task)
        except PivotError as error:
            failure = f"stage '{task.spec.name}': {error}"
            return _Result(OutcomeKind.PIVOT_FAILED, error=failure), output()
        try:
            result = _produce(task, cache, backup)
        except BaseException:
            backup.restore()
            raise
        if result.kind is OutcomeKind.RAN:
            backup.discard(_remove_later)
        else:
            backup.restore()
        return result, output()


def _produce(task: StageTask, cache: Cache, backup: Backup | None = None) -> _Result:
    """Call the stage, save and cache its outputs (`backup`: the previous ones, kept aside)."""
    root, name = task.root, task.spec.name
    try:
        _prepare_incremental(task, cache)
        seen, written = _observed_call(task, backup)
        outs = tuple(
            _record_output(out, path, root, cache, written.get(path))
            for out in task.spec.outs
            for path in out.paths
        )
    except _StageError as error:
        return _Result(OutcomeKind.STAGE_FAILED, error=str(error))
    except (_PivotFailure, PivotError) as error:
        return _Result(OutcomeKind.PIVOT_FAILED, error=f"stage '{name}': {error}")
    return _Result(OutcomeKind.RAN, outs, seen=seen)


@functools.lru_cache(maxsize=4)
def _cache(cache_dir: str, link_modes: tuple[str, ...]) -> Cache:
    """One `Cache` per cache directory for the process's life, so what it learned about this
    file system (reflink refused) is learned once, not tried again (a wasted file) per stage."""
    return Cache(Path(cache_dir), link_modes)


def execute_stage(task: StageTask) -> Outcome:
    """Run one stage end to end, with the project root as the working directory (restored
    after); failures come back as values, never as exceptions."""
    started = time.perf_counter()
    previous = os.getcwd()
    if previous != task.root:
        os.chdir(task.root)
    try:
        result, output = _run_captured(task, _cache(task.cache_dir, task.link_modes))
    finally:
        os.chdir(previous)  # also where a stage that changed directory found it
    duration = time.perf_counter() - started
    progressed = bool(task.log_path) and os.path.lexists(task.log_path + logs.PROGRESS_SUFFIX)
    observed: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    if result.seen is not None:  # the stage was called: what it entered, read and wrote
        observed = result.seen.code
        reads = _declared(task.spec, result.seen.reads)
        writes = _declared(task.spec, result.seen.writes)
        writes = _remaining(task.root, _not_temporary(task.spec, writes))
    result, run_key, signature = _write_lock(task, result, observed)
    published = False
    if task.publish_log and task.log_path:
        with contextlib.suppress(OSError):  # else the runner publishes it (and reports why not)
            logs.publish_run_log(
                task.log_path, progressed=False, first=task.first_run, silent=not output
            )
            published = True
    return Outcome(
        task.spec.name,
        result.kind,
        result.outs,
        duration,
        output,
        result.error,
        observed=observed,
        undeclared_reads=reads,
        undeclared_writes=writes,
        progressed=progressed,
        run_key=run_key,
        published=published,
        lock_signature=signature,
    )


def _write_lock(
    task: StageTask, result: _Result, observed: tuple[str, ...]
) -> tuple[_Result, str, tuple[int, int, int] | None]:
    """Write the stage's lock here, sparing the main process, when the runner asked for it
    (`task.lock_path`), the stage ran, and its run entered no code beyond the planned manifest
    (else the runner makes the manifest again and writes the lock). The result (a failed lock
    write fails the stage), the run key of the lock written ("" when none was) and the
    (inode, size, mtime_ns) of the file written (the runner knows its entry: see
    `plan.WrittenLock`)."""
    if result.kind is not OutcomeKind.RAN or not task.lock_path:
        return result, "", None
    kept = observed_refs.kept_observed(task.code, task.observed, observed)
    if kept != task.observed:
        return result, "", None
    name = task.spec.name
    entry = LockEntry(name, task.code, task.params, task.inputs, result.outs, kept)
    try:
        # a new lock is an unnamed file linked in (`fs.atomic_write_stat`): one call less than
        # through a spare, which only pays where a lock is there to swap with
        spares = None if task.first_run else _lock_spares
        st = lock.write_lock(task.lock_path, entry, spares)
    except PivotError as error:  # e.g. the lock file's directory is read-only
        return _Result(OutcomeKind.PIVOT_FAILED, error=f"stage '{name}': {error}"), "", None
    return result, run_cache.run_key_of(entry), (st.st_ino, st.st_size, st.st_mtime_ns)
