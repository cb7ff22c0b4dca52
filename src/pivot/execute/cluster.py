"""The Dask executor: run the plan's stages on a `distributed` cluster, data moving by hash.

The driver (this process) plans as always; each RUN step goes to the cluster as a small task
(import reference, params, input manifest, expected code fingerprint). Before it is sent, its
inputs are put on the remote; when its result comes back, its outputs are fetched from the
remote into the local cache and the workspace (unless `download=False`). The runner then writes
the lock file, as for any executor. Dask is imported only here, only when this executor is used.
Imports of Pivot: execute, remote, store, errors; never api or cli.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import threading
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pivot import workspace
from pivot.errors import ClusterError, StoreError
from pivot.execute import worker
from pivot.execute.cluster_worker import ClusterOutcome, ClusterTask, Input, run_cluster_task
from pivot.execute.worker import Outcome, OutcomeKind, StageTask
from pivot.remote import transfer
from pivot.remote.base import Remote, RemoteSettings, open_remote
from pivot.store.cache import Cache
from pivot.store.lock import OutEntry
from pivot.workspace import Context

__all__ = ["ClusterExecutor", "ClusterOptions", "code_archive", "dask_resources"]

LOCAL = "dask"
"""`--executor dask`: a local cluster that Pivot starts for the run and stops after it."""

_SKIPPED_DIRECTORIES = frozenset(
    {".git", ".pivot", "__pycache__", "node_modules", ".hg", ".svn", ".tox", ".nox"}
)


@dataclasses.dataclass(frozen=True)
class ClusterOptions:
    """How to reach the cluster and move code and data."""

    address: str  # "dask" (local cluster) or a scheduler address such as tcp://host:8786
    remote: (
        RemoteSettings | None
    )  # required for a real cluster; None: a local cluster shares the cache
    upload_code: bool = True  # False: the project's code is installed on every worker
    download: bool = True  # False: outputs stay on the remote (`pivot pull` fetches them)
    workers: int | None = None  # local cluster size (default: CPUs available)
    include_packages: bool = False


# --- what the workers need ------------------------------------------------------------------


def _user_files(root: Path) -> Iterator[Path]:
    """The project's Python sources (no data, no virtual environments, no Pivot state)."""
    for directory, subdirectories, files in os.walk(root):
        here = Path(directory)
        subdirectories[:] = sorted(
            name
            for name in subdirectories
            if name not in _SKIPPED_DIRECTORIES
            and not name.startswith(".venv")
            and not (here / name / "pyvenv.cfg").exists()
        )
        for name in sorted(files):
            if name.endswith(".py"):
                yield here / name


def code_archive(root: Path) -> bytes:
    """A zip of the project's user modules, byte-identical for identical sources."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in _user_files(root):
            info = zipfile.ZipInfo(
                path.relative_to(root).as_posix(), date_time=(1980, 1, 1, 0, 0, 0)
            )
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def dask_resources(resources: Mapping[str, float]) -> dict[str, float] | None:
    """A stage's declared resources as Dask worker resources (None when it declares none)."""
    return dict(resources) or None


# --- the executor ---------------------------------------------------------------------------


def _lost(stage: str, error: Exception) -> Outcome:
    """The task came back as an error instead of an outcome (its worker died, or the task was
    cancelled); the worker catches everything else."""
    killed = type(error).__name__ == "KilledWorker"
    message = (
        f"stage '{stage}' did not finish on the cluster: "
        + (
            "the worker running it died, and again on the worker it was retried on"
            if killed
            else f"{type(error).__name__}: {error}"
        )
        + ". Nothing it wrote was recorded; run `pivot repro` again"
    )
    return Outcome(stage, OutcomeKind.WORKER_DIED, (), 0.0, "", message)


