"""Moving cache objects between the local cache and a remote, many at a time, by hash.

Existence is checked in batches (a listing per key prefix when there are many keys, instead of
a request per object); transfers run in a bounded thread pool; every object is verified against
its hash: before an upload (a corrupt local blob never reaches the remote) and after a download,
in a temp file, before it is moved into the cache. Nothing half-written ever carries a blob's
name, so an interrupted run resumes by moving what is still missing. Imports nothing of Pivot's
but `pivot.errors`, `pivot.fs`, `pivot.store` and `pivot.remote.base`.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TypeVar

from pivot import fs
from pivot.remote.base import Remote
from pivot.store import hashing

__all__ = [
    "Progress",
    "TransferResult",
    "blob_key",
    "delete",
    "fetch",
    "is_object_key",
    "key_hash",
    "map_keys",
    "push",
    "push_bytes",
    "remote_has",
]

_CHECK_ONE_BY_ONE = 32
"""Up to this many keys are checked with a request each; more are checked by listing."""

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


@dataclasses.dataclass(frozen=True)
class Progress:
    """Where a transfer is: objects handled of `total`, bytes moved so far."""

    done: int
    total: int
    bytes: int


ProgressSink = Callable[[Progress], None]


@dataclasses.dataclass(frozen=True)
class TransferResult:
    """What a push or fetch did: keys moved (and their bytes), keys already at the destination,
    keys the source does not have, and keys whose content does not match their hash."""

    moved: tuple[str, ...] = ()
    bytes: int = 0
    present: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    corrupt: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not (self.missing or self.corrupt)

    def __add__(self, other: TransferResult) -> TransferResult:
        return TransferResult(
            self.moved + other.moved,
            self.bytes + other.bytes,
            self.present + other.present,
            self.missing + other.missing,
            self.corrupt + other.corrupt,
        )


def blob_key(digest: str) -> str:
    """The key of a content blob: `files/ab/cdef...` (the cache's layout)."""
    return f"files/{digest[:2]}/{digest[2:]}"


def key_hash(key: str) -> str:
    """The hash an object's content must have: a blob's is spelt by its key, any other
    object's (run-cache entries) is its key's last part."""
    parts = key.split("/")
    digest = parts[1] + parts[2] if parts[0] == "files" and len(parts) == 3 else parts[-1]
    if not hashing.is_valid_hash(digest):
        raise ValueError(f"{key!r} is not the key of a content-addressed object")
    return digest


def is_object_key(key: str) -> bool:
    """True for a key naming a content-addressed object (safe to use as a relative path)."""
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts) or "\\" in key or "\0" in key:
        return False
    try:
        key_hash(key)
    except (ValueError, IndexError):
        return False
    return parts[0] in ("files", "runs")


def remote_has(remote: Remote, keys: Iterable[str], *, jobs: int | None = None) -> set[str]:
    """Which of `keys` the remote holds: a request per key for a few, a listing per key
    prefix (`files/ab/`) for many."""
    wanted = set(keys)
    workers = jobs or remote.jobs
    if len(wanted) <= _CHECK_ONE_BY_ONE:
        found = _map(remote.exists, sorted(wanted), workers)
        return {key for key, there in zip(sorted(wanted), found) if there}
    prefixes = sorted({key.rsplit("/", 1)[0] + "/" for key in wanted})
    listed = _map(lambda prefix: {key for key, _ in remote.list_keys(prefix)}, prefixes, workers)
    return {key for keys in listed for key in keys if key in wanted}


def push(
    cache_root: Path,
    remote: Remote,
    keys: Sequence[str],
    *,
    jobs: int | None = None,
    progress: ProgressSink | None = None,
) -> TransferResult:
    """Upload the objects `keys` of the local cache the remote lacks (create-only)."""
    root = Path(cache_root)
    keys = sorted(set(keys))
    local = [key for key in keys if (root / key).is_file()]
    missing = tuple(key for key in keys if not (root / key).is_file())
    there = remote_has(remote, local, jobs=jobs)
    todo = [key for key in local if key not in there]

    def upload(key: str) -> tuple[str, int]:
        path = root / key
        if hashing.hash_file(path) != key_hash(key):
            return "corrupt", 0
        return ("moved", os.path.getsize(path)) if remote.upload(key, path) else ("present", 0)

    result = _transfer(todo, upload, jobs or remote.jobs, progress)
    return dataclasses.replace(
        result, present=result.present + tuple(sorted(there)), missing=missing
    )


