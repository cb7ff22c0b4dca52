"""Stopping the pool at Ctrl-C: a pool interrupted while loky was starting its manager thread
(its `join` refuses a thread not yet started) still stops cleanly; other errors still show."""

from __future__ import annotations

import pytest

from pivot.execute.executors import PoolExecutor


class _Pool:
    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls: list[tuple[bool, bool]] = []

    def shutdown(self, wait: bool = True, kill_workers: bool = False) -> None:
        self.calls.append((wait, kill_workers))
        raise self.error


def _executor(pool: _Pool) -> PoolExecutor:
    executor = PoolExecutor.__new__(PoolExecutor)  # no real pool: only shutdown is exercised
    executor._pool = pool
    return executor


def test_a_pool_interrupted_while_its_manager_thread_started_stops_cleanly() -> None:
    pool = _Pool(RuntimeError("cannot join thread before it is started"))

    _executor(pool).shutdown(kill=True)

    assert pool.calls == [(True, True)]


def test_another_runtime_error_of_the_pool_shows() -> None:
    pool = _Pool(RuntimeError("something else"))

    with pytest.raises(RuntimeError, match="something else"):
        _executor(pool).shutdown(kill=True)


def test_without_kill_the_warm_pool_is_left_running() -> None:
    pool = _Pool(RuntimeError("never called"))

    _executor(pool).shutdown()

    assert pool.calls == []
