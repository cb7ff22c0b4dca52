"""Atomic writes, small filesystem helpers, and the one translation of OSError into PivotErrors.

Imports of Pivot: `pivot.errors` only (the store and the loaders both use it).

Every write goes to a temp file in the destination's directory, named `.<name>.<random>.tmp`,
and is moved onto the destination with `os.replace`, so readers see the old file or the new one,
never a half-written one. Directory scans skip names matching `is_temp_name`. (On Linux a new
file written by `atomic_write_bytes` is an unnamed file until it is linked in, whole.)
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import re
import shutil
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pivot.errors import (
    DiskFullError,
    FilesystemError,
    PathEscapeError,
    PathTooLongError,
    PermissionDeniedError,
)

__all__ = [
    "FILE_MODE",
    "PIVOT_DIR",
    "SpareFiles",
    "atomic_output",
    "atomic_write_bytes",
    "atomic_write_stat",
    "atomic_write_text",
    "check_inside",
    "create_new_file",
    "inside_lstat",
    "is_temp_name",
    "make_directory",
    "make_parent",
    "make_readonly",
    "map_os_errors",
    "random_hex",
    "read_bytes",
    "remove_path",
    "remove_temp_files",
    "temp_name_for",
    "temp_path_for",
    "translate_os_error",
    "write_new_file",
]

PIVOT_DIR = ".pivot"
"""The project's own directory (found by `pivot.project`; no stage path may lead into it)."""
FILE_MODE = 0o666
"""Mode new files are created with (minus the umask, so usually 0644): never executable."""
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC
_FIRST_READ = 1 << 16
_READ_CHUNK = 1 << 20
_TEMP_NAME = re.compile(r"^\..*\.[0-9a-f]{16}\.tmp$", re.DOTALL)
_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
_TEMP_RANDOM = random.Random()  # temp names: seeded from os.urandom (a system call per name
# otherwise), Pivot's own (a stage seeding `random` never repeats them), new after a fork
os.register_at_fork(after_in_child=_TEMP_RANDOM.seed)


_KINDS: dict[int, tuple[type[FilesystemError], str]] = {
    errno.ENOSPC: (DiskFullError, "free space on that file system, then run the command again"),
    errno.EDQUOT: (DiskFullError, "free space within your disk quota, then run the command again"),
    errno.EACCES: (
        PermissionDeniedError,
        "make the directory writable for your user (e.g. `chmod u+w`), then run the command again",
    ),
    errno.EPERM: (
        PermissionDeniedError,
        "make the directory writable for your user (e.g. `chmod u+w`), then run the command again",
    ),
    errno.EROFS: (
        PermissionDeniedError,
        "the file system is mounted read-only: remount it writable or move the project",
    ),
    errno.ENAMETOOLONG: (
        PathTooLongError,
        "shorten the path (a shallower directory or a shorter file or stage name)",
    ),
    errno.EFBIG: (
        DiskFullError,
        "the file is larger than this process may write (`ulimit -f`) or the file system allows: "
        "raise the limit or write to another file system, then run the command again",
    ),
}


def translate_os_error(error: OSError, path: Path | str, doing: str) -> FilesystemError:
    """The most specific FilesystemError for `error`, naming `path`, what Pivot was `doing`
    (e.g. "write the lock file") and the fix."""
    kind, fix = _KINDS.get(
        error.errno or 0,
        (FilesystemError, "check that the path exists and is readable and writable"),
    )
    reason = error.strerror or str(error)
    where = None if error.filename is None else str(error.filename)
    if where is not None and is_temp_name(os.path.basename(where)):
        where = os.path.dirname(where) + os.sep  # name the directory, not our temp file
    if where is not None and where != str(path):
        reason += f": '{where}'"
    name = errno.errorcode.get(error.errno or 0)
    if name:
        reason += f" ({name})"
    return kind(
        f"cannot {doing} '{path}': {reason}. Fix: {fix}.", path=str(path), errno=error.errno or 0
    )


