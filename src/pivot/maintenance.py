"""Keeping the cache healthy: `gc` (what nothing keeps, locally or on a remote) and `verify`.

What is kept is read from the workspace's lock and `.pvt` files, or from every commit's (through
git), plus the run-cache entries of those runs. Imports of Pivot: plan, sharing, tracked,
remote, store, errors; never execute, api or cli.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from pivot import fs, sharing, tracked
from pivot.errors import CacheCorruptError, LockFileError, NoRecordError, ProjectError
from pivot.remote import transfer
from pivot.remote.base import Remote
from pivot.store import hashing, lock, run_cache
from pivot.store.lock import OutEntry
from pivot.store.tracked import SUFFIX, parse_tracked
from pivot.workspace import Context

__all__ = [
    "Garbage",
    "Problem",
    "collect_garbage",
    "delete_garbage",
    "get",
    "records_at",
    "verify",
]


@dataclasses.dataclass(frozen=True)
class Garbage:
    """Objects nothing keeps, where they are, and their total size."""

    where: str
    keys: tuple[str, ...]
    bytes: int
    kept: int

    @property
    def run_entries(self) -> int:
        return sum(1 for key in self.keys if key.startswith(run_cache.RUNS_DIR + "/"))


# --- what is kept -------------------------------------------------------------------------------


def _workspace_records(ctx: Context) -> Iterator[tuple[OutEntry, str | None]]:
    """(output, run key) of every lock file in the workspace, then every tracked path."""
    paths = {ctx.project.lock_file(spec.name, spec.state_dir) for spec in ctx.graph.stages.values()}
    if ctx.project.stages_dir.is_dir():
        paths |= set(ctx.project.stages_dir.glob("*.lock"))
    for path in sorted(paths):
        entry = lock.read_lock(path)
        if entry is not None:
            key = run_cache.run_key_of(entry)
            yield from ((out, key) for out in entry.outs)
    for data in tracked.find_tracked(ctx.project.root):
        yield tracked.to_out(data), None


def _git(root: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, input=stdin, capture_output=True, check=True
        )
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", b"") or str(error).encode()
        raise ProjectError(
            f"`git {' '.join(args[:2])}` failed in {root}: {detail.decode(errors='replace').strip()}"
            ". Fix: --all-commits needs the project to be a git repository."
        ) from None
    return done.stdout


def _commit_records(ctx: Context) -> Iterator[tuple[OutEntry, str | None]]:
    """(output, run key) of every lock and `.pvt` file in any commit of the git repository."""
    commits = _git(ctx.project.root, "rev-list", "--all").decode().split()
    return ((out, key) for out, key, _owner in records_at(ctx, commits))


def records_at(
    ctx: Context, revisions: Sequence[str]
) -> Iterator[tuple[OutEntry, str | None, str]]:
    """(output, run key, owner) of every lock and `.pvt` file in the given git revisions."""
    root = ctx.project.root
    top = Path(_git(root, "rev-parse", "--show-toplevel").decode().strip())
    prefix = root.resolve().relative_to(top.resolve()).as_posix()
    prefix = "" if prefix == "." else prefix + "/"
    blobs: dict[str, str] = {}
    for revision in revisions:
        listing = _git(root, "ls-tree", "-r", "--full-tree", revision).decode(errors="replace")
        for line in listing.splitlines():
            meta, _, path = line.partition("\t")
            if path.startswith(prefix) and _is_record_path(path):
                blobs.setdefault(meta.split()[2], path[len(prefix) :])
    if not blobs:
        return
    batch = _git(root, "cat-file", "--batch", stdin="\n".join(blobs).encode() + b"\n")
    for sha, data in _split_batch(batch):
        yield from _parse_record(ctx, blobs[sha], data)


def _is_record_path(path: str) -> bool:
    return path.endswith(SUFFIX) or (path.endswith(".lock") and "/stages/" in "/" + path)


def _split_batch(output: bytes) -> Iterator[tuple[str, bytes]]:
    """Parse `git cat-file --batch` output into (sha, content)."""
    position = 0
    while position < len(output):
        end = output.index(b"\n", position)
        sha, _kind, size = output[position:end].decode().split()
        start = end + 1
        yield sha, output[start : start + int(size)]
        position = start + int(size) + 1


def _parse_record(
    ctx: Context, path: str, data: bytes
) -> Iterator[tuple[OutEntry, str | None, str]]:
    try:
        if path.endswith(SUFFIX):
            entry = parse_tracked(data, ctx.project.root / path, ctx.project.root)
            yield tracked.to_out(entry), None, tracked.TRACKED_OWNER
            return
        recorded = lock.decode_lock(data.decode("utf-8"), Path(path))
    except (LockFileError, UnicodeDecodeError, ValueError):
        return  # an old, unreadable record keeps nothing
    key = run_cache.run_key_of(recorded)
    yield from ((out, key, recorded.stage) for out in recorded.outs)


def _kept_keys(
    ctx: Context, *, all_commits: bool, manifests_from: Remote | None = None
) -> set[str]:
    """Object keys the records keep: blobs, directory manifests and their files, and the
    run-cache entries (with their outputs) of the recorded runs."""
    records = list(_workspace_records(ctx))
    if all_commits:
        records += list(_commit_records(ctx))
    outs = {out for out, _ in records if out.cache}
    run_keys = {key for _, key in records if key is not None}
    keep: set[str] = set()
    for entry_key, data in ctx.runs.entries():
        if run_cache.split_object_key(entry_key)[0] in run_keys:
            keep.add(entry_key)
            with contextlib.suppress(ValueError):  # unreadable: it keeps nothing
                outs.update(out for out in run_cache.outs_from_bytes(data) if out.cache)
    directories = [out for out in outs if out.is_directory]
    if manifests_from is not None:
        missing = [transfer.blob_key(d.hash) for d in directories if not ctx.cache.has(d.hash)]
        transfer.fetch(ctx.cache.root, manifests_from, missing)
    for out in outs:
        keep.add(transfer.blob_key(out.hash))
        if out.is_directory:
            keep.update(transfer.blob_key(digest) for _, digest in _manifest(ctx, out))
    return keep


def _manifest(ctx: Context, out: OutEntry) -> Iterable[tuple[str, str]]:
    try:
        return ctx.cache.load_manifest(out.hash).entries
    except CacheCorruptError:
        if ctx.cache.has(out.hash):
            raise
        return ()  # neither here nor fetchable: its files cannot be known, nor are they here


# --- gc -----------------------------------------------------------------------------------------


def _local_objects(ctx: Context) -> Iterator[tuple[str, int]]:
    files = ctx.cache.root / "files"
    if files.is_dir():
        for prefix in sorted(os.listdir(files)):
            directory = files / prefix
            for name in sorted(os.listdir(directory)) if directory.is_dir() else ():
                if hashing.is_valid_hash(prefix + name):
                    yield f"files/{prefix}/{name}", (directory / name).stat().st_size
    for key, data in ctx.runs.entries():
        yield key, len(data)


def collect_garbage(ctx: Context, *, all_commits: bool, remote: Remote | None = None) -> Garbage:
    """What `gc` would remove from the local cache (or from `remote`); removes nothing."""
    keep = _kept_keys(ctx, all_commits=all_commits, manifests_from=remote)
    if remote is None:
        objects = list(_local_objects(ctx))
        where = f"the local cache ({ctx.cache.root})"
    else:
        remote.check()
        listed = [*remote.list_keys("files/"), *remote.list_keys(run_cache.RUNS_DIR + "/")]
        objects = [(key, size) for key, size in listed if transfer.is_object_key(key)]
        where = f"remote {remote.url}"
    garbage = [(key, size) for key, size in objects if key not in keep]
    return Garbage(
        where,
        tuple(key for key, _ in garbage),
        sum(size for _, size in garbage),
        len(objects) - len(garbage),
    )


def delete_garbage(ctx: Context, garbage: Garbage, remote: Remote | None = None) -> None:
    """Remove what `collect_garbage` found (empty prefix directories too, locally)."""
    if remote is not None:
        transfer.delete(remote, garbage.keys)
        return
    blobs = [key for key in garbage.keys if not key.startswith(run_cache.RUNS_DIR + "/")]
    ctx.runs.remove(key for key in garbage.keys if key.startswith(run_cache.RUNS_DIR + "/"))
    for key in blobs:
        fs.remove_path(ctx.cache.root / key)
    for key in blobs:
        parent = (ctx.cache.root / key).parent
        for directory in (parent, parent.parent):
            if directory != ctx.cache.root:
                try:
                    directory.rmdir()
                except OSError:
                    break


# --- verify -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Problem:
    """A recorded output or tracked path whose object is missing or corrupt."""

    kind: str  # "missing" or "corrupt"
    path: str
    owner: str
    hash: str

    def describe(self) -> str:
        if self.owner == RUN_CACHE_OWNER:
            what = "pack" if self.path.endswith(run_cache.PACK_SUFFIX) else "entry"
            return f"{self.kind}: run-cache {what} '{self.path}'" + (
                f", hash {self.hash}" if self.hash else " (damaged bytes)"
            )
        who = f"stage '{self.owner}'" if self.owner else "tracked"
        return f"{self.kind}: '{self.path}' ({who}), hash {self.hash}"


RUN_CACHE_OWNER = "(run cache)"
"""The owner of a `Problem` found in the run cache itself: a damaged entry or pack."""


def verify(
    ctx: Context,
    records: Sequence[sharing.Record],
    *,
    remote: Remote | None = None,
    jobs: int | None = None,
    runs: bool = False,
) -> tuple[int, list[Problem]]:
    """Check every object `records` need is present and hashes to its name, in the local cache
    or on `remote` (downloaded to a temp file and hashed). Returns (objects checked, problems).
    With `runs`, also check the local run cache's entries and packs (`RunCache.repair`).

    A corrupt local blob is moved aside (never deleted), so `pivot pull` can fetch it again; a
    corrupt remote object is only reported. Damaged run-cache entries, and a pack's damaged
    bytes, are moved aside too (a stage whose entry was damaged simply runs)."""
    index = sharing.ObjectIndex()
    keys = sharing.top_level_keys(records, index)
    if remote is not None:  # a directory's files are listed in its manifest: have it here
        manifests = [transfer.blob_key(r.out.hash) for r in records if r.out.is_directory]
        transfer.fetch(ctx.cache.root, remote, manifests)
    keys += sharing.directory_file_keys(ctx, records, index)
    if remote is None:
        found = {key: _local_state(ctx, key) for key in keys}
    else:
        remote.check()
        found = _remote_states(ctx, remote, sorted(set(keys)), jobs)
    problems = [
        Problem(state, path, record.owner, transfer.key_hash(key))
        for key, state in sorted(found.items())
        if state != "ok"
        for record, path in index.owners[key]
    ]
    if runs and remote is None:
        _good, damages = ctx.runs.repair()
        for damage in damages:
            packed = damage.where.endswith(run_cache.PACK_SUFFIX)
            digest = "" if packed else run_cache.split_object_key(damage.where)[1]
            problems.append(Problem("corrupt", damage.where, RUN_CACHE_OWNER, digest))
    return len(found), problems


def _local_state(ctx: Context, key: str) -> str:
    """The object's state: ok, missing or corrupt. A corrupt blob is moved aside at once (to
    the cache's quarantine), so a later pull fetches it again instead of keeping the bad copy."""
    digest = transfer.key_hash(key)
    if not ctx.cache.has(digest):
        return "missing"
    if ctx.cache.verify(digest):
        return "ok"
    ctx.cache.set_aside(digest, "found by pivot verify")
    return "corrupt"


