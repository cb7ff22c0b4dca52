"""Work done on another core by a forked copy of this process, its result sent back pickled.

A fork starts from this process's very state (the user's modules as imported, what was parsed
and stat'ed so far), so what it computes is what this process would compute, which no fresh
worker process can promise (it imports the modules again, without `pipeline.py`). The copy
must only compute: it writes nothing, and ends with `os._exit` (no cleanup of this process's
files, connections or handlers runs there). Used only on Linux and when no other Python
thread runs (a fork copies no thread, and a lock one held would stay held in the copy).
Imports nothing of Pivot's.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import pickle
import signal
import sys
from collections.abc import Callable

__all__ = ["Forked", "cpus", "possible", "start"]


def cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def possible() -> bool:
    """Whether a fork may run beside this process here: Linux, another CPU to run it on, and
    no Python thread but this one."""
    return sys.platform.startswith("linux") and _thread._count() == 0 and cpus() > 1


class Forked:
    """A forked copy of this process computing one result (see `start`)."""

    def __init__(self, pid: int, pipe: int) -> None:
        self.pid = pid
        self._pipe = pipe
        self._ended = False

    def result(self) -> object | None:
        """What the copy computed (waiting for it), or None when it failed or was killed: the
        caller then computes it itself, so an error shows as it would have."""
        try:
            with os.fdopen(self._pipe, "rb") as pipe:
                data = pipe.read()
        finally:
            self._pipe = -1
            status = self._reap()
        if status != 0 or not data:
            return None
        try:
            sent: object = pickle.loads(data)  # what our own copy wrote
        except Exception:
            return None
        return sent

    def stop(self) -> None:
        """End the copy if it still runs (the caller stopped early: an error, Ctrl-C)."""
        if self._pipe >= 0:
            os.close(self._pipe)
            self._pipe = -1
        if not self._ended:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self._reap()

    def _reap(self) -> int:
        if self._ended:
            return -1
        _pid, status = os.waitpid(self.pid, 0)
        self._ended = True
        return os.waitstatus_to_exitcode(status)


def start(work: Callable[[], object]) -> Forked | None:
    """Call `work()` in a forked copy of this process (check `possible()` first); its result
    comes back from `Forked.result`. None when no copy could be made (no process or file
    descriptor left): the caller then does the work itself."""
    try:
        read, write = os.pipe()
    except OSError:
        return None
    try:
        pid = os.fork()
    except OSError:
        os.close(read)
        os.close(write)
        return None
    if pid == 0:  # the copy: compute, send, and end without running any of this process's exits
        code = 1
        try:
            os.close(read)
            data = pickle.dumps(work(), protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(write, "wb") as pipe:
                pipe.write(data)
            code = 0
        except BaseException:  # Ctrl-C too: this process sees it and stops the copy
            pass
        finally:
            os._exit(code)
    os.close(write)
    return Forked(pid, read)
