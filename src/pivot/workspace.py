"""The workspace as Pivot sees it: hashes of deps and outputs (through the state db) and the one
recorder of an output into the cache.

The plan reads it, the runner and the worker write through it. Imports of Pivot: graph,
project, spec, store, fs and errors; never plan, execute, api or cli.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path

from pivot import fs
from pivot import project as project_module
from pivot.errors import MissingDependencyError
from pivot.graph import Graph
from pivot.project import Project
from pivot.spec import OutKind, OutSpec, StageSpec
from pivot.store import hashing
from pivot.store.cache import Cache
from pivot.store.lock import DepEntry, OutEntry
from pivot.store.run_cache import RunCache
from pivot.store.state import FileHasher, StateDB

__all__ = [
    "Context",
    "dep_entries",
    "dep_hash",
    "dep_manifest",
    "hash_path",
    "record_output",
    "remember_outputs",
]


@dataclasses.dataclass(frozen=True)
class Context:
    """What planning and executing read: the project, its graph, state db and cache."""

    project: Project
    graph: Graph
    state: StateDB
    cache: Cache

    @functools.cached_property
    def hasher(self) -> FileHasher:
        return FileHasher(self.state)

    @functools.cached_property
    def root(self) -> str:
        """The project's root directory as a string (joined to N paths in a run)."""
        return str(self.project.root)

    @functools.cached_property
    def runs(self) -> RunCache:
        """The run cache (its packs indexed in the state db); `open_context` closes it."""
        return RunCache(self.cache.root, self.state)

    @functools.cached_property
    def ignore(self) -> Callable[[str], bool] | None:
        """`.pivotignore` as a predicate over project-relative paths (read on first use)."""
        return project_module.ignore_matcher(self.project.root)


def hash_path(
    hasher: FileHasher, root: Path | str, path: str, ignore: Callable[[str], bool] | None = None
) -> tuple[str, bool] | None:
    """(hash, is_directory) of a workspace path, or None when it does not exist. In a
    directory, files whose project-relative path `ignore` accepts are left out. A path that ends
    with '/' must be a directory. One stat for a file (planning N stages hashes N outputs)."""
    full = os.path.join(root, path.rstrip("/"))
    try:
        st = os.stat(full)
        if stat.S_ISDIR(st.st_mode):
            return hasher.hash_directory(Path(full), ignore=_skip_in(path, ignore))[0], True
        if path.endswith("/"):
            return None
        return hasher.hash_file(full, st), False
    except (FileNotFoundError, NotADirectoryError):  # not there, or a parent is a file
        return None


def _skip_in(path: str, ignore: Callable[[str], bool] | None) -> Callable[[str], bool] | None:
    """`ignore` (over project-relative paths) for files relative to directory `path`."""
    prefix = path.rstrip("/") + "/"
    return (lambda relative: ignore(prefix + relative)) if ignore else None


class _DepIgnore:
    """`.pivotignore` for the files of dependency directory `path`, unless a stage writes there;
    decided on first use, so a file dependency never reads `.pivotignore` (nor imports
    pathspec) and planning N file dependencies asks the graph nothing (and makes no closure)."""

    __slots__ = ("_ctx", "_decided", "_matcher", "_path")

    def __init__(self, ctx: Context, path: str) -> None:
        self._ctx, self._path, self._decided = ctx, path, False
        self._matcher: Callable[[str], bool] | None = None

    def __call__(self, relative: str) -> bool:
        if not self._decided:
            self._matcher = None if self._ctx.graph.producers(self._path) else self._ctx.ignore
            self._decided = True
        return self._matcher is not None and self._matcher(relative)


def dep_hash(ctx: Context, path: str) -> str | None:
    """A dependency's workspace hash; `.pivotignore` applies inside directories no stage writes
    (a stage's outputs are hashed whole, as their producer recorded them)."""
    found = hash_path(ctx.hasher, ctx.root, path, _DepIgnore(ctx, path))
    return found[0] if found else None


def dep_manifest(ctx: Context, path: str) -> hashing.DirectoryManifest:
    """The manifest of a directory dependency, with the files `dep_hash` hashes."""
    skip = _skip_in(path, _DepIgnore(ctx, path))
    return ctx.hasher.hash_directory(ctx.project.root / path, ignore=skip)[1]


def dep_entries(
    ctx: Context, spec: StageSpec, known: Mapping[str, str] | None = None
) -> tuple[DepEntry, ...]:
    """The stage's dependencies as they are now (what its lock records); MissingDependencyError
    names the first one that does not exist. `known` gives the hashes of paths that are not in
    the workspace (outputs a cluster left on the remote)."""
    entries = []
    for path in spec.dep_paths:
        found = known.get(path) if known else None
        found = found or dep_hash(ctx, path)
        if found is None:
            raise MissingDependencyError(
                f"stage '{spec.name}': dependency '{path}' does not exist. Run the stage that "
                "produces it (`pivot repro` runs upstream stages too) or create the file"
            )
        entries.append(DepEntry(path, found))
    return tuple(entries)


def record_output(
    root: Path | str, out: OutSpec, path: str, cache: Cache, data: bytes | None = None
) -> OutEntry | None:
    """Hash the output at `path` and, when it is cached, store it in the cache; None when the
    stage did not create it (a DirectoryOut must be a directory, any other output a file).
    `data`: the bytes the worker itself just wrote there atomically (not read back)."""
    name = os.path.join(root, path.rstrip("/"))
    directory = out.kind is OutKind.DIRECTORY
    if not (os.path.isdir(name) if directory else os.path.isfile(name)):
        return None
    with fs.map_os_errors(path, "hash and cache output"):
        if directory:
            full = Path(name)
            files = hashing.list_files(full)
            digests = hashing.hash_files([file for _, file in files])
            manifest = hashing.DirectoryManifest(tuple((rel, digests[file]) for rel, file in files))
            cached = out.cache and cache.add_directory(full, manifest)
            digest = cached or hashing.manifest_hash(manifest)
        elif data is not None:
            digest = cache.add_bytes(data, source=name) if out.cache else hashing.hash_bytes(data)
        else:
            digest = cache.store_file(name) if out.cache else hashing.hash_file(Path(name))
    return OutEntry(path=path, hash=digest, cache=out.cache, is_directory=directory)


def remember_outputs(ctx: Context, outs: tuple[OutEntry, ...]) -> None:
    """Record the output hashes in the state db so the next status does not re-read them."""
    root = ctx.root
    for out in outs:
        full = os.path.join(root, out.path)  # (a str: a run records N of them)
        if not out.is_directory:
            ctx.state.record(full, os.stat(full), out.hash)
        elif out.cache:  # the cached manifest already holds every file's hash: no re-read
            for relative, digest in ctx.cache.load_manifest(out.hash):
                path = os.path.join(full, relative)
                ctx.state.record(path, os.stat(path), digest)
        else:
            ctx.hasher.hash_directory(Path(full))