def _remote_states(
    ctx: Context, remote: Remote, keys: list[str], jobs: int | None
) -> dict[str, str]:
    scratch = ctx.project.pivot_dir / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)

    def state(key: str) -> str:
        temp = fs.temp_path_for(scratch / transfer.key_hash(key))
        try:
            return "ok" if remote.download(key, temp) == transfer.key_hash(key) else "corrupt"
        except FileNotFoundError:
            return "missing"
        finally:
            fs.remove_path(temp)

    return dict(zip(keys, transfer.map_keys(state, keys, jobs or remote.jobs)))


# --- get ----------------------------------------------------------------------------------------


def _find_at(ctx: Context, revision: str, path: str) -> tuple[OutEntry, str]:
    """The record of `path` (an output, a tracked path, or a file inside either) at `revision`,
    as (entry for that path, who recorded it)."""
    containing: tuple[OutEntry, str] | None = None
    for out, _key, owner in records_at(ctx, [revision]):
        recorded = out.path.rstrip("/")
        if recorded == path:
            return out, owner
        if out.is_directory and path.startswith(recorded + "/"):
            containing = (out, owner)
    if containing is None:
        raise NoRecordError(
            f"no lock or .pvt file at revision '{revision}' records '{path}'. Fix: check the path "
            "(relative to the project root) and the revision (`git log`)."
        )
    return containing


