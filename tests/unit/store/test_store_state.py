"""The state db remembers hashes by (inode, size, mtime_ns), batches writes, and never crashes Pivot."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from pivot.store import hashing
from pivot.store.state import FileHasher, StateDB, StateDBWarning

OLD_MTIME_NS = 1_600_000_000_123_456_789


def _write(path: Path, data: bytes, mtime_ns: int = OLD_MTIME_NS) -> os.stat_result:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path.stat()


def _rewrite_keeping_stat(path: Path, data: bytes) -> None:
    """Change the content in place (same inode) while keeping size and mtime_ns."""
    before = path.stat()
    assert len(data) == before.st_size
    with open(path, "r+b") as handle:
        handle.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )


def test_record_then_lookup_survives_reopen(tmp_path: Path) -> None:
    db_path = tmp_path / ".pivot" / "state.db"
    target = tmp_path / "data.csv"
    st = _write(target, b"a,b\n")
    with StateDB(db_path) as state:
        assert state.lookup(target, st) is None
        state.record(target, st, "1" * 64)
        assert state.lookup(target, st) == "1" * 64
    with StateDB(db_path) as state:
        assert state.lookup(target, st) == "1" * 64
        assert state.lookup(Path(os.path.relpath(target)), st) == "1" * 64


def test_preloaded_records_answer_lookups_and_stay_current(tmp_path: Path) -> None:
    """`preload` reads many records ahead; what is recorded after it wins, unknown paths miss,
    and a changed file still misses."""
    db_path = tmp_path / "state.db"
    files = [tmp_path / f"f{index}" for index in range(1200)]  # more than one query's worth
    stats = [_write(path, str(index).encode()) for index, path in enumerate(files)]
    with StateDB(db_path) as state:
        for index, (path, st) in enumerate(zip(files, stats)):
            state.record(path, st, f"{index:064x}")
    unknown = tmp_path / "unknown"
    unknown_stat = _write(unknown, b"?")
    with StateDB(db_path) as state:
        state.preload([*files, str(unknown)])
        assert state.lookup(files[7], stats[7]) == f"{7:064x}"
        assert state.lookup(str(files[1100]), stats[1100]) == f"{1100:064x}"
        assert state.lookup(unknown, unknown_stat) is None
        state.record(files[3], stats[3], "e" * 64)
        state.flush()
        assert state.lookup(files[3], stats[3]) == "e" * 64
        assert state.lookup(files[5], _write(files[5], b"changed")) is None


def test_lookup_misses_when_size_mtime_or_inode_changes(tmp_path: Path) -> None:
    target = tmp_path / "f"
    st = _write(target, b"1234")
    with StateDB(tmp_path / "state.db") as state:
        state.record(target, st, "2" * 64)
        _write(target, b"12345")
        assert state.lookup(target, target.stat()) is None
        _write(target, b"1234", mtime_ns=OLD_MTIME_NS + 1)
        assert state.lookup(target, target.stat()) is None
        replacement = tmp_path / "g"
        _write(replacement, b"1234")
        os.replace(replacement, target)  # same size and mtime, new inode
        assert target.stat().st_ino != st.st_ino
        assert state.lookup(target, target.stat()) is None


def test_database_is_wal_with_tables(tmp_path: Path) -> None:
    db_path = tmp_path / "state.db"
    with StateDB(db_path):
        pass
    connection = sqlite3.connect(db_path)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        assert {"file_hashes_v1", "values_v1"} <= tables
    finally:
        connection.close()


def test_writes_are_batched_until_flush(tmp_path: Path) -> None:
    db_path = tmp_path / "state.db"
    target = tmp_path / "f"
    st = _write(target, b"x")
    with StateDB(db_path) as writer, StateDB(db_path) as reader:
        writer.record(target, st, "3" * 64)
        writer.set_value("ns", "k", b"v")
        assert reader.lookup(target, st) is None
        assert reader.get_value("ns", "k") is None
        writer.flush()
        assert reader.lookup(target, st) == "3" * 64
        assert reader.get_value("ns", "k") == b"v"


def test_file_hasher_does_not_reread_an_unchanged_file(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    _write(target, b"original")
    db_path = tmp_path / "state.db"
    with StateDB(db_path) as state:
        first = FileHasher(state).hash_file(target)
    assert first == hashing.hash_bytes(b"original")
    _rewrite_keeping_stat(target, b"CHANGED!")
    with StateDB(db_path) as state:
        hasher = FileHasher(state)
        # The stale hash proves the file was not read again.
        assert hasher.hash_file(target) == first
        assert hasher.hash_files([target]) == {target: first}
    assert FileHasher(None).hash_file(target) == hashing.hash_bytes(b"CHANGED!")


def test_file_hasher_rehashes_a_changed_file(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    _write(target, b"one")
    with StateDB(tmp_path / "state.db") as state:
        hasher = FileHasher(state)
        assert hasher.hash_file(target) == hashing.hash_bytes(b"one")
        _write(target, b"two!", mtime_ns=OLD_MTIME_NS + 10)
        assert hasher.hash_file(target) == hashing.hash_bytes(b"two!")


def test_hash_directory_uses_state_per_file(tmp_path: Path) -> None:
    root = tmp_path / "out"
    for index in range(30):
        _write(root / f"sub{index % 3}" / f"f{index:02d}.txt", f"content {index:02d}".encode())
    (root / ".f.txt.0123456789abcdef.tmp").write_text("in progress")
    db_path = tmp_path / "state.db"
    with StateDB(db_path) as state:
        digest, manifest = FileHasher(state, jobs=2).hash_directory(root)
    assert len(manifest) == 30
    assert digest == hashing.manifest_hash(manifest)
    assert manifest.as_dict()["sub1/f01.txt"] == hashing.hash_bytes(b"content 01")

    _rewrite_keeping_stat(root / "sub1" / "f01.txt", b"CHANGED 01")
    _write(root / "sub2" / "f02.txt", b"new content")
    with StateDB(db_path) as state:
        digest2, manifest2 = FileHasher(state).hash_directory(root)
    assert manifest2.as_dict()["sub1/f01.txt"] == hashing.hash_bytes(b"content 01")
    assert manifest2.as_dict()["sub2/f02.txt"] == hashing.hash_bytes(b"new content")
    assert digest2 != digest


def test_key_value_table(tmp_path: Path) -> None:
    db_path = tmp_path / "state.db"
    keys = [f"module{index}.py" for index in range(1200)]
    with StateDB(db_path) as state:
        assert state.get_value("code", "x") is None
        for index, key in enumerate(keys):
            state.set_value("code", key, f"manifest {index}".encode())
        state.set_value("other", "module0.py", b"other namespace")
        assert state.get_value("code", "module7.py") == b"manifest 7"
    with StateDB(db_path) as state:
        found = state.get_values("code", [*keys, "missing"])
        assert len(found) == 1200
        assert found["module1100.py"] == b"manifest 1100"
        assert state.get_value("other", "module0.py") == b"other namespace"
        state.set_value("code", "module0.py", b"updated")
        assert state.get_values("code", ["module0.py", "module1.py"]) == {
            "module0.py": b"updated",
            "module1.py": b"manifest 1",
        }
        assert state.get_values("code", []) == {}


def test_two_handles_write_the_same_db(tmp_path: Path) -> None:
    db_path = tmp_path / "state.db"
    with StateDB(db_path) as first, StateDB(db_path) as second:
        first.set_value("ns", "a", b"1")
        second.set_value("ns", "b", b"2")
        first.flush()
        second.flush()
    with StateDB(db_path) as state:
        assert state.get_values("ns", ["a", "b"]) == {"a": b"1", "b": b"2"}


def test_state_opens_lazily_and_reopens_after_close(tmp_path: Path) -> None:
    db_path = tmp_path / "state.db"
    state = StateDB(db_path)
    state.set_value("ns", "k", b"v")
    state.close()
    assert state.get_value("ns", "k") == b"v"
    state.close()


def test_corrupt_state_db_is_moved_aside_with_a_warning(tmp_path: Path) -> None:
    db_path = tmp_path / "state.db"
    db_path.write_bytes(b"this is not an sqlite database at all" * 100)
    target = tmp_path / "f"
    st = _write(target, b"x")
    with pytest.warns(StateDBWarning, match="unreadable"), StateDB(db_path) as state:
        assert state.lookup(target, st) is None
        state.record(target, st, "4" * 64)
    assert (tmp_path / "state.db.corrupt").exists()
    with StateDB(db_path) as state:
        assert state.lookup(target, st) == "4" * 64


def test_state_db_path_that_is_a_directory_does_not_crash(tmp_path: Path) -> None:
    db_path = tmp_path / "state.db"
    (db_path / "junk").mkdir(parents=True)
    target = tmp_path / "f"
    _write(target, b"data")
    with pytest.warns(StateDBWarning), StateDB(db_path) as state:
        assert FileHasher(state).hash_file(target) == hashing.hash_bytes(b"data")


def test_unusable_state_db_disables_itself_and_pivot_carries_on(tmp_path: Path) -> None:
    locked_dir = tmp_path / "ro"
    locked_dir.mkdir()
    db_path = locked_dir / "state.db"
    db_path.write_bytes(b"garbage" * 200)
    (locked_dir / "state.db.corrupt").mkdir()  # moving aside fails: rename onto a directory
    (locked_dir / "state.db.corrupt" / "keep").write_text("x")
    target = tmp_path / "f"
    st = _write(target, b"data")
    with pytest.warns(StateDBWarning, match="cannot be used"), StateDB(db_path) as state:
        assert state.lookup(target, st) is None
        state.record(target, st, "5" * 64)
        state.set_value("ns", "k", b"v")
        assert state.lookup(target, st) is None
        assert state.get_value("ns", "k") is None
        assert FileHasher(state).hash_file(target) == hashing.hash_bytes(b"data")


_WRITER = """
import sys
from pathlib import Path
from typing import Any
from pivot.store.state import StateDB
db_path, name = Path(sys.argv[1]), sys.argv[2]
for round_number in range(20):
    with StateDB(db_path) as state:
        for index in range(50):
            state.set_value(name, f"{round_number}-{index}", b"x")
