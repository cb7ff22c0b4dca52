"""The file a running stage's output is captured in: one per process, reused from stage to stage.

Creating a file is among the dearest system calls on many file systems (an inode, a journal
entry), and a stage used to create one log per run just to capture what it prints, which most
stages never do. Here a process keeps one capture file per log directory: while a stage runs,
its log path is a hard link to that file (so it is followed live, subprocesses' output too;
in a pool process only once the stage has run a few tens of milliseconds, see `_LateLinks`);
when the stage ends, a log that holds something keeps the file (the process makes a new one for
the next stage), and an empty log becomes a link to a shared empty, read-only file. Where hard
links are refused, each log is a file of its own, as before. Imports of Pivot: `fs` only; never
the worker, the runner or the store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import io
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from pivot import fs

__all__ = [
    "link_logs_late",
    "log_sink",
    "read_all",
    "restore_standard_fds",
    "save_standard_fds",
    "text_stream",
]

_ROLL_OVER_LINKS = 20_000
"""Links to one shared empty file before another is made (file systems cap links per file,
ext4 at 65,000; the run's `logs/<stage>.log` links count too)."""
_CHECK_LINKS_EVERY = 1000
"""Links made between two looks at the shared empty file's link count (other links to it, a
run's `logs/<stage>.log`, are at most one per link made here: far below the file system's cap)."""
_RDWR_NEW = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_NO_LINKS = frozenset({errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP, errno.ENOSYS})


@dataclasses.dataclass
class _Files:
    """This process's capture file and shared empty log in one log directory."""

    directory: str = ""
    capture: str = ""  # the reusable capture file ("" until made)
    fd: int = -1  # open on `capture`, read-write
    identity: tuple[int, int] = (0, 0)  # (device, inode) of the capture file, to check `fd`
    empty: str = ""  # a read-only empty file that silent stages' logs are links to
    unchecked: int = 0  # links made to `empty` since its link count was last looked at
    linking: bool = True  # False once this file system refused a hard link
    anonymous: int = -1  # for stages without a log: an unnamed temporary file

    def reset(self, directory: str) -> None:
        """Forget the files of another directory (or files someone removed)."""
        if self.fd >= 0 and self.size() is not None:
            os.close(self.fd)
        self.directory, self.capture, self.fd, self.empty = directory, "", -1, ""

    def fresh_capture(self) -> int:
        """The capture file, empty and at offset 0 (made if there is none)."""
        size = self.size() if self.fd >= 0 else None
        if size is not None:
            if size:
                os.ftruncate(self.fd, 0)
            os.lseek(self.fd, 0, os.SEEK_SET)
            return self.fd
        os.makedirs(self.directory, exist_ok=True)
        self.capture = _unique(self.directory, "capture")
        self.fd = os.open(self.capture, _RDWR_NEW, fs.FILE_MODE)
        st = os.fstat(self.fd)
        self.identity = (st.st_dev, st.st_ino)
        return self.fd

    def size(self) -> int | None:
        """The capture file's size; None (and the file forgotten, its descriptor left alone)
        when `fd` no longer is that file (a stage closed it, and maybe opened another)."""
        try:
            st = os.fstat(self.fd)
        except OSError:
            st = None
        if st is None or (st.st_dev, st.st_ino) != self.identity:
            self.capture, self.fd = "", -1
            return None
        return st.st_size

    def detach(self) -> None:
        """The capture file now belongs to a log: the next stage gets a new one."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.capture)
        os.close(self.fd)
        self.capture, self.fd = "", -1

    def link_empty(self, dest: str) -> None:
        """Make `dest` (which must not exist) a link to the shared empty file."""
        for attempt in range(2):
            try:
                if not self.empty or self._full():
                    self.empty = _unique(self.directory, "empty")
                    os.close(os.open(self.empty, _RDWR_NEW, 0o444))
                    self.unchecked = 0
                os.link(self.empty, dest)
                self.unchecked += 1
                return
            except OSError as error:
                if attempt or error.errno not in (errno.ENOENT, errno.EMLINK):
                    raise
                self.empty = ""  # removed, or full of links: make another

    def _full(self) -> bool:
        """Whether `empty` has links enough: looked at every `_CHECK_LINKS_EVERY` links."""
        if self.unchecked < _CHECK_LINKS_EVERY:
            return False
        self.unchecked = 0
        return os.stat(self.empty).st_nlink >= _ROLL_OVER_LINKS


_FILES = _Files()


def _unique(directory: str, what: str) -> str:
    """A new hidden name in `directory` for this process's `what` file (never a log's name)."""
    return os.path.join(directory, f".{what}-{os.getpid()}-{os.urandom(4).hex()}")


class _LateLinks:
    """A pool process's thread that makes a running stage's capture file its log only once the
    stage has run for `TICK` to twice that (a live follower polls every 0.1 s), so that a
    short stage's log costs one link when it ends instead of three (link the capture as the
    log, link the shared empty file under a temp name, rename it over the log). The thread
    wakes every `TICK`, whatever the stages do: a stage costs it nothing."""

    TICK = 0.04

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: tuple[str, str] | None = None  # (capture, log) of the stage, not linked
        self._linked = False  # the running stage's log was linked by the thread
        self.kept_fds: tuple[int, int] | None = None  # the process's stdout and stderr, kept
        # (a pool process's standard descriptors change only while a stage runs)
        thread = threading.Thread(target=self._tick, name="pivot-log-links", daemon=True)
        thread.start()

    def begin(self, capture: str, log_path: str) -> None:
        with self._lock:
            self._running, self._linked = (capture, log_path), False

    def end(self) -> bool:
        """The stage ended: whether its log was linked meanwhile (never after this)."""
        with self._lock:
            self._running = None
            return self._linked

    def _tick(self) -> None:
        seen = None
        while True:
            time.sleep(self.TICK)
            with self._lock:
                running = self._running
                if running is not None and running is seen:  # running for a whole tick
                    self._running = None  # tried once: a failure is handled when it ends
                    with contextlib.suppress(OSError):
                        _link_over(*running)
                        self._linked = True
                seen = running


_LATE: list[_LateLinks] = []  # the process's late linker, once `link_logs_late` made it


def link_logs_late() -> None:
    """In a pool process: from now on, link a stage's log only once the stage has run a while
    (or when it ends); see `_LateLinks`."""
    if not _LATE:
        _LATE.append(_LateLinks())


@contextlib.contextmanager
def log_sink(log_path: str) -> Iterator[int]:
    """A file descriptor of an empty file, at offset 0, to capture a stage's output in. With
    `log_path`, that file is the log (followed live; in a pool process from a little after
    the start, see `link_logs_late`) and keeps what the stage wrote; without it, the file is a
    temporary one, reused by the process's next stage."""
    if not log_path:
        yield _anonymous()
        return
    if _LATE and _FILES.linking:
        sink = _fresh_in(os.path.dirname(log_path))
        _LATE[0].begin(_FILES.capture, log_path)
        try:
            yield sink
        finally:
            _settle_late(log_path, _LATE[0].end())
        return
    fd = _linked(log_path) if _FILES.linking else None
    if fd is None:  # hard links are refused here: a file of its own, as before
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "w+b") as handle:
            yield handle.fileno()
        return
    try:
        yield fd
    finally:
        _settle(log_path)


