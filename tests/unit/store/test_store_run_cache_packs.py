"""The run cache's packs, through real files: entries appended by one process are found by the
next; a torn tail or a damaged record costs only that record; the index in the state db is a
cache (rebuilt when gone, caught up when stale); old loose entries still count; two writers at
once each get their own pack; `remove` and `repair` rewrite packs without losing good records."""

from __future__ import annotations

import multiprocessing
import shutil
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from pivot.store import hashing
from pivot.store.lock import OutEntry
from pivot.store.run_cache import (
    KEYS_AFTER,
    RunCache,
    object_key,
    outs_to_bytes,
    split_object_key,
)
from pivot.store.state import StateDB


def _key(number: int) -> str:
    return hashing.hash_bytes(f"run {number}".encode())


def _outs(number: int) -> tuple[OutEntry, ...]:
    return (OutEntry(f"out/{number}.txt", hashing.hash_bytes(b"%d" % number), True, False),)


def _save(cache_root: Path, numbers: range, *, db: Path | None = None) -> list[str]:
    """Save the runs `numbers` in one 'process' (a RunCache and a StateDB opened and closed)."""
    with StateDB(db or cache_root.parent / "state.db") as state:
        runs = RunCache(cache_root, state)
        try:
            return [runs.save(_key(n), _outs(n), {}) for n in numbers]
        finally:
            runs.close()


def _found(cache_root: Path, numbers: range, *, db: Path | None = None) -> list[int]:
    """Which of the runs `numbers` a fresh process finds, each with the right outputs."""
    with StateDB(db or cache_root.parent / "state.db") as state:
        runs = RunCache(cache_root, state)
        try:
            found = []
            for n in numbers:
                hits = runs.lookup(_key(n))
                if hits:
                    assert [outs for _key, outs in hits] == [_outs(n)]
                    found.append(n)
            return found
        finally:
            runs.close()


def _packs(cache_root: Path) -> list[Path]:
    return sorted((cache_root / "runs" / "packs").glob("*.pack"))


def _files(cache_root: Path) -> list[str]:
    return sorted(
        p.relative_to(cache_root).as_posix() for p in cache_root.rglob("*") if p.is_file()
    )


