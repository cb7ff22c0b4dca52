"""Ctrl-C while the `pivot` command is still starting exits quietly with 130, like later on.

Imported first by `pivot/__init__.py`. Only when this process is the `pivot` command (the console
script, or `python -m pivot`) does it install a SIGINT handler for the start-up (imports can take
a few hundred milliseconds); `pivot.cli.main.main` puts Python's own handler back once the
command runs, which then turns Ctrl-C into exit 130 itself. Imports nothing of Pivot's.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

__all__ = ["EXIT_INTERRUPTED", "ignore_from_now_on", "restore_default_handler"]

EXIT_INTERRUPTED = 130


def _is_pivot_command() -> bool:
    argv = list(getattr(sys, "orig_argv", sys.argv))
    as_module = any(argv[i : i + 2] == ["-m", "pivot"] for i in range(len(argv)))
    return as_module or os.path.basename(sys.argv[0] if sys.argv else "") == "pivot"


def _exit_interrupted(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(EXIT_INTERRUPTED)


def restore_default_handler() -> None:
    """From here on Ctrl-C raises KeyboardInterrupt again (the command handles it)."""
    if signal.getsignal(signal.SIGINT) is _exit_interrupted:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def ignore_from_now_on() -> None:
    """The command is done and exiting: a Ctrl-C now changes nothing (its exit code stands)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


if _is_pivot_command() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _exit_interrupted)