def save_standard_fds() -> tuple[int, int]:
    """Copies of file descriptors 1 and 2 as they are now, for `restore_standard_fds` once a
    stage whose output goes elsewhere has run. A pool process (where nothing but its stages
    touches them) makes them once and keeps them."""
    if not _LATE:
        return os.dup(1), os.dup(2)
    if _LATE[0].kept_fds is None:
        _LATE[0].kept_fds = (os.dup(1), os.dup(2))
    return _LATE[0].kept_fds


def restore_standard_fds(saved: tuple[int, int]) -> None:
    """Make descriptors 1 and 2 what they were when `save_standard_fds` gave `saved`."""
    os.dup2(saved[0], 1)
    os.dup2(saved[1], 2)
    if not _LATE or saved is not _LATE[0].kept_fds:
        os.close(saved[0])
        os.close(saved[1])


def text_stream(fd: int) -> io.TextIOWrapper:
    """A new text stream writing UTF-8 straight to descriptor `fd` (bad characters replaced),
    for `sys.stdout` and `sys.stderr` while a stage runs; closing it leaves `fd` open."""
    raw = io.FileIO(fd, "wb", closefd=False)
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace", write_through=True)


def read_all(fd: int) -> bytes:
    """Everything written to the file open as `fd` (from its start)."""
    size = os.fstat(fd).st_size
    chunks = []
    offset = 0
    while offset < size:
        chunk = os.pread(fd, size - offset, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _anonymous() -> int:
    if _FILES.anonymous < 0:  # a descriptor, not a file object: kept open for the process
        _FILES.anonymous, name = tempfile.mkstemp(prefix="pivot-capture-")
        os.unlink(name)
    fd = _FILES.anonymous
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _fresh_in(directory: str) -> int:
    """This process's capture file in `directory`, empty and at offset 0."""
    if _FILES.directory != directory:
        _FILES.reset(directory)
    return _FILES.fresh_capture()


def _linked(log_path: str) -> int | None:
    """The capture file, linked as `log_path`; None where hard links are refused."""
    directory = os.path.dirname(log_path)
    if _FILES.directory != directory:
        _FILES.reset(directory)
    for attempt in range(2):
        fd = _FILES.fresh_capture()
        try:
            _link_over(_FILES.capture, log_path)
            return fd
        except FileNotFoundError:  # the directory or the capture file was removed meanwhile
            if attempt:
                raise
            _FILES.reset(directory)
        except OSError as error:
            if error.errno not in _NO_LINKS:
                raise
            _FILES.linking = False
            return None
    return None


def _link_over(source: str, dest: str) -> None:
    try:
        os.link(source, dest)
    except FileExistsError:  # a log of an earlier attempt in this run: replaced
        os.unlink(dest)
        os.link(source, dest)


def _settle(log_path: str) -> None:
    """The stage is done: its log keeps what it wrote; the capture file is free again."""
    size = _FILES.size()
    if size is None:  # the stage closed it: the log keeps whatever it holds
        return
    if size:
        _FILES.detach()
        return
    temp = fs.temp_name_for(log_path)
    try:
        _FILES.link_empty(temp)
        os.replace(temp, log_path)
    except OSError:
        fs.remove_path(Path(temp))
        _FILES.detach()  # leave the (empty) capture file as the log


def _settle_late(log_path: str, linked: bool) -> None:
    """`_settle`, for a stage whose log may not be linked yet: a silent stage's log becomes a
    link to the shared empty file at once; one that printed gets the capture file, as if it
    had been linked at the start."""
    if not linked:
        capture, size = _FILES.capture, _FILES.size()
        if size == 0:
            try:
                _FILES.link_empty(log_path)
                return
            except OSError:  # a log of an earlier attempt there, or no directory: the usual way
                pass
            if _linked(log_path) is None:  # links refused from now on: a file of its own
                fs.atomic_write_bytes(log_path, b"")
                return
        else:
            try:
                _link_over(capture, log_path)
            except OSError as error:  # the directory was removed, or links are refused
                if size is None:  # the stage closed the capture file: what it holds is lost
                    return
                _FILES.linking = _FILES.linking and error.errno not in _NO_LINKS
                os.makedirs(os.path.dirname(log_path), exist_ok=True)
                fs.atomic_write_bytes(log_path, read_all(_FILES.fd))
                _FILES.detach()
                return
    _settle(log_path)
