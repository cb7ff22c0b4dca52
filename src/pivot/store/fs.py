"""Atomic writes and small filesystem helpers; imports nothing of Pivot's (loaders use it too).

Every write goes to a temp file in the destination's directory, named `.<name>.<random>.tmp`,
and is moved onto the destination with `os.replace`, so readers see the old file or the new one,
never a half-written one. Directory scans skip names matching `is_temp_name`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "atomic_output",
    "atomic_write_bytes",
    "atomic_write_text",
    "is_temp_name",
    "make_readonly",
    "remove_path",
    "temp_path_for",
]

_TEMP_NAME = re.compile(r"^\..*\.[0-9a-f]{16}\.tmp$", re.DOTALL)
_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


def temp_path_for(path: Path) -> Path:
    """A fresh, not yet existing temp path next to `path` (same directory, so same filesystem)."""
    return path.with_name(f".{path.name}.{os.urandom(8).hex()}.tmp")


def is_temp_name(name: str) -> bool:
    """True for a file name made by `temp_path_for` (an atomic write in progress or abandoned)."""
    return _TEMP_NAME.match(name) is not None


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temp path next to `path`; on success move it onto `path`, on any error delete it.

    The caller creates the temp file (or directory) itself. Parent directories are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(path)
    try:
        yield temp
        os.replace(temp, path)
    except BaseException:
        remove_path(temp)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (temp file in the same directory + `os.replace`)."""
    with atomic_output(path) as temp:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0))
        with open(fd, "wb", closefd=True) as handle:
            handle.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` as UTF-8 to `path` atomically (no newline translation)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def make_readonly(path: Path) -> None:
    """Remove every write permission bit from `path` (follows symlinks)."""
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & _WRITE_BITS:
        os.chmod(path, mode & ~_WRITE_BITS)


def remove_path(path: Path) -> None:
    """Remove a file, a symlink (not its target) or a whole directory tree; missing is fine."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    try:
        shutil.rmtree(path)
    except PermissionError:
        _make_tree_writable(Path(path))
        shutil.rmtree(path)


def _make_tree_writable(root: Path) -> None:
    """Give the owner rwx on every directory under `root` (read-only dirs block deleting)."""
    _add_owner_rwx(root)
    for directory, subdirs, _files in os.walk(root):
        for name in subdirs:
            _add_owner_rwx(Path(directory, name))


def _add_owner_rwx(directory: Path) -> None:
    with contextlib.suppress(OSError):
        st = os.lstat(directory)
        if stat.S_ISDIR(st.st_mode):  # never chmod through a symlink
            os.chmod(directory, stat.S_IMODE(st.st_mode) | stat.S_IRWXU)