def push_bytes(
    remote: Remote,
    objects: Mapping[str, bytes],
    *,
    jobs: int | None = None,
    progress: ProgressSink | None = None,
) -> TransferResult:
    """Upload the objects (key -> content) the remote lacks (create-only): for objects kept
    in memory or inside a pack, such as run-cache entries. Content that does not match its
    key's hash is never uploaded (`corrupt`)."""
    there = remote_has(remote, objects, jobs=jobs)
    todo = sorted(key for key in objects if key not in there)

    def upload(key: str) -> tuple[str, int]:
        data = objects[key]
        if hashing.hash_bytes(data) != key_hash(key):
            return "corrupt", 0
        return ("moved", len(data)) if remote.upload_bytes(key, data) else ("present", 0)

    result = _transfer(todo, upload, jobs or remote.jobs, progress)
    return dataclasses.replace(result, present=result.present + tuple(sorted(there)))


def fetch(
    cache_root: Path,
    remote: Remote,
    keys: Sequence[str],
    *,
    jobs: int | None = None,
    progress: ProgressSink | None = None,
) -> TransferResult:
    """Download the objects `keys` the local cache lacks, each verified before it enters."""
    root = Path(cache_root)
    keys = sorted(set(keys))
    present = tuple(key for key in keys if (root / key).is_file())
    todo = [key for key in keys if not (root / key).is_file()]

    def download(key: str) -> tuple[str, int]:
        target = root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = fs.temp_path_for(target)
        try:
            try:
                digest = remote.download(key, temp)
            except FileNotFoundError:
                return "missing", 0
            if digest != key_hash(key):
                return "corrupt", 0
            size = os.path.getsize(temp)
            fs.make_readonly(temp)
            os.replace(temp, target)
            return "moved", size
        finally:
            fs.remove_path(temp)

    result = _transfer(todo, download, jobs or remote.jobs, progress)
    return dataclasses.replace(result, present=present + result.present)


def _transfer(
    keys: Sequence[str],
    move: Callable[[str], tuple[str, int]],
    jobs: int,
    progress: ProgressSink | None,
) -> TransferResult:
    """Run `move` on every key in a pool of `jobs` threads; gather the outcomes."""
    outcomes: dict[str, list[str]] = {"moved": [], "present": [], "missing": [], "corrupt": []}
    total_bytes = 0
    lock = threading.Lock()
    done = 0

    def record(key: str, outcome: tuple[str, int]) -> None:
        nonlocal total_bytes, done
        with lock:
            outcomes[outcome[0]].append(key)
            total_bytes += outcome[1]
            done += 1
            if progress is not None:
                progress(Progress(done, len(keys), total_bytes))

    if progress is not None:
        progress(Progress(0, len(keys), 0))
    if keys:
        _run_pool(keys, move, max(1, min(jobs, len(keys))), record)
    return TransferResult(
        moved=tuple(sorted(outcomes["moved"])),
        bytes=total_bytes,
        present=tuple(sorted(outcomes["present"])),
        missing=tuple(sorted(outcomes["missing"])),
        corrupt=tuple(sorted(outcomes["corrupt"])),
    )


def _run_pool(
    keys: Sequence[str],
    move: Callable[[str], tuple[str, int]],
    jobs: int,
    record: Callable[[str, tuple[str, int]], None],
) -> None:
    """Submit at most a few times `jobs` keys at a time (a bounded queue), stop on Ctrl-C."""
    pool = ThreadPoolExecutor(max_workers=jobs)
    pending: dict[Future[tuple[str, int]], str] = {}
    queue = iter(keys)
    try:
        for key in queue:
            pending[pool.submit(move, key)] = key
            if len(pending) >= jobs * 4:
                _drain(pending, record, wait_for=jobs * 2)
        _drain(pending, record, wait_for=len(pending))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _drain(
    pending: dict[Future[tuple[str, int]], str],
    record: Callable[[str, tuple[str, int]], None],
    *,
    wait_for: int,
) -> None:
    for finished, future in enumerate(as_completed(list(pending)), start=1):
        record(pending.pop(future), future.result())
        if finished >= wait_for:
            return


def delete(remote: Remote, keys: Sequence[str], *, jobs: int | None = None) -> None:
    """Remove `keys` from the remote, several at a time."""
    _map(remote.delete, list(keys), jobs or remote.jobs)


def map_keys(function: Callable[[str], _Result], keys: Sequence[str], jobs: int) -> list[_Result]:
    """`function` of every key, in up to `jobs` threads, in order."""
    return _map(function, keys, jobs)


def _map(function: Callable[[_Item], _Result], items: Sequence[_Item], jobs: int) -> list[_Result]:
    if len(items) <= 1 or jobs <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(jobs, len(items))) as pool:
        return list(pool.map(function, items))
