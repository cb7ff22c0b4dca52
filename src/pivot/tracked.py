"""Raw data that no stage produces: `pivot track` records it in a `.pvt` file and the cache.

Finds `.pvt` files, hashes and caches tracked data, git-ignores it, reports tracked data that
changed without being re-tracked, and restores it. Imports of Pivot: plan (for `Context`),
graph, store, errors; never execute, api or cli.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from pivot import fs
from pivot.errors import NoRecordError, OutputConflictError, PathEscapeError
from pivot.store.lock import OutEntry
from pivot.store.tracked import SUFFIX, TrackedEntry, read_tracked, write_tracked
from pivot.workspace import Context, hash_path

__all__ = ["TRACKED_OWNER", "find_tracked", "restore", "stale", "to_out", "track"]

TRACKED_OWNER = ""
"""The owner of a tracked path in transfer reports (no stage)."""

_SKIP_DIRS = frozenset({"__pycache__", "node_modules"})


def find_tracked(root: Path) -> list[TrackedEntry]:
    """Every `.pvt` file under `root` (hidden directories and virtualenvs are not searched)."""
    found = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(
            name
            for name in subdirs
            if not name.startswith(".")
            and name not in _SKIP_DIRS
            and not os.path.exists(os.path.join(directory, name, "pyvenv.cfg"))
        )
        found += [
            read_tracked(Path(directory, n), root)
            for n in sorted(n for n in files if n.endswith(SUFFIX))
        ]
    return found


def to_out(entry: TrackedEntry) -> OutEntry:
    return OutEntry(entry.path, entry.hash, True, entry.is_directory)


def _relative(ctx: Context, given: str) -> str:
    full = Path(os.path.abspath(given))
    try:
        relative = full.relative_to(ctx.project.root).as_posix()
    except ValueError:
        raise PathEscapeError(
            f"'{given}' is outside the project ({ctx.project.root}); track data inside it."
        ) from None
    if relative in (".", "") or relative.split("/")[0] == ".pivot" or relative.endswith(SUFFIX):
        raise PathEscapeError(f"'{given}' cannot be tracked: give a data file or directory.")
    return relative


def track(ctx: Context, paths: Sequence[str]) -> list[TrackedEntry]:
    """Cache each path, write its `.pvt` file and git-ignore the data; refuse stage outputs."""
    entries = []
    for given in paths:
        path = _relative(ctx, given)
        writers = sorted(ctx.graph.producers(path))
        if writers:
            raise OutputConflictError(
                f"'{path}' is written by stage '{writers[0]}', so it is cached and shared as that "
                "stage's output already. Fix: track only raw data that no stage writes."
            )
        entries.append(_track_one(ctx, path))
    return entries


def _track_one(ctx: Context, path: str) -> TrackedEntry:
    full = ctx.project.root / path
    if not full.exists():
        raise NoRecordError(f"cannot track '{path}': it does not exist.")
    if full.is_dir():
        digest, manifest = ctx.hasher.hash_directory(full)
        ctx.cache.add_directory(full, manifest)
        size = sum(os.path.getsize(full / relative) for relative, _ in manifest)
        entry = TrackedEntry(path, digest, size, True, len(manifest))
    else:
        digest = ctx.hasher.hash_file(full)
        ctx.cache.add_file(full, digest)
        entry = TrackedEntry(path, digest, full.stat().st_size, False)
    write_tracked(ctx.project.root, entry)
    _git_ignore(full)
    return entry


def _git_ignore(full: Path) -> None:
    """Add `/<name>` to the `.gitignore` next to the data (git keeps the `.pvt` file instead)."""
    ignore = full.parent / ".gitignore"
    line = f"/{full.name}"
    text = ignore.read_text(encoding="utf-8") if ignore.exists() else ""
    if line not in text.splitlines():
        prefix = text if not text or text.endswith("\n") else text + "\n"
        fs.atomic_write_text(ignore, prefix + line + "\n")


def stale(ctx: Context, entries: Sequence[TrackedEntry]) -> tuple[list[str], list[str]]:
    """(tracked paths missing from the workspace, tracked paths changed and not re-tracked)."""
    missing, changed = [], []
    for entry in entries:
        found = hash_path(ctx.hasher, ctx.project.root, entry.path)
        if found is None:
            missing.append(entry.path)
        elif found[0] != entry.hash:
            changed.append(entry.path)
    return missing, changed


def restore(ctx: Context, entry: TrackedEntry) -> None:
    """Put the tracked version of `entry` in the workspace from the cache."""
    if entry.is_directory:
        ctx.cache.restore_directory(entry.hash, ctx.project.root / entry.path)
    else:
        ctx.cache.restore_file(entry.hash, ctx.project.root / entry.path)