def map_os_errors(path: Path | str, doing: str) -> contextlib.AbstractContextManager[None]:
    """Turn an OSError raised inside into a FilesystemError naming `path`, `doing` and the fix.

    The one place where Pivot's own OS errors become Pivot errors (httpx's `map_exceptions`
    is the model); store and workspace code wrap their I/O in it.
    """
    return _MappedOSErrors(path, doing)


class _MappedOSErrors(contextlib.AbstractContextManager[None]):
    """`map_os_errors`: a class, not a generator (it wraps every output of every stage)."""

    __slots__ = ("doing", "path")

    def __init__(self, path: Path | str, doing: str) -> None:
        self.path, self.doing = path, doing

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: BaseException | None, traceback: object) -> None:
        if isinstance(error, OSError):
            raise translate_os_error(error, self.path, self.doing) from error


def temp_path_for(path: Path) -> Path:
    """A fresh, not yet existing temp path next to `path` (same directory, so same filesystem)."""
    return Path(temp_name_for(os.fspath(path)))


def temp_name_for(path: str) -> str:
    """`temp_path_for`, as a string."""
    directory, slash, name = path.rpartition("/")  # os.path.split and join, without their calls
    return f"{directory}{slash}.{name}.{_TEMP_RANDOM.getrandbits(64):016x}.tmp"


def random_hex(digits: int) -> str:
    """`digits` random hex digits, for unique names (no system call: see `_TEMP_RANDOM`)."""
    return f"{_TEMP_RANDOM.getrandbits(4 * digits):0{digits}x}"


def is_temp_name(name: str) -> bool:
    """True for a file name made by `temp_path_for` (an atomic write in progress or abandoned)."""
    return _TEMP_NAME.match(name) is not None


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temp path next to `path`; on success move it onto `path`, on any error delete it.

    The caller creates the temp file (or directory) itself. Parent directories are created.
    """
    target = os.fspath(path)
    make_parent(target)
    temp = temp_name_for(target)
    try:
        yield Path(temp)
        os.replace(temp, target)
    except BaseException:
        remove_path(Path(temp))
        raise


def make_parent(path: Path | str) -> None:
    """Create the directory `path` is in, and its parents, unless it exists."""
    make_directory(os.path.dirname(path))


def make_directory(directory: str) -> None:
    """Create `directory`, and its parents, unless it exists ("" is the working directory)."""
    if directory and not os.path.isdir(directory):
        os.makedirs(directory, exist_ok=True)


def atomic_write_bytes(path: Path | str, data: bytes, mode: int | None = None) -> None:
    """Write `data` to `path` atomically (temp file in the same directory + `os.replace`),
    creating its directory if needed; `mode` is the file's exact mode (default: `FILE_MODE`
    minus the umask). Where the system allows, the temp file is an unnamed one (`_write_unnamed`)."""
    target = os.fspath(path)
    _atomic_write(target, data, mode, None)


def atomic_write_stat(path: Path | str, data: bytes) -> os.stat_result:
    """`atomic_write_bytes`, returning the stat of the file written, taken before it became
    `path`: while `path` has that (inode, size, mtime), it holds `data` (what the state db
    assumes of a file whose hash it recorded), whatever happened to `path` meanwhile."""
    taken: list[os.stat_result] = []
    _atomic_write(os.fspath(path), data, None, taken)
    return taken[0]


def _atomic_write(
    target: str, data: bytes, mode: int | None, taken: list[os.stat_result] | None
) -> None:
    """`atomic_write_bytes`; with `taken`, the written file's stat is appended to it."""
    if _UNNAMED and _write_unnamed(target, data, mode, taken):
        return
    temp = _filled_temp(target, data, mode, taken)
    try:
        os.replace(temp, target)
    except BaseException:
        remove_path(Path(temp))
        raise


_UNNAMED_FLAGS = getattr(os, "O_TMPFILE", 0) | os.O_WRONLY | _CLOEXEC
_UNNAMED = [True] if getattr(os, "O_TMPFILE", 0) and os.path.isdir("/proc/self/fd") else []
"""Non-empty while this system makes unnamed files (Linux's `O_TMPFILE`, linked in through
`/proc/self/fd`); emptied the first time a file system refuses one."""
_NO_UNNAMED = frozenset({errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOSYS})