"""


def test_several_processes_write_concurrently(tmp_path: Path) -> None:
    import subprocess
    import sys

    db_path = tmp_path / "state.db"
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(db_path), name])
        for name in ("first", "second")
    ]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    keys = [f"{round_number}-{index}" for round_number in range(20) for index in range(50)]
    with StateDB(db_path) as state:
        assert len(state.get_values("first", keys)) == 1000
        assert len(state.get_values("second", keys)) == 1000


def test_a_failed_flush_warns_and_pivot_carries_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flush that finds the db damaged (a write fails) moves it aside and switches the cache
    off for the rest of the command: the command goes on hashing files itself."""
    db_path = tmp_path / "state.db"
    target = tmp_path / "f"
    st = _write(target, b"x")

    def failing(connection: sqlite3.Connection, batch: Any) -> None:
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(StateDB, "_write", staticmethod(failing))
    with StateDB(db_path) as state:
        state.record(target, st, "8" * 64)
        with pytest.warns(StateDBWarning, match="unreadable"):
            state.flush()
        assert (tmp_path / "state.db.corrupt").exists()
        assert FileHasher(state).hash_file(target) == hashing.hash_bytes(b"x")  # switched off
    monkeypatch.undo()
    with StateDB(db_path) as state:  # a fresh db: the records not written were only a cache
        assert state.lookup(target, st) is None
        state.record(target, st, "9" * 64)
    with StateDB(db_path) as state:
        assert state.lookup(target, st) == "9" * 64
