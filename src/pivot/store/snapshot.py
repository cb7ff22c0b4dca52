"""The no-op snapshot (`.pivot/noop-<command>`): what a "nothing to do" decision depended on.

When a plan of the whole pipeline decides there is nothing to do, Pivot writes down every input
of that decision as (path, stat signature) pairs and a few values (Python, `sys.path`, the
environment variables the pipeline's import read, ...), with what the command printed from
(stage names, warnings). The next plain `pivot repro` / `pivot status` first checks it: when
every path still has its signature and every value matches, the answer is the same without
importing `pipeline.py` (see `pivot.noop`, which records it, and `pivot.cli.noop`, which uses it).

The file is a private cache: marshal data behind a magic string, the format's version, the
Python version (marshal's format is Python's) and a BLAKE2b digest of the data, written
atomically; anything unreadable, truncated or from another Python is ignored (the slow path
runs and writes a new one). Imports nothing of Pivot's but `pivot.fs`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import marshal
import os
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pivot import fs

__all__ = [
    "COMMANDS",
    "Signature",
    "Snapshot",
    "discard",
    "environment_digest",
    "holds",
    "interpreter",
    "listing",
    "load",
    "path_of",
    "save",
    "search_path",
    "signature",
]

Signature = tuple[int, int, int] | None
"""What the state db trusts for "file unchanged": (inode, size, mtime_ns); None: no such path."""

COMMANDS = ("repro", "status")
_MAGIC = b"PIVOT-NOOP\n"
_VERSION = 1
_HEADER = _MAGIC + bytes([_VERSION]) + sys.hexversion.to_bytes(4, "little")
_DIGEST_SIZE = 32


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """Everything a "nothing to do" decision of `command` depended on, and what it printed from.

    `stats` and `lstats` map absolute paths to their signature as `os.stat` (following links)
    and `os.lstat` saw them (a directory's is its inode alone: what it lists is in
    `listings`, the signatures of the directories listed or searched for modules), `exists` whether paths whose existence alone mattered existed;
    `environ` holds the variables read (None: unset), and
    `environ_digest` the whole environment's digest when code read all of it.
    """

    command: str
    root: str
    interpreter: tuple[Any, ...]
    version: str  # Pivot's
    sys_path: tuple[str, ...]
    environ: Mapping[str, str | None]
    environ_digest: str | None
    stats: Mapping[str, Signature]
    lstats: Mapping[str, Signature]
    listings: Mapping[str, Signature]
    exists: Mapping[str, bool]
    stages: tuple[str, ...]
    packages: Mapping[str, Mapping[str, str]]
    warnings: tuple[str, ...]


def path_of(pivot_dir: Path | str, command: str) -> str:
    return os.path.join(pivot_dir, f"noop-{command}")


def signature(st: os.stat_result) -> Signature:
    """A path's signature as a stat saw it; a directory's is its inode alone (the stat says
    it is there, not what it lists: see `listing`)."""
    if stat.S_ISDIR(st.st_mode):
        return (st.st_ino, -1, -1)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def listing(st: os.stat_result) -> Signature:
    """A listed directory's signature: its mtime changes when an entry is added or removed."""
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def interpreter() -> tuple[Any, ...]:
    """The Python that decided: its executable, version and flags (`-O`, `-B`, ...), and the
    encodings `open()` and file names use by default (the locale's, set from `LANG`...)."""
    import locale

    encodings = (sys.getfilesystemencoding(), locale.getpreferredencoding(False))
    return (sys.executable, sys.version, tuple(sys.flags), encodings)


def search_path() -> tuple[str, ...]:
    """`sys.path` as absolute paths (its '' is the working directory)."""
    return tuple(os.path.abspath(entry) for entry in sys.path)


def environment_digest(environ: Mapping[str, str]) -> str:
    text = "\0".join(f"{key}={value}" for key, value in sorted(environ.items()))
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()


def save(pivot_dir: Path | str, snapshot: Snapshot) -> None:
    """Write `snapshot` atomically (replacing the one of its command)."""
    data = marshal.dumps(
        (
            snapshot.command,
            snapshot.root,
            snapshot.interpreter,
            snapshot.version,
            snapshot.sys_path,
            dict(snapshot.environ),
            snapshot.environ_digest,
            dict(snapshot.stats),
            dict(snapshot.lstats),
            dict(snapshot.listings),
            dict(snapshot.exists),
            snapshot.stages,
            {name: dict(found) for name, found in snapshot.packages.items()},
            snapshot.warnings,
        )
    )
    digest = hashlib.blake2b(data, digest_size=_DIGEST_SIZE).digest()
    fs.atomic_write_bytes(Path(path_of(pivot_dir, snapshot.command)), _HEADER + digest + data)


def load(pivot_dir: Path | str, command: str) -> Snapshot | None:
    """The snapshot of `command`, or None when there is none or it cannot be trusted."""
    try:
        with open(path_of(pivot_dir, command), "rb") as file:
            blob = file.read()
    except OSError:
        return None
    start = len(_HEADER) + _DIGEST_SIZE
    if blob[: len(_HEADER)] != _HEADER:
        return None
    data = blob[start:]
    if hashlib.blake2b(data, digest_size=_DIGEST_SIZE).digest() != blob[len(_HEADER) : start]:
        return None
    try:
        fields = marshal.loads(data)
        snapshot = Snapshot(*fields)
    except (ValueError, EOFError, TypeError):
        return None
    return snapshot if snapshot.command == command else None


def discard(pivot_dir: Path | str) -> None:
    """Remove every command's snapshot (a command is about to change the workspace)."""
    for command in COMMANDS:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path_of(pivot_dir, command))


def holds(snapshot: Snapshot, *, version: str, environ: Mapping[str, str]) -> bool:
    """Whether every input `snapshot` recorded is as it was: the interpreter, Pivot's `version`,
    `sys.path` (this command's, before any project import), the environment variables read,
    and every path's signature."""
    if snapshot.interpreter != interpreter() or snapshot.version != version:
        return False
    if snapshot.sys_path != search_path():
        return False
    if any(environ.get(key) != value for key, value in snapshot.environ.items()):
        return False
    if snapshot.environ_digest not in (None, environment_digest(environ)):
        return False
    if any(os.path.exists(path) != there for path, there in snapshot.exists.items()):
        return False
    return (
        _same(snapshot.listings, os.stat, listing)
        and _same(snapshot.stats, os.stat, signature)
        and _same(snapshot.lstats, os.lstat, signature)
    )


def _same(recorded: Mapping[str, Signature], stat_of: Any, sign: Any) -> bool:
    is_dir = stat.S_ISDIR
    for path, expected in recorded.items():  # (the hot loop of a no-op: one stat per entry)
        try:
            st = stat_of(path)
        except OSError:
            if expected is not None:
                return False
            continue
        if expected is None:
            return False
        if sign is signature and not is_dir(st.st_mode):
            if (st.st_ino, st.st_size, st.st_mtime_ns) != expected:
                return False
        elif sign(st) != expected:
            return False
    return True