def get(ctx: Context, revision: str, path: str, dest: Path, *, remote: Remote | None) -> OutEntry:
    """Write the version of `path` recorded at git `revision` to `dest` (from the cache, else
    from `remote`); returns the entry written."""
    out, owner = _find_at(ctx, revision, path)
    record = sharing.Record(owner, out)
    if not _have_all(ctx, [record]) and remote is not None:
        sharing.fetch(ctx, remote, [record])
    if out.path.rstrip("/") != path:  # a file inside a recorded directory
        relative = path[len(out.path.rstrip("/")) + 1 :]
        files = ctx.cache.load_manifest(out.hash).as_dict()
        if relative not in files:
            raise NoRecordError(f"'{path}' is not in '{out.path}' at revision '{revision}'.")
        out = OutEntry(path, files[relative], True, False)
    if not _have_all(ctx, [sharing.Record(owner, out)]):
        hint = "pull it with `-r NAME`" if remote is None else f"{remote.url} lacks it too"
        raise NoRecordError(
            f"the version of '{path}' at '{revision}' (hash {out.hash}) is not in the local cache;"
            f" {hint}."
        )
    if out.is_directory:
        ctx.cache.restore_directory(out.hash, dest)
    else:
        ctx.cache.restore_file(out.hash, dest, writable=True)
    return out


def _have_all(ctx: Context, records: Sequence[sharing.Record]) -> bool:
    for record in records:
        if not ctx.cache.has(record.out.hash):
            return False
        if record.out.is_directory:
            try:
                manifest = ctx.cache.load_manifest(record.out.hash)
            except CacheCorruptError:
                return False
            if not all(ctx.cache.has(digest) for _, digest in manifest):
                return False
    return True