def _write_unnamed(
    target: str, data: bytes, mode: int | None, taken: list[os.stat_result] | None = None
) -> bool:
    """Write `data` into a new unnamed file in `target`'s directory and link it in as `target`:
    it appears whole, at once, as a renamed temp file would, but its directory gets one entry
    instead of a temp name made and then renamed (a tenth to a quarter less of a small atomic
    write's kernel time here), and a process killed meanwhile leaves nothing behind. A target
    that exists is replaced through a temp name. False, with nothing written, when the file
    cannot be made here (no directory yet, or unnamed files refused): the caller writes a named
    temp file instead, which makes the directory or reports the error."""
    directory = os.path.dirname(target) or "."
    try:
        fd = os.open(directory, _UNNAMED_FLAGS, FILE_MODE)
    except OSError as error:
        if error.errno in _NO_UNNAMED:
            _UNNAMED.clear()
        return False
    try:
        _write_all(fd, data)
        if mode is not None:
            os.fchmod(fd, mode)
        st = os.fstat(fd) if taken is not None else None
        if not _link_in(fd, target):
            return False
        if taken is not None and st is not None:
            taken.append(st)
        return True
    finally:
        os.close(fd)


def _link_in(fd: int, target: str) -> bool:
    """Link the unnamed file open as `fd` in as `target` (through a temp name beside it, moved
    onto `target`, when `target` exists); False when it cannot be linked in."""
    source = f"/proc/self/fd/{fd}"
    try:  # (a directory file descriptor makes Python call `linkat`, which follows the link)
        os.link(source, target, src_dir_fd=fd, follow_symlinks=True)
        return True
    except FileExistsError:
        pass
    except OSError:  # e.g. the directory was removed meanwhile: the caller's way reports it
        return False
    temp = temp_name_for(target)
    try:
        os.link(source, temp, src_dir_fd=fd, follow_symlinks=True)
    except OSError:
        return False
    try:
        os.replace(temp, target)
    except BaseException:
        remove_path(Path(temp))
        raise
    return True


def _filled_temp(
    target: str, data: bytes, mode: int | None = None, taken: list[os.stat_result] | None = None
) -> str:
    """A new temp file next to `target` holding `data` (its directory made if missing); with
    `taken`, its stat is appended to it."""
    temp = temp_name_for(target)
    try:
        fd = create_new_file(temp)
    except (FileNotFoundError, NotADirectoryError):  # no directory yet: made only then
        make_parent(target)
        fd = create_new_file(temp)
    try:
        try:
            _write_all(fd, data)
            if mode is not None:
                os.fchmod(fd, mode)
            if taken is not None:
                taken.append(os.fstat(fd))
        finally:
            os.close(fd)
    except BaseException:
        remove_path(Path(temp))
        raise
    return temp