class ClusterExecutor:
    """Sends stage tasks to a Dask scheduler; each one is followed by a driver-side thread that
    uploads its inputs first and fetches its outputs after."""

    def __init__(
        self,
        options: ClusterOptions,
        *,
        root: Path,
        cache: Cache,
        input_keys: Callable[[str, str], Sequence[str]],
    ) -> None:
        self.options = options
        self.root = root
        self.cache = cache
        self._input_keys = input_keys  # (path, hash) -> cache keys making up that input
        self._cluster: Any = None
        self._client = self._connect()
        self._remote: Remote | None = (
            open_remote(options.remote, root) if options.remote is not None else None
        )
        self._on_remote: set[str] = set()
        self._lock = threading.Lock()
        self._futures: list[Any] = []
        self._threads = ThreadPoolExecutor(max_workers=64, thread_name_prefix="pivot-cluster")
        self._code: str | None = None
        self._closed = False
        self._placing = threading.Lock()
        self._produced: dict[str, bool] = {}  # output hash -> is a directory (pushed by a worker)
        self.places_outputs = options.download
        self.slots: int | None = None  # Dask places each stage by its resources

    @classmethod
    def from_context(cls, ctx: Context, options: ClusterOptions) -> ClusterExecutor:
        """An executor for this project whose inputs are read from (and cached from) its
        workspace, hashed as the plan hashed them."""

        def input_keys(path: str, digest: str) -> list[str]:
            full = ctx.project.root / path
            if not full.is_dir():
                if not ctx.cache.has(digest):
                    ctx.cache.add_file(full, digest)
                return [transfer.blob_key(digest)]
            if not ctx.cache.has(digest):
                ctx.cache.add_directory(full, workspace.dep_manifest(ctx, path))
            entries = ctx.cache.load_manifest(digest)
            return [transfer.blob_key(digest), *(transfer.blob_key(d) for _, d in entries)]

        return cls(options, root=ctx.project.root, cache=ctx.cache, input_keys=input_keys)

    # --- connection ---------------------------------------------------------------------

    def _connect(self) -> Any:
        try:
            import distributed
        except ImportError:
            raise ClusterError(
                "running on a Dask cluster needs `distributed`, which is not installed. Fix: "
                "`pip install 'pivot[dask]'`"
            ) from None
        address = self.options.address
        try:
            if address == LOCAL:
                import dask

                with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
                    self._cluster = distributed.LocalCluster(
                        n_workers=self.options.workers,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=None,
                        host="127.0.0.1",
                    )
                return distributed.Client(self._cluster, set_as_default=False)
            return distributed.Client(address, timeout=30, set_as_default=False)
        except OSError as error:
            raise ClusterError(
                f"cannot reach the Dask scheduler at {address}: {error}. Fix: start it (`dask "
                "scheduler`), check the address in `--executor` or `executor:` in "
                ".pivot/config.yaml, and that this machine can reach it"
            ) from None

    # --- code and data movement ---------------------------------------------------------

    def _push(self, keys: Sequence[str], stage: str) -> None:
        if self._remote is None:
            return
        with self._lock:
            todo = [key for key in keys if key not in self._on_remote]
        if not todo:
            return
        result = transfer.push(self.cache.root, self._remote, todo)
        if not result.ok:
            raise ClusterError(
                f"stage '{stage}': cannot put its inputs on remote '{self._remote.url}': "
                f"{len(result.missing)} missing and {len(result.corrupt)} corrupt in the local "
                "cache. Fix: `pivot repro` the stages that produce them, then retry"
            )
        with self._lock:
            self._on_remote.update(todo)

    def _code_hash(self) -> str | None:
        """The project's code, zipped and cached once per run, and uploaded when the workers
        fetch it; a local cluster uses it only to know when its warm workers must re-import."""
        if not self.options.upload_code:
            return None
        with self._lock:
            if self._code is None:
                self._code = self.cache.add_bytes(code_archive(self.root))
            code = self._code
        self._push([transfer.blob_key(code)], "(code upload)")
        return code

    def _fetch_outputs(self, outs: tuple[OutEntry, ...], stage: str) -> None:
        """Bring a finished stage's outputs into the local cache (verified) and the workspace."""
        if self._remote is not None:
            self._fetch([out.hash for out in outs], stage)
            manifests = [out.hash for out in outs if out.is_directory]
            self._fetch([d for m in manifests for _, d in self.cache.load_manifest(m)], stage)
        with self._placing:  # after shutdown (Ctrl-C) nothing more reaches the workspace
            if self._closed:
                raise ClusterError(f"stage '{stage}': not placed, the run was stopped")
            for out in outs:
                target = self.root / out.path.rstrip("/")
                if out.is_directory:
                    self.cache.restore_directory(out.hash, target)
                else:
                    self.cache.restore_file(out.hash, target, writable=not out.cache)

    def _fetch(self, digests: Sequence[str], stage: str) -> None:
        assert self._remote is not None
        keys = [transfer.blob_key(d) for d in dict.fromkeys(digests) if not self.cache.has(d)]
        if not keys:
            return
        result = transfer.fetch(self.cache.root, self._remote, keys)
        if not result.ok:
            raise ClusterError(
                f"stage '{stage}' ran on the cluster, but {len(result.missing)} of its outputs "
                f"are missing and {len(result.corrupt)} corrupt on remote '{self._remote.url}'"
            )

    # --- tasks --------------------------------------------------------------------------

    def _cluster_task(self, task: StageTask) -> ClusterTask:
        inputs = []
        for entry in task.inputs:
            with self._lock:
                pushed = self._produced.get(entry.hash)
            if pushed is None:  # not an output the cluster made in this run: put it there
                self._push(self._input_keys(entry.path, entry.hash), task.spec.name)
            is_directory = pushed if pushed is not None else (self.root / entry.path).is_dir()
            inputs.append(Input(entry.path, entry.hash, is_directory))
        previous = [transfer.blob_key(digest) for digest in task.incremental.values()]
        self._push(previous, task.spec.name)
        return ClusterTask(
            stage=task.spec.name,
            spec=worker.dumps(task.spec),
            inputs=tuple(inputs),
            incremental=dict(task.incremental),
            code=dict(task.code),
            code_archive=self._code_hash(),
            code_path=str(self.root) if self._remote is None else None,
            remote=self.options.remote,
            shared_cache=str(self.cache.root) if self._remote is None else None,
            link_modes=task.link_modes,
            include_packages=self.options.include_packages,
        )

    def _run(self, task: StageTask) -> Outcome:
        stage = task.spec.name
        try:
            cluster_task = self._cluster_task(task)
        except (ClusterError, StoreError) as error:
            return Outcome(stage, OutcomeKind.PIVOT_FAILED, (), 0.0, "", str(error))
        key = f"pivot-{stage}-{hashlib.sha256(cluster_task.spec).hexdigest()[:8]}-{os.urandom(4).hex()}"
        future = self._client.submit(
            run_cluster_task,
            cluster_task,
            key=key,
            pure=False,
            resources=dask_resources(task.spec.resources),
        )
        with self._lock:
            self._futures.append(future)
        try:
            result: ClusterOutcome = future.result()
        except Exception as error:  # the worker died (twice: the scheduler retries once)
            return _lost(stage, error)
        outcome = dataclasses.replace(result.outcome, worker=result.worker)
        with self._lock:
            self._produced.update((out.hash, out.is_directory) for out in outcome.outs)
        if outcome.ok and self.options.download:
            try:
                self._fetch_outputs(outcome.outs, stage)
            except (ClusterError, StoreError) as error:
                kind = OutcomeKind.PIVOT_FAILED
                return dataclasses.replace(outcome, kind=kind, outs=(), error=str(error))
        return outcome

    def flush(self, chunk: int = 1, *, stop_on_failure: bool = False) -> None:
        return None  # each task goes to the cluster as it is submitted

    def submit(self, task: StageTask) -> Future[Outcome]:
        return self._threads.submit(self._run, task)

    def shutdown(self, *, kill: bool = False) -> None:
        with self._placing:  # waits for outputs being placed right now, if any
            if self._closed:
                return
            self._closed = True
        if kill:
            with self._lock:
                futures = list(self._futures)
            if futures:
                self._client.cancel(futures, force=True)
        self._threads.shutdown(wait=not kill, cancel_futures=kill)
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()
