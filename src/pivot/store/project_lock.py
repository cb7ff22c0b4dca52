"""The project lock (`.pivot/lock`): one command that changes the workspace at a time.

`repro`, `run`, `checkout` and `commit` hold it; read-only commands never take it. It is an
advisory `flock` on the file, so the kernel releases it when its holder dies: a lock left by a
killed process is taken over at once. The file names the holder (pid, command, start time) for
the waiting message; a holder that ends cleanly empties it, so a non-empty file found on taking
the lock says the previous holder was killed (and its litter should be cleaned). Imports nothing
of Pivot's but `pivot.errors`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pivot.errors import PivotError, ProjectLockedError, StoreError

__all__ = ["Holder", "hold", "read_holder"]


@dataclasses.dataclass(frozen=True)
class Holder:
    """Who holds (or last held) the project lock."""

    pid: int
    command: str
    started: str  # ISO 8601, UTC

    def describe(self) -> str:
        return f"`{self.command}` (pid {self.pid}, started {self.started})"


@dataclasses.dataclass(frozen=True)
class Held:
    """The lock, taken: `interrupted` is the previous holder if it did not end cleanly."""

    holder: Holder
    interrupted: Holder | None


def read_holder(path: Path) -> Holder | None:
    """The holder recorded in the lock file, None if it is empty, missing or unreadable."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        return Holder(int(document["pid"]), str(document["command"]), str(document["started"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextlib.contextmanager
def hold(
    path: Path,
    command: str,
    *,
    wait: bool = True,
    on_wait: Callable[[Holder | None], None] = lambda holder: None,
) -> Iterator[Held]:
    """Hold the project lock at `path` while the block runs.

    If another process holds it: with `wait`, call `on_wait(holder)` once and block until it
    is free (Ctrl-C interrupts the wait); without, raise ProjectLockedError naming the holder.
    """
    import fcntl  # POSIX only; imported here so the module loads everywhere

    path = Path(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as error:
        raise StoreError(
            f"cannot open the project lock '{path}' ({error.strerror}). Fix: check that "
            f"'{path.parent}' exists and is writable."
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _current_holder(path)
            if not wait:
                raise ProjectLockedError(_locked_message(path, holder)) from None
            on_wait(holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        interrupted = read_holder(path)
        me = Holder(os.getpid(), command, _now())
        _write(fd, json.dumps(dataclasses.asdict(me), sort_keys=True) + "\n")
        try:
            yield Held(me, interrupted)
        except PivotError:
            _write(fd, "")  # refused or failed cleanly: nothing half-done to recover
            raise
        _write(fd, "")  # a clean end; after Ctrl-C or a crash the record stays, for the next
    finally:
        os.close(fd)  # releases the flock


def _current_holder(path: Path) -> Holder | None:
    """The holder's record; a holder that has just taken the lock writes it an instant later."""
    deadline = time.monotonic() + 1.0
    holder = read_holder(path)
    while holder is None and time.monotonic() < deadline:
        time.sleep(0.02)
        holder = read_holder(path)
    return holder


def _write(fd: int, text: str) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode("utf-8"), 0)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _locked_message(path: Path, holder: Holder | None) -> str:
    who = holder.describe() if holder else "another Pivot command"
    return (
        f"the project is locked: {who} is changing it (lock file {path}). Wait for it to "
        "finish (run again without --no-wait to wait for it), or stop it. Read-only commands "
        "(`pivot status`, `pivot repro --dry-run`) work meanwhile."
    )