class SpareFiles:
    """Atomic rewrites of existing files that neither create nor free a file per write: a
    run's lock files.

    Creating a file, and freeing one (what `os.replace` onto an existing file does), are a
    file system's dear operations: on a cloud VM's disk mounted with `discard`, 0.1-0.5 ms
    each, against ~25 us for the rest of a small write. Here the new content goes into a spare
    file (a temp name in the target's directory), which `renameat2(RENAME_EXCHANGE)` swaps with
    the target in one step: readers see the old file or the new one, as with `os.replace`, and
    the old file becomes the directory's spare for the next rewrite. A target that does not
    exist yet, or a system that cannot swap (not Linux, or a file system without it), gets a
    plain `atomic_write_bytes`.

    A spare is reused only when it is a plain file with one link (never a hard link shared with
    another path) and the owner and mode a new file gets here. A process killed mid-run leaves
    its spares as temp files (`is_temp_name`), which the next command's litter cleaning
    deletes; `close` deletes them. A reader that opened the old file just before the swap may
    read it while it is being rewritten as a spare: readers of files written here read again
    when what they read is not well-formed (`store.lock.read_lock` does). For Pivot's own files
    (lock files), never for users' outputs. One thread at a time.
    """

    def __init__(self) -> None:
        self._spares: dict[str, str] = {}  # directory -> its spare's path
        self._made: tuple[int, int, int] | None = None  # (mode, uid, gid) a new file gets here

    def write(self, path: Path | str, data: bytes) -> None:
        """Write `data` to `path` atomically (its directory made if missing)."""
        self._write(os.fspath(path), data, None)

    def write_stat(self, path: Path | str, data: bytes) -> os.stat_result:
        """`write`, returning the stat of the file written, taken before it became `path` (as
        `atomic_write_stat` does: while `path` has that inode, size and mtime, it holds `data`;
        a spare is rewritten, which moves its mtime, only once it has left `path`)."""
        taken: list[os.stat_result] = []
        self._write(os.fspath(path), data, taken)
        return taken[-1]

    def _write(self, target: str, data: bytes, taken: list[os.stat_result] | None) -> None:
        directory = os.path.dirname(target)
        temp = self._spares.pop(directory, None)
        if temp is None or not _refilled(temp, data, taken):
            made = [] if taken is None and self._made is None else taken
            temp = _filled_temp(target, data, taken=made)
            if self._made is None and made:
                st = made[-1]
                self._made = (st.st_mode, st.st_uid, st.st_gid)
        try:
            if not _exchange(temp, target):
                os.replace(temp, target)
                return
            # `temp` is now the old file: the directory's next spare, when it may be one
            st = os.lstat(temp)
            if stat.S_ISDIR(st.st_mode):  # the target was a directory: put it back, and
                _exchange(temp, target)  # let os.replace refuse as it always did
                os.replace(temp, target)
            elif st.st_nlink == 1 and (st.st_mode, st.st_uid, st.st_gid) == self._made:
                self._spares[directory] = temp
            else:  # shared with another path, or not what a new file here would be
                os.unlink(temp)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)  # never a tree: a directory target is back in its place
            raise

    def close(self) -> None:
        """Delete the spares."""
        while self._spares:
            remove_path(Path(self._spares.popitem()[1]))


def _refilled(spare: str, data: bytes, taken: list[os.stat_result] | None = None) -> bool:
    """Overwrite the spare file with `data` (with `taken`, its stat then is appended to it:
    cut to size only when that stat says it is longer); False when it cannot be (then it is
    deleted)."""
    try:
        fd = os.open(spare, os.O_WRONLY | _CLOEXEC)
        try:
            _write_all(fd, data)
            st = None
            if taken is not None:
                st = os.fstat(fd)
            if st is None or st.st_size != len(data):
                os.ftruncate(fd, len(data))
                st = os.fstat(fd) if taken is not None else None
        finally:
            os.close(fd)
    except OSError:  # removed meanwhile, or no longer writable: a new temp file instead
        remove_path(Path(spare))
        return False
    if taken is not None and st is not None:
        taken.append(st)
    return True


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2  # linux/fcntl.h, linux/fs.h
_renameat2: Any = None  # libc's renameat2, looked up at the first swap; False where there is none


def _exchange(source: str, target: str) -> bool:
    """Swap the files at `source` and `target` atomically; False (nothing done) when `target`
    does not exist or this system cannot swap. Other OSErrors are raised."""
    global _renameat2
    if _renameat2 is None:
        _renameat2 = _find_renameat2()
    if _renameat2 is False:
        return False
    paths = (os.fsencode(source), os.fsencode(target))
    if _renameat2(_AT_FDCWD, paths[0], _AT_FDCWD, paths[1], _RENAME_EXCHANGE) == 0:
        return True
    import ctypes  # loaded by the first swap already

    code = ctypes.get_errno()
    if code == errno.ENOENT:  # no target yet (a missing `source` os.replace then reports)
        return False
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EPERM):  # cannot swap here
        _renameat2 = False
        return False
    raise OSError(code, os.strerror(code), target)


