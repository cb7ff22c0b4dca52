"""Workers warming up while the main process plans import one at a time (`worker.warm_up`'s
gate): an exclusive `flock` on a directory, held while importing, waited for a bounded time."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

import pytest

from pivot.execute import worker


def _entered_while(gate: str, held: bool) -> bool:
    """Whether another holder's gate is entered within 0.3 s while `gate` is (or is not)
    held by a descriptor of this test."""
    holder = os.open(gate, os.O_RDONLY)
    if held:
        fcntl.flock(holder, fcntl.LOCK_EX)
    entered = threading.Event()

    def enter() -> None:
        with worker._one_at_a_time(gate):
            entered.set()

    thread = threading.Thread(target=enter, daemon=True)
    thread.start()
    try:
        return entered.wait(0.3)
    finally:
        os.close(holder)  # releases the lock: the waiting thread enters
        thread.join(5)
        assert entered.is_set()


def test_a_held_gate_is_waited_for(tmp_path: Path) -> None:
    assert not _entered_while(str(tmp_path), held=True)


def test_a_free_gate_is_entered_at_once(tmp_path: Path) -> None:
    assert _entered_while(str(tmp_path), held=False)


def test_no_gate_or_a_missing_one_orders_nothing(tmp_path: Path) -> None:
    for gate in ("", str(tmp_path / "missing")):
        with worker._one_at_a_time(gate):
            pass


def test_a_gate_held_too_long_is_passed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A gate someone keeps (a process an import forked holds the lock) orders nothing after
    `GATE_SECONDS`: the worker imports anyway."""
    monkeypatch.setattr(worker, "GATE_SECONDS", 0.2)
    holder = os.open(tmp_path, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        started = time.monotonic()
        with worker._one_at_a_time(str(tmp_path)):
            waited = time.monotonic() - started
    finally:
        os.close(holder)
    assert 0.2 <= waited < 2
