"""What a Dask worker does with one stage: fetch its inputs by hash, check its code, run it, push.

Runs inside a `dask worker` process, on a machine that shares no files with the driver. Inputs
are materialised in a private scratch directory from this host's cache or the remote (every
blob verified against its hash); the stage's code must have the fingerprint the driver planned
with, else the stage is refused; outputs are cached here and pushed to the remote (create-only).
The worker never writes lock files and never decides staleness. Imports of Pivot: execute.worker,
fingerprint, remote, store, discovery, errors; never plan, api or cli.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import pickle
import shutil
import sys
import tempfile
import threading
import time
import traceback
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from pivot import fingerprint, fs
from pivot.errors import PivotError
from pivot.execute import worker
from pivot.execute.worker import Outcome, OutcomeKind, StageTask
from pivot.remote import transfer
from pivot.remote.base import Remote, RemoteSettings, open_remote
from pivot.spec import StageSpec
from pivot.store.cache import Cache
from pivot.store.lock import OutEntry
from pivot.workspace import record_output

__all__ = ["ClusterOutcome", "ClusterTask", "Input", "run_cluster_task", "worker_directory"]

WORKER_DIR_VARIABLE = "PIVOT_WORKER_DIR"
"""Where a worker keeps its cache, code and scratch space (default: beside Dask's own files)."""


@dataclasses.dataclass(frozen=True)
class Input:
    """One input of a stage as the driver planned it: a path and the hash it must have."""

    path: str
    hash: str
    is_directory: bool


@dataclasses.dataclass(frozen=True)
class ClusterTask:
    """A stage as sent through the scheduler: small, and never any data.

    `spec` is the pickled StageSpec (its function, loaders and params class travel by import
    reference, its params by value), loaded only after the project's code is on sys.path.
    """

    stage: str
    spec: bytes
    inputs: tuple[Input, ...]
    incremental: Mapping[str, str]  # IncrementalOut path -> its previous hash
    code: Mapping[str, str]  # the code manifest the driver planned with
    code_archive: str | None  # hash of the zipped user code (None: installed on the workers)
    code_path: str | None  # a local cluster: the project itself, not the archive
    remote: RemoteSettings | None  # None: a local cluster, whose workers share the cache
    shared_cache: str | None  # a local cluster: the project's cache
    link_modes: tuple[str, ...]
    include_packages: bool


@dataclasses.dataclass(frozen=True)
class ClusterOutcome:
    """The worker's `Outcome` and which worker produced it."""

    outcome: Outcome
    worker: str


class _Refused(Exception):
    """The stage cannot run here; the message is for the user."""


_one_at_a_time = threading.Lock()  # the working directory and fd capture are per process


def worker_directory() -> Path:
    """This worker host's Pivot directory: `$PIVOT_WORKER_DIR`, else next to Dask's scratch."""
    configured = os.environ.get(WORKER_DIR_VARIABLE)
    if configured:
        return Path(configured)
    try:
        from distributed import get_worker

        return Path(get_worker().local_directory).parent / "pivot"
    except (ImportError, ValueError):
        return Path(tempfile.gettempdir()) / "pivot-worker"


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().name)
    except (ImportError, ValueError):
        return f"pid {os.getpid()}"


# --- materialising what the stage needs ----------------------------------------------------


def _fetch(cache: Cache, remote: Remote | None, digests: set[str], stage: str) -> None:
    """Bring the blobs this host's cache lacks from the remote, verified, or refuse."""
    wanted = [transfer.blob_key(digest) for digest in sorted(digests) if not cache.has(digest)]
    if not wanted:
        return
    if remote is None:
        raise _Refused(
            f"stage '{stage}': blobs {', '.join(transfer.key_hash(k) for k in wanted[:3])} are "
            "not in the shared cache; run `pivot repro` again"
        )
    result = transfer.fetch(cache.root, remote, wanted)
    bad = result.missing + result.corrupt
    if bad:
        raise _Refused(
            f"stage '{stage}': the remote '{remote.url}' lacks or has corrupt blobs "
            f"{', '.join(transfer.key_hash(key) for key in bad[:3])}"
            f"{' ...' if len(bad) > 3 else ''}; push them from the driver (`pivot push`) and retry"
        )


def _materialise_inputs(
    task: ClusterTask, cache: Cache, remote: Remote | None, scratch: Path
) -> None:
    manifests = {item.hash for item in task.inputs if item.is_directory}
    files = {item.hash for item in task.inputs if not item.is_directory}
    files |= set(task.incremental.values())
    _fetch(cache, remote, manifests, task.stage)
    for digest in manifests:
        files |= {entry_hash for _, entry_hash in cache.load_manifest(digest)}
    _fetch(cache, remote, files, task.stage)
    for item in task.inputs:
        target = scratch / item.path.rstrip("/")
        if item.is_directory:
            cache.restore_directory(item.hash, target)
        else:
            cache.restore_file(item.hash, target)


