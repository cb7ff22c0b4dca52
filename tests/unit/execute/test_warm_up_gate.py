"""Workers warming up while the main process plans import one at a time (`worker.warm_up`'s
gate): an exclusive `flock` on a directory, held while importing."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

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
