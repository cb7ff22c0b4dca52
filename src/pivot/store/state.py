"""The per-machine state db (`.pivot/state.db`, sqlite in WAL mode) and the hasher that uses it.

It is only a cache: file hashes keyed by path and (inode, size, mtime_ns), a key-value table
other layers use (e.g. cached code manifests), and the index of the run cache's packs
(`store.run_cache.RunIndex`: records by run key, and how far each pack is indexed). A corrupt
or unusable db never stops Pivot: it is moved aside or switched off with a `StateDBWarning`,
and files are re-hashed (run-cache packs are read again).
Imports nothing of Pivot's but the store itself.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

from pivot.store import hashing
from pivot.store.hashing import DirectoryManifest

__all__ = ["FileHasher", "StateDB", "StateDBWarning"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS file_hashes_v1 (path TEXT PRIMARY KEY, inode INTEGER NOT NULL,"
    " size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, hash TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS values_v1 (namespace TEXT NOT NULL, key TEXT NOT NULL,"
    " value BLOB NOT NULL, PRIMARY KEY (namespace, key)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS run_packs_v1 (pack TEXT PRIMARY KEY, indexed INTEGER NOT NULL)"
    " WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS run_records_v1 (key TEXT NOT NULL, entry TEXT NOT NULL,"
    " pack TEXT NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL,"
    " written INTEGER NOT NULL, PRIMARY KEY (key, pack, offset)) WITHOUT ROWID",
)
_FLUSH_AT = 20_000
_KEYS_PER_QUERY = 500

_FileRow = tuple[int, int, int, str]
_RunRow = tuple[str, str, str, int, int, int]  # key, entry, pack, offset, length, written
_Runs = dict[str, dict[tuple[str, int], _RunRow]]  # run key -> (pack, offset) -> its record


class StateDBWarning(UserWarning):
    """The state db could not be used as is; Pivot carries on without (part of) its cache."""


class StateDB:
    """sqlite cache of file hashes and small values; writes are buffered until `flush`/`close`.

    Use as a context manager. Safe for several processes (WAL, busy timeout) and threads.
    """

    def __init__(self, path: Path, *, busy_timeout: float = 10.0) -> None:
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._connection: sqlite3.Connection | None = None
        self._disabled = False
        self._lock = threading.RLock()
        self._pending_files: dict[str, _FileRow] = {}
        self._pending_values: dict[tuple[str, str], bytes] = {}
        self._pending_runs: _Runs = {}  # run-cache index records (`add_runs`)
        self._pending_ends: dict[str, int] = {}
        self._preloaded: dict[str, _FileRow | None] = {}  # rows read ahead by `preload`

    # --- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> StateDB:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> StateDB:
        """Connect (creating the db if needed); a corrupt db is moved aside and recreated."""
        with self._lock:
            if self._connection is None and not self._disabled:
                self._connection = self._connect_or_recover()
            return self

    def close(self) -> None:
        """Write buffered records and close the connection."""
        with self._lock:
            self.flush()
            if self._connection is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._connection.close()
            self._connection = None

    def flush(self) -> None:
        """Write buffered records in one short transaction."""
        with self._lock:
            files, values = self._pending_files, self._pending_values
            runs, ends = self._pending_runs, self._pending_ends
            if not (files or values or runs or ends):
                return
            connection = self._connection_or_none()
            self._pending_files, self._pending_values = {}, {}
            self._pending_runs, self._pending_ends = {}, {}
            if connection is None:
                return
            batch = _Batch(
                [(path, *row) for path, row in files.items()],
                [(namespace, key, value) for (namespace, key), value in values.items()],
                [record for records in runs.values() for record in records.values()],
                list(ends.items()),
            )
            with self._guard():
                self._write(connection, batch)

    # --- file hashes --------------------------------------------------------------------------

    def preload(self, paths: Iterable[Path | str]) -> None:
        """Read the records of many files ahead, one query per 500 paths, so that looking them
        up later costs a dict access instead of a query each (planning N stages)."""
        with self._lock:
            keys = [
                key for key in dict.fromkeys(map(_path_key, paths)) if key not in self._preloaded
            ]
            connection = self._connection_or_none()
            if connection is None:
                return
            found: dict[str, _FileRow] = {}
            with self._guard():
                for start in range(0, len(keys), _KEYS_PER_QUERY):
                    chunk = keys[start : start + _KEYS_PER_QUERY]
                    query = (
                        "SELECT path, inode, size, mtime_ns, hash FROM file_hashes_v1 "
                        f"WHERE path IN ({','.join('?' * len(chunk))})"
                    )
                    for path, inode, size, mtime_ns, digest in connection.execute(query, chunk):
                        found[str(path)] = (int(inode), int(size), int(mtime_ns), str(digest))
            pending = self._pending_files  # newer than the db's
            self._preloaded.update((key, pending.get(key) or found.get(key)) for key in keys)

    def lookup(self, path: Path | str, st: os.stat_result) -> str | None:
        """The recorded hash of `path` if its (inode, size, mtime_ns) still match `st`."""
        key = _path_key(path)
        with self._lock:
            row = self._pending_files.get(key)
            if row is None:
                row = self._preloaded[key] if key in self._preloaded else self._select_file(key)
        if row is None or row[:3] != (st.st_ino, st.st_size, st.st_mtime_ns):
            return None
        return row[3]

    def record(self, path: Path | str, st: os.stat_result, digest: str) -> None:
        """Remember that `path` with the (inode, size, mtime_ns) of `st` hashes to `digest`."""
        with self._lock:
            if self._disabled:
                return
            key = _path_key(path)
            row = (st.st_ino, st.st_size, st.st_mtime_ns, digest)
            self._pending_files[key] = row
            if key in self._preloaded:
                self._preloaded[key] = row
            self._flush_if_large()

    # --- key-value table ----------------------------------------------------------------------

    def get_value(self, namespace: str, key: str) -> bytes | None:
        """The value stored under (namespace, key), or None."""
        return self.get_values(namespace, [key]).get(key)

    def get_values(self, namespace: str, keys: Iterable[str]) -> dict[str, bytes]:
        """The stored values of those `keys` that have one (one query per 500 keys)."""
        wanted = list(dict.fromkeys(keys))
        with self._lock:
            found = self._select_values(namespace, wanted)
            for key in wanted:
                pending = self._pending_values.get((namespace, key))
                if pending is not None:
                    found[key] = pending
        return found

    def set_value(self, namespace: str, key: str, value: bytes) -> None:
        """Store `value` under (namespace, key) (written on the next flush)."""
        with self._lock:
            if self._disabled:
                return
            self._pending_values[(namespace, key)] = bytes(value)
            self._flush_if_large()

    # --- run-cache index (see `store.run_cache.RunIndex`) ------------------------------------

    def run_packs(self) -> dict[str, int] | None:
        """Run-cache pack name -> how many of its bytes are indexed; None when the db cannot
        be used."""
        with self._lock:
            connection = self._connection_or_none()
            if connection is not None:
                with self._guard():
                    rows = connection.execute("SELECT pack, indexed FROM run_packs_v1")
                    packs = {str(pack): int(indexed) for pack, indexed in rows}
                    for pack, end in self._pending_ends.items():
                        packs[pack] = max(end, packs.get(pack, 0))
                    return packs
        return None

    def run_records(self, key: str) -> list[tuple[str, str, str, int, int, int]]:
        """(key, entry, pack, offset, length, written) of the indexed records of run `key`."""
        with self._lock:
            connection = self._connection_or_none()
            if connection is None:
                return []
            with self._guard():
                query = (
                    "SELECT key, entry, pack, offset, length, written FROM run_records_v1 "
                    "WHERE key = ?"
                )
                found = [
                    (str(k), str(e), str(p), int(o), int(n), int(w))
                    for k, e, p, o, n, w in connection.execute(query, (key,))
                ]
            added = self._pending_runs.get(key, {})
            if added:
                known = {(record[2], record[3]) for record in found}
                found += [record for place, record in added.items() if place not in known]
            return found
        return []

    def run_keys(self) -> set[str]:
        """The run keys with indexed records."""
        with self._lock:
            connection = self._connection_or_none()
            if connection is not None:
                with self._guard():
                    rows = connection.execute("SELECT DISTINCT key FROM run_records_v1")
                    return {str(key) for (key,) in rows} | set(self._pending_runs)
        return set()

    def add_runs(self, records: Iterable[Sequence[Any]], ends: Mapping[str, int]) -> None:
        """Add `records` ((key, entry, pack, offset, length, written)) to the run-cache index
        and raise how far each pack in `ends` is indexed, with the next flush (as file hashes
        are written); look-ups see them at once."""
        with self._lock:
            if self._disabled:
                return
            for key, entry, pack, offset, length, written in records:
                record = (key, entry, pack, offset, length, written)
                self._pending_runs.setdefault(key, {})[(pack, offset)] = record
            for pack, end in ends.items():
                self._pending_ends[pack] = max(end, self._pending_ends.get(pack, 0))
            self._flush_if_large()

    def index_runs(
        self,
        records: Sequence[tuple[str, str, str, int, int, int]],
        ends: Mapping[str, int],
        forget: Collection[str],
    ) -> None:
        """Drop the packs `forget`, add `records` ((key, entry, pack, offset, length, written)),
        and raise how far each pack in `ends` is indexed, in one transaction."""
        with self._lock:
            for pack in forget:  # (what was added before is dropped with it)
                self._pending_ends.pop(pack, None)
                for added in self._pending_runs.values():
                    for place in [place for place in added if place[0] == pack]:
                        del added[place]
            connection = self._connection_or_none()
            if connection is None:
                return
            with self._guard():
                connection.execute("BEGIN IMMEDIATE")
                try:
                    for pack in forget:
                        connection.execute("DELETE FROM run_records_v1 WHERE pack = ?", (pack,))
                        connection.execute("DELETE FROM run_packs_v1 WHERE pack = ?", (pack,))
                    connection.executemany(_ADD_RUN, records)
                    connection.executemany(_RAISE_END, list(ends.items()))
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
                connection.execute("COMMIT")

    # --- internals ----------------------------------------------------------------------------

    def _flush_if_large(self) -> None:
        pending = len(self._pending_files) + len(self._pending_values) + len(self._pending_runs)
        if pending >= _FLUSH_AT:
            self.flush()

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(
            self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            self._use_wal(connection)
            connection.execute("PRAGMA synchronous=NORMAL")
            if not _has_schema(connection):
                connection.execute("BEGIN IMMEDIATE")  # waits for the lock (busy timeout)
                for statement in _SCHEMA:
                    connection.execute(statement)
                connection.execute("COMMIT")
        except BaseException:
            connection.close()
            raise
        return connection

    def _use_wal(self, connection: sqlite3.Connection) -> None:
        """Switch the db to WAL once. sqlite answers a switch made while another process opens
        the db with "database is locked" at once, without its busy timeout: retried until then."""
        deadline = time.monotonic() + self._busy_timeout
        while connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            try:
                connection.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError as error:
                if not _is_busy(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _connect_or_recover(self) -> sqlite3.Connection | None:
        try:
            return self._connect()
        except sqlite3.Error as error:
            if _is_busy(error):
                self._disable(f"it is busy ({error})")
                return None
            problem = error
        moved_to = self._move_aside()
        try:
            connection = self._connect()
        except sqlite3.Error as error:
            self._disable(f"it is unreadable ({problem}) and could not be recreated ({error})")
            return None
        _warn(
            f"state db '{self.path}' was unreadable ({problem}); moved it to '{moved_to}' and "
            "started a fresh one. It only caches file hashes: files are re-hashed once."
        )
        return connection

    def _move_aside(self) -> Path:
        aside = self.path.with_name(self.path.name + ".corrupt")
        with contextlib.suppress(OSError):
            os.replace(self.path, aside)
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.unlink(f"{self.path}{suffix}")
        return aside

    def _disable(self, reason: str) -> None:
        self._disabled = True
        self._preloaded.clear()
        self._pending_files.clear()
        self._pending_values.clear()
        self._pending_runs.clear()
        self._pending_ends.clear()
        _warn(
            f"state db '{self.path}' cannot be used: {reason}. Carrying on without it (files "
            f"are re-hashed); if this persists, delete '{self.path}'."
        )

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn a sqlite error during use into a warning; a corrupt db is moved aside."""
        try:
            yield
        except sqlite3.Error as error:
            if self._connection is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._connection.close()
                self._connection = None
            if _is_busy(error):
                self._disable(f"it stayed busy ({error})")
            else:
                moved_to = self._move_aside()
                self._disable(f"it is unreadable ({error}); moved it to '{moved_to}'")

    def _select_file(self, key: str) -> _FileRow | None:
        connection = self._connection_or_none()
        row = None
        if connection is not None:
            with self._guard():
                row = connection.execute(
                    "SELECT inode, size, mtime_ns, hash FROM file_hashes_v1 WHERE path = ?",
                    (key,),
                ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]), int(row[2]), str(row[3]))

    def _select_values(self, namespace: str, keys: list[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        connection = self._connection_or_none()
        if connection is None:
            return found
        with self._guard():
            for start in range(0, len(keys), _KEYS_PER_QUERY):
                chunk = keys[start : start + _KEYS_PER_QUERY]
                marks = ",".join("?" * len(chunk))
                query = f"SELECT key, value FROM values_v1 WHERE namespace = ? AND key IN ({marks})"
                found.update(connection.execute(query, (namespace, *chunk)).fetchall())
        return found

    def _connection_or_none(self) -> sqlite3.Connection | None:
        if self._connection is None and not self._disabled:
            self.open()
        return self._connection

    @staticmethod
    def _write(connection: sqlite3.Connection, batch: _Batch) -> None:
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.executemany(
                "INSERT OR REPLACE INTO file_hashes_v1 VALUES (?, ?, ?, ?, ?)", batch.files
            )
            connection.executemany(
                "INSERT OR REPLACE INTO values_v1 VALUES (?, ?, ?)", batch.values
            )
            if batch.runs:
                connection.executemany(_ADD_RUN, batch.runs)
            if batch.ends:
                connection.executemany(_RAISE_END, batch.ends)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")


class _Batch(NamedTuple):
    """What one flush writes, as rows for its statements."""

    files: list[tuple[str, int, int, int, str]]
    values: list[tuple[str, str, bytes]]
    runs: list[_RunRow]
    ends: list[tuple[str, int]]


_ADD_RUN = (
    "INSERT OR REPLACE INTO run_records_v1 (key, entry, pack, offset, length, written)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_RAISE_END = (
    "INSERT INTO run_packs_v1 VALUES (?, ?) ON CONFLICT (pack) DO UPDATE"
    " SET indexed = max(indexed, excluded.indexed)"
)


class FileHasher:
    """Hashes files and directories, skipping any file whose (inode, size, mtime_ns) is known."""

    def __init__(self, state: StateDB | None, *, jobs: int | None = None) -> None:
        self.state = state
        self.jobs = jobs

    def hash_file(self, path: Path | str, st: os.stat_result | None = None) -> str:
        """Hash of `path`: one stat (none when the caller gives `st`, its stat), and a read only
        when the state db has no match."""
        st = st or os.stat(path)
        digest = self.state.lookup(path, st) if self.state is not None else None
        if digest is None:
            digest = hashing.hash_file(Path(path))
            if self.state is not None:
                self.state.record(path, st, digest)
        return digest

    def hash_files(self, paths: Iterable[Path]) -> dict[Path, str]:
        """Hashes of many files; the unknown ones are read in parallel."""
        stats = {Path(path): os.stat(path) for path in paths}
        known: dict[Path, str] = {}
        if self.state is not None:
            for path, st in stats.items():
                digest = self.state.lookup(path, st)
                if digest is not None:
                    known[path] = digest
        missing = [path for path in stats if path not in known]
        fresh = hashing.hash_files(missing, jobs=self.jobs) if missing else {}
        if self.state is not None:
            for path, digest in fresh.items():
                self.state.record(path, stats[path], digest)
        return {path: known.get(path) or fresh[path] for path in stats}

    def hash_directory(
        self, path: Path, *, ignore: Callable[[str], bool] | None = None
    ) -> tuple[str, DirectoryManifest]:
        """(directory hash, manifest) of every file under `path` (see `hashing.list_files`),
        leaving out files whose path relative to `path` `ignore` accepts."""
        files = hashing.list_files(Path(path))
        if ignore is not None:
            files = [(relative, file) for relative, file in files if not ignore(relative)]
        digests = self.hash_files(file for _relative, file in files)
        manifest = DirectoryManifest(tuple((rel, digests[file]) for rel, file in files))
        return hashing.manifest_hash(manifest), manifest


def _path_key(path: Path | str) -> str:
    return os.path.abspath(path)


def _has_schema(connection: sqlite3.Connection) -> bool:
    """Whether every table of `_SCHEMA` exists (a read: most opens change nothing)."""
    names = [statement.split()[5] for statement in _SCHEMA]
    query = f"SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ({', '.join('?' * len(names))})"
    return bool(connection.execute(query, names).fetchone()[0] == len(names))


def _is_busy(error: sqlite3.Error) -> bool:
    message = str(error).lower()
    return "locked" in message or "busy" in message


def _warn(message: str) -> None:
    warnings.warn(message, StateDBWarning, stacklevel=3)