@pytest.fixture
def cache_root(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def test_runs_append_to_one_pack_that_later_processes_read(cache_root: Path) -> None:
    keys = _save(cache_root, range(40))
    [pack] = _packs(cache_root)
    assert _files(cache_root) == [pack.relative_to(cache_root).as_posix()]  # no file per entry
    assert keys == [
        object_key(_key(n), hashing.hash_bytes(outs_to_bytes(_outs(n), {}))) for n in range(40)
    ]
    assert _found(cache_root, range(41)) == list(range(40))

    size = pack.stat().st_size
    _save(cache_root, range(40, 50))  # the next run appends to the same pack
    _save(cache_root, range(0, 5))  # entries already here are not appended again
    assert _packs(cache_root) == [pack] and pack.stat().st_size > size
    assert _found(cache_root, range(50)) == list(range(50))
    assert sum(1 for _ in RunCache(cache_root).entries()) == 50


def test_a_torn_tail_is_ignored_and_the_next_writer_starts_a_new_pack(cache_root: Path) -> None:
    _save(cache_root, range(3))
    [pack] = _packs(cache_root)
    whole = pack.read_bytes()
    last = whole.rindex(b"PVRUN1 ")
    for cut in (last + 3, last + 80, last + (len(whole) - last) // 2 + 60, len(whole) - 1):
        pack.write_bytes(whole[:cut])  # a crash mid-append; the state db indexed all three
        assert _found(cache_root, range(3)) == [0, 1]
    _save(cache_root, range(4))
    packs = _packs(cache_root)
    assert len(packs) == 2 and pack.read_bytes() == whole[: len(whole) - 1]  # never appended to
    assert _found(cache_root, range(4)) == [0, 1, 2, 3]


def test_a_damaged_record_costs_only_itself_and_repair_moves_it_aside(cache_root: Path) -> None:
    _save(cache_root, range(4))
    [pack] = _packs(cache_root)
    data = bytearray(pack.read_bytes())
    records = [i for i in range(len(data)) if data.startswith(b"PVRUN1 ", i)]
    data[records[1] + 30] ^= 1  # record 1's header
    data[records[2] + 200] ^= 1  # record 2's entry bytes (the header is ~180 bytes)
    pack.write_bytes(bytes(data))
    assert _found(cache_root, range(4)) == [0, 1, 3]  # the index finds 1, whose bytes are right
    shutil.copy(cache_root.parent / "state.db", cache_root.parent / "stale.db")
    for path in cache_root.parent.glob("state.db*"):
        path.unlink()
    assert _found(cache_root, range(4)) == [0, 3]  # read from the pack, not from the index

    good, damages = RunCache(cache_root).repair()
    assert good == 2
    [damage] = damages
    assert (
        damage.where == f"runs/packs/{pack.name}" and "are no whole, intact record" in damage.detail
    )
    assert damage.moved_to.parent == cache_root / "quarantine"
    assert damage.moved_to.read_bytes() == bytes(data[records[1] : records[3]])
    assert not pack.exists() and len(_packs(cache_root)) == 1
    assert _found(cache_root, range(4)) == [0, 3]
    assert _found(cache_root, range(4), db=cache_root.parent / "stale.db") == [0, 3]
    assert RunCache(cache_root).repair() == (2, [])


def test_the_index_is_rebuilt_when_the_state_db_is_gone_and_caught_up_when_stale(
    cache_root: Path,
) -> None:
    db = cache_root.parent / "state.db"
    _save(cache_root, range(5))
    shutil.copy(db, cache_root.parent / "old.db")
    _save(cache_root, range(5, 10))
    shutil.copy(cache_root.parent / "old.db", db)  # an index that lags five entries behind
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    assert _found(cache_root, range(10)) == list(range(10))
    with StateDB(db) as state:
        assert state.run_packs() == {p.name: p.stat().st_size for p in _packs(cache_root)}

    for path in cache_root.parent.glob("state.db*"):
        path.unlink()
    assert _found(cache_root, range(10)) == list(range(10))
    with StateDB(db) as state:  # the rebuilt index is kept
        assert len(state.run_records(_key(7))) == 1

    runs = RunCache(cache_root)  # no state db at all: the packs are read into memory
    assert all(runs.lookup(_key(n)) for n in range(10))
    runs.close()


def test_old_loose_entries_are_read_kept_and_checked(cache_root: Path) -> None:
    data = outs_to_bytes(_outs(1), {})
    loose = cache_root / object_key(_key(1), hashing.hash_bytes(data))
    loose.parent.mkdir(parents=True)
    loose.write_bytes(data)
    assert _found(cache_root, range(3)) == [1]
    _save(cache_root, range(1, 2))  # already here (loose): nothing appended
    assert not (cache_root / "runs" / "packs").exists()
    _save(cache_root, range(3))
    assert _found(cache_root, range(3)) == [0, 1, 2]
    assert sorted(key for key, _ in RunCache(cache_root).entries()) == sorted(
        object_key(_key(n), hashing.hash_bytes(outs_to_bytes(_outs(n), {}))) for n in range(3)
    )

    loose.chmod(0o644)
    loose.write_bytes(data.replace(b"out/1", b"out/9"))  # no longer its hash
    assert _found(cache_root, range(3)) == [0, 2]
    good, [damage] = RunCache(cache_root).repair()
    assert good == 2 and damage.where == loose.relative_to(cache_root).as_posix()
    assert not loose.exists() and b"out/9" in damage.moved_to.read_bytes()


def test_remove_rewrites_the_packs_holding_removed_entries(cache_root: Path) -> None:
    keys = _save(cache_root, range(6))
    _save(cache_root, range(6, 8))
    runs = RunCache(cache_root)
    runs.remove([keys[1], keys[4], object_key(_key(7), split_object_key(keys[0])[1])])
    runs.close()
    assert _found(cache_root, range(8)) == [0, 2, 3, 5, 6, 7]
    assert len(_packs(cache_root)) == 1


def test_two_writers_at_once_each_append_to_their_own_pack(cache_root: Path) -> None:
    """The project lock keeps two runs of one project apart; the packs do not rely on it."""
    with StateDB(cache_root.parent / "state.db") as state:
        first, second = RunCache(cache_root, state), RunCache(cache_root, state)
        for n in range(0, 20, 2):
            first.save(_key(n), _outs(n), {})
            second.save(_key(n + 1), _outs(n + 1), {})
        first.close()
        second.close()
    assert len(_packs(cache_root)) == 2
    assert _found(cache_root, range(20)) == list(range(20))


def _append_from_a_process(cache_root: str, start: int, ready: Barrier) -> None:
    ready.wait()
    _save(Path(cache_root), range(start, start + 150))


def test_two_processes_appending_at_once_lose_nothing(cache_root: Path) -> None:
    _save(cache_root, range(0, 1))  # a pack both would like to append to
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(2)
    workers = [
        context.Process(target=_append_from_a_process, args=(str(cache_root), s, ready))
        for s in (1, 151)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert _found(cache_root, range(302)) == list(range(301))
    assert RunCache(cache_root).repair() == (301, [])


def test_many_saves_append_only_the_entries_not_here_yet(cache_root: Path) -> None:
    """A process saving many runs reads the index's run keys once (`KEYS_AFTER`), then asks it
    only about runs it holds: entries already indexed, or saved earlier by this process (before
    or after its last flush), are still not appended again."""
    count = 2 * KEYS_AFTER
    _save(cache_root, range(0, count, 2))  # the even runs are indexed already
    [pack] = _packs(cache_root)
    with StateDB(cache_root.parent / "state.db") as state:
        runs = RunCache(cache_root, state)
        saved = [runs.save(_key(n), _outs(n), {}) for n in range(count)]
        size = pack.stat().st_size
        runs.flush()
        again = [runs.save(_key(n), _outs(n), {}) for n in range(count)]
        runs.close()
    assert again == saved
    assert pack.stat().st_size == size  # nothing appended twice, nothing after the flush
    entries = [key for key, _ in RunCache(cache_root).entries()]
    assert sorted(entries) == sorted(saved) and len(entries) == count
    records = sum(pack.read_bytes().count(b"PVRUN1 ") for pack in _packs(cache_root))
    assert records == count


def test_records_indexed_with_the_next_flush_are_found_before_and_after_it(
    cache_root: Path,
) -> None:
    """A run's records go to the state db's buffer and are written with its next flush (the end
    of a run): a run cache reading the index before then finds them there (without scanning the
    pack again), and a later process finds them in the db."""
    with StateDB(cache_root.parent / "state.db") as state:
        runs = RunCache(cache_root, state)
        saved = [runs.save(_key(n), _outs(n), {}) for n in range(3)]
        runs.flush()
        other = RunCache(cache_root, state)
        assert [outs for _key, outs in other.lookup(_key(1))] == [_outs(1)]
        other.close()
        state.flush()
        runs.close()
    assert _found(cache_root, range(3)) == [0, 1, 2]
    assert sorted(key for key, _ in RunCache(cache_root).entries()) == sorted(saved)


class _CountingState(StateDB):
    """The state db, counting the run-cache index queries a save could make."""

    asked = 0

    def run_keys(self) -> set[str]:
        self.asked += 1
        return super().run_keys()

    def run_records(self, key: str) -> list[tuple[str, str, str, int, int, int]]:
        self.asked += 1
        return super().run_records(key)


def test_runs_looked_up_and_missing_are_saved_without_asking_the_index(cache_root: Path) -> None:
    """A plan looks up each stage it runs; saving those runs afterwards asks the index nothing
    (it had no record of them), and once indexed they are found, and not appended again."""
    count = 2 * KEYS_AFTER
    _save(cache_root, range(count, count + 3))  # a pack and an index exist
    with _CountingState(cache_root.parent / "state.db") as state:
        runs = RunCache(cache_root, state)
        assert all(runs.lookup(_key(n)) == [] for n in range(count))
        asked = state.asked
        saved = [runs.save(_key(n), _outs(n), {}) for n in range(count)]
        assert state.asked == asked
        runs.flush()
        assert [outs for _key, outs in runs.lookup(_key(5))] == [_outs(5)]
        assert [runs.save(_key(n), _outs(n), {}) for n in range(count)] == saved
        runs.close()
    records = sum(pack.read_bytes().count(b"PVRUN1 ") for pack in _packs(cache_root))
    assert records == count + 3
    assert _found(cache_root, range(count)) == list(range(count))
