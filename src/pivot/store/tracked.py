"""`.pvt` files: a small committed record of raw data that no stage produces (`pivot track`).

`data/raw.csv.pvt` records `data/raw.csv`: its hash (a manifest hash for a directory), size and,
for a directory, its file count. The data itself lives in the cache and is git-ignored. JSON with
sorted keys, written atomically. Imports nothing of Pivot's but `pivot.errors` and the store.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from pivot import fs
from pivot.errors import LockFileError
from pivot.store import hashing

__all__ = [
    "SUFFIX",
    "TrackedEntry",
    "parse_tracked",
    "read_tracked",
    "tracked_file_for",
    "write_tracked",
]

SUFFIX = ".pvt"
_VERSION = 1


@dataclasses.dataclass(frozen=True)
class TrackedEntry:
    """What `pivot track` recorded: the data's project-relative path, hash, bytes and files."""

    path: str
    hash: str
    size: int
    is_directory: bool
    files: int = 1


def tracked_file_for(root: Path, path: str) -> Path:
    """Where the `.pvt` file of project-relative `path` lives (next to the data)."""
    return Path(root) / (path.rstrip("/") + SUFFIX)


def write_tracked(root: Path, entry: TrackedEntry) -> Path:
    """Write the `.pvt` file of `entry` atomically; returns its path."""
    name = entry.path.rstrip("/").rsplit("/", 1)[-1]
    document = {
        "path": name + ("/" if entry.is_directory else ""),
        "hash": entry.hash,
        "size": entry.size,
        "pvt_version": _VERSION,
    }
    if entry.is_directory:
        document["files"] = entry.files
    target = tracked_file_for(root, entry.path)
    fs.atomic_write_text(target, json.dumps(document, indent=2, sort_keys=True) + "\n")
    return target


def read_tracked(pvt: Path, root: Path) -> TrackedEntry:
    """Parse `.pvt` file `pvt` inside project `root`; LockFileError saying what is wrong.

    The path it records must name the file or directory right next to it (no other directory,
    no '..'), so a `.pvt` file can never point Pivot outside the project.
    """
    return parse_tracked(Path(pvt).read_bytes(), Path(pvt), root)


def parse_tracked(data: bytes, pvt: Path, root: Path) -> TrackedEntry:
    """Like `read_tracked` for content already read (e.g. from a git revision)."""
    fix = f"Fix: run `pivot track` on the data again to rewrite {pvt.name}."
    try:
        document = json.loads(data)
    except ValueError as error:
        raise LockFileError(f"'{pvt}' is not valid JSON ({error}). {fix}") from None
    if not isinstance(document, dict) or document.get("pvt_version") != _VERSION:
        raise LockFileError(f"'{pvt}' is not a version {_VERSION} .pvt file. {fix}")
    name, digest, size = document.get("path"), document.get("hash"), document.get("size")
    expected = pvt.name[: -len(SUFFIX)]
    if not isinstance(name, str) or name.rstrip("/") != expected:
        raise LockFileError(
            f"'{pvt}' records the path {name!r}, but a .pvt file may only describe '{expected}' "
            f"next to it. {fix}"
        )
    if not hashing.is_valid_hash(digest) or not isinstance(size, int) or size < 0:
        raise LockFileError(f"'{pvt}' has an invalid hash or size. {fix}")
    relative = pvt.parent.resolve().relative_to(Path(root).resolve()).as_posix()
    path = expected if relative == "." else f"{relative}/{expected}"
    files = document.get("files", 1)
    return TrackedEntry(path, str(digest), size, name.endswith("/"), int(files))