def _find_renameat2() -> Any:
    if not sys.platform.startswith("linux"):
        return False
    import ctypes  # here, not at start-up (~10 ms)

    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2  # glibc >= 2.28; else no swaps
    except (AttributeError, OSError):
        return False
    function.argtypes = (
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    )
    function.restype = ctypes.c_int
    return function


def read_bytes(path: Path | str) -> bytes:
    """The whole content of file `path` (what `Path.read_bytes` gives, in fewer system calls:
    open, read, close for a small file such as a lock; a short read of a regular file is its
    end)."""
    fd = os.open(path, os.O_RDONLY | _CLOEXEC)
    try:
        chunk = os.read(fd, _FIRST_READ)
        if len(chunk) < _FIRST_READ:
            return chunk
        chunks = [chunk]
        wanted = os.fstat(fd).st_size - len(chunk) + 1  # the rest, and a read that finds its end
        while chunk := os.read(fd, max(wanted, _READ_CHUNK)):
            chunks.append(chunk)
            wanted -= len(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def write_new_file(path: Path | str, data: bytes) -> None:
    """Create the file `path` (it must not exist) holding `data`."""
    fd = create_new_file(path)
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` as UTF-8 to `path` atomically (no newline translation)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def create_new_file(path: Path | str) -> int:
    """Open a new file for writing (it must not exist) with mode `FILE_MODE` minus the umask."""
    return os.open(path, _CREATE_FLAGS, FILE_MODE)


def check_inside(root: Path | str, relative: str) -> bool:
    """PathEscapeError unless `root / relative` stays inside `root` once symlinks are resolved:
    neither a parent directory nor the path itself may be a symlink leading out of the project,
    so nothing is ever written (or deleted) through one. Returns whether the path exists (as
    `os.path.lexists` says: from the same look-ups, so a caller needs none of its own)."""
    return inside_lstat(root, relative) is not None


def inside_lstat(root: Path | str, relative: str) -> os.stat_result | None:
    """`check_inside`, returning the path's `lstat` (None when nothing is there)."""
    found = _plain_below(os.fspath(root), relative)
    if found is not False:
        return found  # it resolves to the root's real path joined with `relative`: inside
    real_root = os.path.realpath(root)
    target = os.path.join(root, relative.rstrip("/"))
    for candidate, what in ((os.path.dirname(target), "its directory"), (target, "it")):
        real = os.path.realpath(candidate)
        if real != real_root and not real.startswith(real_root + os.sep):
            raise PathEscapeError(
                f"output '{relative}' leads outside the project: {what} resolves through a "
                f"symlink to '{real}'. Pivot never writes through a symlink out of the project. "
                f"Fix: replace the symlink with a real directory (or point the output elsewhere)"
            )
    try:
        return os.lstat(target)
    except (OSError, ValueError):  # as os.path.lexists: missing, or not a path here
        return None


def _plain_below(root: str, relative: str) -> os.stat_result | Literal[False] | None:
    """The `lstat` of `root / relative` (None: nothing there), when `relative` is a plain
    relative path (no `.`, `..` or empty parts) and none of its components that exist under
    `root` is a symlink (a few `lstat`s, not `realpath`s); False otherwise (the caller
    resolves the path)."""
    parts = relative.rstrip("/").split("/")
    if not relative or any(part in ("", ".", "..") for part in parts):
        return False
    current = root
    st = None
    for part in parts:
        current = os.path.join(current, part)
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return None  # nothing from here on exists, so nothing further is a symlink
        except OSError:
            return False
        if stat.S_ISLNK(st.st_mode):
            return False
    return st


def remove_temp_files(directory: Path, *, recursive: bool) -> int:
    """Delete the temp files (and temp directories) of abandoned atomic writes in `directory`
    (and below it, if `recursive`; symlinked directories are not entered). Returns how many.

    Only safe while no other Pivot command writes here: hold the project lock.
    """
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return 0
    for entry in entries:
        if is_temp_name(entry.name):
            remove_path(Path(entry.path))
            removed += 1
        elif recursive and entry.is_dir(follow_symlinks=False):
            removed += remove_temp_files(Path(entry.path), recursive=True)
    return removed


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
