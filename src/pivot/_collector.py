"""Keeping Python's cyclic garbage collector from rescanning what a command builds to last.

Loading a pipeline and planning N stages allocate millions of objects that live until the
command ends (specs, graph, lock entries, fingerprints, the plan). The collector, triggered by
allocations, would scan them again and again: ~15% of a no-op `repro` at N=10,000. While they
are built it is paused; afterwards, inside a command, what exists is frozen (`gc.freeze`: never
scanned again), and when the command ends it is unfrozen, so a long-lived process (watch mode,
a notebook) still frees its cycles. Imports nothing of Pivot's.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

__all__ = ["building", "command", "paused"]

_state = threading.local()


def _depth() -> int:
    return int(getattr(_state, "depth", 0))


@contextlib.contextmanager
def command() -> Iterator[None]:
    """The span of one command: what `building` froze inside it is unfrozen when it ends. Nothing
    is frozen when the process had frozen objects of its own (their freeze is not ours to undo)."""
    outermost = _depth() == 0
    if outermost:
        _state.may_freeze = gc.get_freeze_count() == 0
    _state.depth = _depth() + 1
    try:
        yield
    finally:
        _state.depth -= 1
        if outermost and _state.may_freeze:
            gc.unfreeze()


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Pause the collector (it stays paused if it already was): for work that makes many small
    objects and no cycles of note, such as a batch of fingerprints."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def building() -> Iterator[None]:
    """Pause the collector while long-lived objects are built; inside a `command`, freeze them
    when done. Outside one (a library call), the collector is only paused and resumed."""
    with paused():
        try:
            yield
        finally:
            if _depth() and getattr(_state, "may_freeze", False):
                gc.freeze()