def _code_directory(
    task: ClusterTask, cache: Cache, remote: Remote | None, base: Path
) -> Path | None:
    """Where the project's code is: unpacked once per uploaded version on this host, the
    project itself for a local cluster, None when it is installed on the workers."""
    if task.code_path is not None:
        return Path(task.code_path)
    if task.code_archive is None:
        return None
    target = base / "code" / task.code_archive
    if target.is_dir():
        return target
    _fetch(cache, remote, {task.code_archive}, task.stage)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
    with zipfile.ZipFile(io.BytesIO(cache.read_bytes(task.code_archive))) as archive:
        archive.extractall(staging)
    try:
        os.replace(staging, target)
    except OSError:  # another worker process on this host unpacked it first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _load_spec(task: ClusterTask, code: Path | None, scratch: Path) -> StageSpec:
    if code is not None:
        worker.enter_project(str(code), task.code_archive or "")
    os.chdir(scratch)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            spec: StageSpec = pickle.loads(task.spec)
    except Exception as error:
        where = "the uploaded code" if code is not None else "the code installed on this worker"
        raise _Refused(
            f"stage '{task.stage}' cannot be loaded from {where}: {type(error).__name__}: "
            f"{error}. Install the project's code on the workers, or set `cluster.code: upload`"
        ) from None
    return spec


class _MemoryCache:
    """Manifests this worker process computed, checked against their sources on every use."""

    def __init__(self) -> None:
        self._values: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self._values.get(key)

    def put(self, key: str, value: bytes) -> None:
        self._values[key] = value


_manifests = _MemoryCache()


def _code_root(spec: StageSpec, code: Path | None) -> Path:
    """The directory the stage's code is imported from (its top-level package's parent)."""
    if code is not None:
        return code
    top = sys.modules.get(spec.func.__module__.split(".")[0])
    filename = getattr(top, "__file__", None)
    if filename is None:
        return Path.cwd()
    path = Path(filename).parent
    return path.parent if Path(filename).name == "__init__.py" else path


def _check_code(task: ClusterTask, spec: StageSpec, code: Path | None) -> None:
    """Refuse to run code other than the code the driver planned with (version skew)."""
    request = fingerprint.StageRequest(spec.name, spec.func, spec.code_objects)
    found = fingerprint.fingerprint_stages(
        [request],
        cache=_manifests,
        root=_code_root(spec, code),
        include_packages=task.include_packages,
    )[spec.name].manifest
    changed = sorted(k for k in set(found) | set(task.code) if found.get(k) != task.code.get(k))
    if changed:
        shown = ", ".join(changed[:5]) + (
            f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        )
        raise _Refused(
            f"stage '{task.stage}' refused on worker '{_worker_name()}': its code differs from "
            f"the driver's ({shown}). Install the same version of the project's code on every "
            "worker, or set `cluster.code: upload` so Pivot ships it"
        )


def _push_outputs(
    outs: tuple[OutEntry, ...], cache: Cache, remote: Remote | None, stage: str
) -> None:
    if remote is None:
        return
    keys = []
    for out in outs:
        keys.append(transfer.blob_key(out.hash))
        if out.is_directory:
            keys += [transfer.blob_key(digest) for _, digest in cache.load_manifest(out.hash)]
    result = transfer.push(cache.root, remote, keys)
    if not result.ok:
        raise _Refused(
            f"stage '{stage}' ran, but its outputs could not be pushed to '{remote.url}' "
            f"({len(result.missing)} missing, {len(result.corrupt)} corrupt in this worker's cache)"
        )


# --- one stage -------------------------------------------------------------------------------


@contextlib.contextmanager
def _scratch(base: Path) -> Iterator[Path]:
    (base / "scratch").mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="stage-", dir=base / "scratch"))
    previous = os.getcwd()
    try:
        yield directory
    finally:
        os.chdir(previous)
        fs.remove_path(directory)


def _cache_for_transport(spec: StageSpec, cache: Cache, scratch: Path) -> None:
    """Uncached outputs (metrics, `cache=False`) travel to the driver as blobs all the same;
    their lock entries still say uncached, so the driver keeps them as plain workspace files."""
    for out in spec.outs:
        if not out.cache:
            for path in out.paths:
                record_output(scratch, dataclasses.replace(out, cache=True), path, cache)


def _run(task: ClusterTask, base: Path) -> Outcome:
    cache = Cache(Path(task.shared_cache or base / "cache"), task.link_modes)
    remote = open_remote(task.remote, base) if task.remote is not None else None
    code = _code_directory(task, cache, remote, base)
    with _scratch(base) as scratch:
        spec = _load_spec(task, code, scratch)
        _check_code(task, spec, code)
        _materialise_inputs(task, cache, remote, scratch)
        stage_task = StageTask(
            spec, str(scratch), str(cache.root), task.link_modes, task.incremental
        )
        outcome = worker.execute_stage(stage_task)
        if outcome.ok:
            _cache_for_transport(spec, cache, scratch)
            _push_outputs(outcome.outs, cache, remote, task.stage)
        return outcome


def _failed(stage: str, message: str, started: float) -> Outcome:
    """Pivot's own work on the worker failed (not the stage's code)."""
    duration = time.perf_counter() - started
    return Outcome(stage, OutcomeKind.PIVOT_FAILED, (), duration, "", message)


def run_cluster_task(task: ClusterTask) -> ClusterOutcome:
    """The function Dask runs: one stage, start to end; failures come back as values."""
    started = time.perf_counter()
    with _one_at_a_time:
        try:
            outcome = _run(task, worker_directory())
        except _Refused as refusal:
            outcome = _failed(task.stage, str(refusal), started)
        except PivotError as error:
            outcome = _failed(
                task.stage, f"stage '{task.stage}' on worker '{_worker_name()}': {error}", started
            )
        except Exception:  # a bug of Pivot's: say so with the traceback, as a value
            message = f"stage '{task.stage}': Pivot failed on worker '{_worker_name()}':\n"
            outcome = _failed(task.stage, message + traceback.format_exc(), started)
    return ClusterOutcome(outcome, _worker_name())
