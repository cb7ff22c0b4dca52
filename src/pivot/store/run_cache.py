"""The run cache (`.pivot/cache/runs/`): (stage, code, params, dep hashes) -> the outputs a
successful run made. (`store.runs` is something else: the history of `repro` runs.)

An entry's object key is `runs/<key[:2]>/<key[2:]>/<entry hash>`, where `key` hashes the run's
inputs and `entry hash` is the BLAKE3 of the entry's bytes, so entries are content-addressed like
blobs (written once, verified on transfer, never conflicting between machines); a remote keeps
each entry under that key. Locally an entry is either a loose file at that path (older Pivot, and
entries fetched from a remote) or a record in a pack, `runs/packs/<name>.pack`, to which a run
appends every entry it saves (a file per run instead of a directory and a file per stage). A
record checks itself, so a torn tail after a crash is ignored, never misread; records are looked
up by run key through an index (the state db) that is only a cache, brought up to date from the
packs whenever it lags. Imports nothing of Pivot's but `pivot.errors`, `pivot.fs` and the store.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from pivot import fs
from pivot.store import hashing
from pivot.store.lock import LockEntry, OutEntry

__all__ = [
    "PACKS_DIR",
    "PACK_SUFFIX",
    "RUNS_DIR",
    "Damage",
    "Packed",
    "RunCache",
    "RunIndex",
    "inline_from_bytes",
    "object_key",
    "outs_from_bytes",
    "outs_to_bytes",
    "run_key",
    "run_key_of",
    "split_object_key",
]

RUNS_DIR = "runs"
PACKS_DIR = "packs"
"""`runs/packs/`: the packs (not a key prefix: those are two hex digits)."""
PACK_SUFFIX = ".pack"
_VERSION = 1
_MAGIC = b"PVRUN1"
_HEAD_MAX = 256
"""A record's header line is shorter than this (bytes)."""
REUSE_BELOW = 16 * 1024 * 1024
"""A run appends to the newest pack while it is smaller than this (bytes), else starts one."""
KEYS_AFTER = 64
"""Saves after which a process reads all the index's run keys at once: from then on a save
asks the index about its run only when the index holds that key (a run of N stages saves N).
Saves of runs a look-up already found missing (`_absent`) ask nothing and do not count."""


def run_key(
    stage: str, code: Mapping[str, str], params: Mapping[str, Any], deps: Mapping[str, str]
) -> str:
    """The hash naming a run's inputs: stage, code manifest, params and each dep's hash."""
    document = {
        "stage": stage,
        "code": code if type(code) is dict else dict(code),
        "params": params,
        "deps": deps if type(deps) is dict else dict(deps),
        "version": _VERSION,
    }
    return hashing.hash_bytes(_KEY_JSON.encode(document).encode("ascii"))


_KEY_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)
"""What `run_key` hashes: compact JSON with every object's keys sorted (made once: `json.dumps`
with options makes an encoder per call)."""


def run_key_of(entry: LockEntry) -> str:
    """The run key of the run a lock entry records."""
    return run_key(entry.stage, entry.code, entry.params, {d.path: d.hash for d in entry.deps})


def outs_to_bytes(outs: Sequence[OutEntry], inline: Mapping[str, bytes]) -> bytes:
    """An entry: every output, with the content of the uncached files inline (`inline`: path ->
    bytes), since the cache's `files/` keeps only what is declared cached. The compact JSON of
    `{"outs": [{"cache", "content" (uncached only), "hash", "is_directory", "path"}, ...],
    "version"}`, keys sorted, ASCII: written field by field (a run saves one per stage)."""
    items = []
    for out in sorted(outs, key=_by_path):
        content = ""
        if not out.cache:
            encoded = base64.b64encode(inline[out.path]).decode("ascii")
            content = f'"content":{_STRING(encoded)},'
        items.append(
            f'{{"cache":{_BOOLEAN[bool(out.cache)]},{content}"hash":{_STRING(out.hash)},'
            f'"is_directory":{_BOOLEAN[bool(out.is_directory)]},"path":{_STRING(out.path)}}}'
        )
    return f'{{"outs":[{",".join(items)}],"version":{_VERSION}}}'.encode("ascii")


_STRING = json.JSONEncoder(ensure_ascii=True).encode
"""A str as a JSON string literal (escaped, ASCII)."""
_BOOLEAN = {True: "true", False: "false"}


def _by_path(out: OutEntry) -> str:
    return out.path


def inline_from_bytes(data: bytes) -> dict[str, bytes]:
    """The uncached outputs' content an entry holds (path -> bytes), each checked against its
    recorded hash; ValueError if one does not match."""
    found = {}
    for item in json.loads(data)["outs"]:
        if "content" in item:
            content = base64.b64decode(item["content"], validate=True)
            if hashing.hash_bytes(content) != item["hash"]:
                raise ValueError(f"run-cache content of '{item['path']}' does not match its hash")
            found[str(item["path"])] = content
    return found


def outs_from_bytes(data: bytes) -> tuple[OutEntry, ...]:
    """Parse an entry; ValueError saying what is wrong (paths are checked like annotation paths)."""
    try:
        document = json.loads(data)
        items = document["outs"] if document.get("version") == _VERSION else None
    except (ValueError, AttributeError, KeyError, TypeError):
        items = None
    if not isinstance(items, list):
        raise ValueError("not a version 1 run-cache entry")
    outs = []
    for item in items:
        if not isinstance(item, dict):
            raise ValueError(f"run-cache output {item!r} is not an object")
        path, digest = item.get("path"), item.get("hash")
        if not isinstance(path, str) or not _is_project_path(path):
            raise ValueError(f"run-cache output path {path!r} is not a project-relative path")
        if not hashing.is_valid_hash(digest):
            raise ValueError(f"run-cache output '{path}' has an invalid hash {digest!r}")
        cache = item.get("cache", True) is not False
        if not cache and ("content" not in item or item.get("is_directory")):
            raise ValueError(f"run-cache output '{path}' is uncached but has no content")
        outs.append(OutEntry(path, str(digest), cache, bool(item.get("is_directory"))))
    return tuple(outs)


def _is_project_path(path: str) -> bool:
    parts = path.rstrip("/").split("/")
    return (
        bool(path)
        and not path.startswith("/")
        and "\\" not in path
        and "\0" not in path
        and all(part not in ("", ".", "..") for part in parts)
    )


def object_key(key: str, entry: str) -> str:
    """The object key of entry `entry` (its hash) of run `key`: `runs/ab/cdef.../<entry>`."""
    return f"{RUNS_DIR}/{key[:2]}/{key[2:]}/{entry}"


def split_object_key(object_key: str) -> tuple[str, str]:
    """(run key, entry hash) of an entry's object key; ValueError if it is not one."""
    parts = object_key.split("/")
    if len(parts) != 4 or parts[0] != RUNS_DIR or len(parts[1]) != 2:
        raise ValueError(f"{object_key!r} is not the key of a run-cache entry")
    key, entry = parts[1] + parts[2], parts[3]
    if not (hashing.is_valid_hash(key) and hashing.is_valid_hash(entry)):
        raise ValueError(f"{object_key!r} is not the key of a run-cache entry")
    return key, entry


class Packed(NamedTuple):
    """A record in a pack: its run key and entry hash, the pack's file name, where the entry's
    bytes are in it, and when it was written (ns since the epoch: newest entries are tried first)."""

    key: str
    entry: str
    pack: str
    offset: int
    length: int
    written: int

    @property
    def object_key(self) -> str:
        return object_key(self.key, self.entry)


class Damage(NamedTuple):
    """What `RunCache.repair` found damaged and moved to the quarantine: a loose entry whose bytes
    do not hash to its name, or bytes of a pack that are no good record (a torn tail left by a
    crash, a record whose bytes changed)."""

    where: str
    """The loose entry's object key, or `runs/packs/<name>`."""
    detail: str
    moved_to: Path


class RunIndex(Protocol):
    """Where pack records are indexed by run key (the state db). Only a cache: whatever it lacks
    is read again from the packs, and every record is checked against its hash when read."""

    def run_packs(self) -> dict[str, int] | None:
        """Pack name -> how many of its bytes are indexed; None when the index cannot be used."""

    def run_records(self, key: str) -> list[tuple[str, str, str, int, int, int]]:
        """The indexed records of run `key`, as `Packed` fields."""

    def run_keys(self) -> set[str]:
        """The run keys with indexed records."""

    def index_runs(
        self, records: Sequence[Packed], ends: Mapping[str, int], forget: Collection[str]
    ) -> None:
        """Drop the packs `forget`, add `records`, and set how far each pack in `ends` is
        indexed (never lowering it)."""

    def add_runs(self, records: Sequence[Packed], ends: Mapping[str, int]) -> None:
        """`index_runs` without packs to drop, which may be written later (seen at once)."""


class _MemoryIndex:
    """A `RunIndex` held in memory, for a process without a usable state db (it reads every
    pack once)."""

    def __init__(self) -> None:
        self._packs: dict[str, int] = {}
        self._records: dict[str, dict[tuple[str, int], Packed]] = {}

    def run_packs(self) -> dict[str, int]:
        return dict(self._packs)

    def run_records(self, key: str) -> list[tuple[str, str, str, int, int, int]]:
        return list(self._records.get(key, {}).values())

    def run_keys(self) -> set[str]:
        return {key for key, found in self._records.items() if found}

    def index_runs(
        self, records: Sequence[Packed], ends: Mapping[str, int], forget: Collection[str]
    ) -> None:
        for pack in forget:
            self._packs.pop(pack, None)
            for found in self._records.values():
                for place in [place for place in found if place[0] == pack]:
                    del found[place]
        for record in records:
            self._records.setdefault(record.key, {})[(record.pack, record.offset)] = record
        for pack, end in ends.items():
            self._packs[pack] = max(end, self._packs.get(pack, 0))

    def add_runs(self, records: Sequence[Packed], ends: Mapping[str, int]) -> None:
        self.index_runs(records, ends, ())


def _check(head: bytes) -> bytes:
    return hashing.hash_bytes(head)[:16].encode("ascii")


def _record(key: str, entry: str, data: bytes, written: int) -> bytes:
    """A pack record: `PVRUN1 <run key> <entry hash> <length> <written> <check>\n<entry>\n`,
    where the check hashes the rest of the header and the entry hash the entry's bytes."""
    head = b"%s %s %s %d %d" % (
        _MAGIC,
        key.encode("ascii"),
        entry.encode("ascii"),
        len(data),
        written,
    )
    return b"%s %s\n%s\n" % (head, _check(head), data)


def _parse_head(line: bytes) -> tuple[str, str, int, int] | None:
    """(run key, entry hash, length, written) of a record's header line; None unless it is
    whole and checks."""
    parts = line.split(b" ")
    if len(parts) != 6 or parts[0] != _MAGIC or _check(line[: line.rindex(b" ")]) != parts[5]:
        return None
    try:
        key, entry = parts[1].decode("ascii"), parts[2].decode("ascii")
        length, written = int(parts[3]), int(parts[4])
    except (UnicodeDecodeError, ValueError):
        return None
    if length < 0 or not (hashing.is_valid_hash(key) and hashing.is_valid_hash(entry)):
        return None
    return key, entry, length, written


class _Scanned(NamedTuple):
    records: list[Packed]
    """The good records."""
    end: int
    """Where the last whole record ends (what follows is a torn tail, or nothing)."""
    damaged: list[tuple[int, int]]
    """Byte ranges that are no good record (offsets in the pack)."""
    start: int
    data: bytes
    """The pack's bytes from `start` on."""

    def entry_bytes(self, record: Packed) -> bytes:
        begin = record.offset - self.start
        return self.data[begin : begin + record.length]


def _scan(path: Path, start: int) -> _Scanned:
    """Read pack `path` from byte `start` on. Damaged bytes (a header that does not check, an
    entry that does not match its hash, a torn tail) are skipped: reading goes on at the next
    header, which starts a line and checks itself."""
    try:
        with open(path, "rb") as file:
            file.seek(start)
            data = file.read()
    except OSError:
        return _Scanned([], start, [], start, b"")
    records: list[Packed] = []
    damaged: list[tuple[int, int]] = []
    position = whole = 0
    while position < len(data):
        newline = data.find(b"\n", position, position + _HEAD_MAX)
        head = _parse_head(data[position:newline]) if newline >= 0 else None
        end = newline + 1 + head[2] if head is not None else -1
        if head is not None and end < len(data) and data[end] == ord("\n"):
            key, entry, length, written = head
            if hashing.hash_bytes(data[newline + 1 : end]) == entry:
                records.append(Packed(key, entry, path.name, start + newline + 1, length, written))
            else:
                damaged.append((start + position, start + end + 1))
            position = whole = end + 1
            continue
        following = data.find(b"\n" + _MAGIC + b" ", position)
        resume = len(data) if following < 0 else following + 1
        damaged.append((start + position, start + resume))
        position = resume
    return _Scanned(records, start + whole, damaged, start, data)


def _lock_pack(path: Path, flags: int) -> int | None:
    """An open descriptor of pack `path` holding its exclusive flock, or None when another
    process holds it (it is appending or rewriting it) or the pack is gone."""
    import fcntl  # POSIX only; imported here so the module loads everywhere

    try:
        descriptor = os.open(path, flags | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(descriptor).st_nlink == 0:  # rewritten and removed before we locked it
            raise FileNotFoundError(path)
    except OSError:
        os.close(descriptor)
        return None
    return descriptor


def _new_pack_name() -> str:
    """A fresh pack name; names sort in the order packs were made."""
    return f"{time.time_ns():020d}-{os.urandom(4).hex()}{PACK_SUFFIX}"


class RunCache:
    """The run cache under `root` (usually `.pivot/cache`): entries are looked up by run key
    among loose files and pack records alike; this process appends the entries it saves to one
    pack, holding its flock meanwhile. `close` indexes what was appended (a process that dies
    before leaves it to the next one to index from the pack)."""

    def __init__(self, root: Path, index: RunIndex | None = None) -> None:
        self.root = Path(root)
        self.runs_dir = self.root / RUNS_DIR
        self.packs_dir = self.runs_dir / PACKS_DIR
        self.quarantine_dir = self.root / "quarantine"
        self._index: RunIndex = index if index is not None else _MemoryIndex()
        self._synced = False
        self._ends: dict[str, int] = {}
        """Pack -> where its last whole record ends, as far as this process knows."""
        self._fresh: dict[str, list[Packed]] = {}
        """Records this process appended that the index does not have yet, by run key."""
        self._prefixes: frozenset[str] | None = None
        """The names in `runs/` (key prefixes of loose entries), once listed."""
        self._writer: int | None = None
        self._writing = ""
        self._readers: dict[str, int] = {}
        self._saves = 0
        self._keys: set[str] | None = None
        """The run keys the index held when read (`KEYS_AFTER`), plus those indexed since."""
        self._absent: set[str] = set()
        """Run keys the index was asked about and had no record of (a plan looks up each stage
        it runs: saving that run then asks nothing)."""

    # --- reading ------------------------------------------------------------------------------

    def lookup(self, key: str) -> list[tuple[str, tuple[OutEntry, ...]]]:
        """(object key, outputs) of every valid entry recorded for run `key`, newest first
        (damaged ones are skipped)."""
        found: dict[str, tuple[int, tuple[OutEntry, ...]]] = {}
        for entry, data, written in self._good(key):
            with contextlib.suppress(ValueError):
                outs = outs_from_bytes(data)
                if entry not in found or found[entry][0] < written:
                    found[entry] = (written, outs)
        newest = sorted(found.items(), key=lambda item: -item[1][0])
        return [(object_key(key, entry), outs) for entry, (_, outs) in newest]

    def read(self, key: str) -> bytes:
        """The bytes of the entry with object key `key`, checked against its hash; KeyError if
        this cache has no good copy of it."""
        data = self._find(*split_object_key(key))
        if data is None:
            raise KeyError(key)
        return data

    def has(self, key: str) -> bool:
        """True when a good copy of the entry with object key `key` is here (loose or packed)."""
        return self._find(*split_object_key(key)) is not None

    def _find(self, run: str, wanted: str) -> bytes | None:
        for entry, data, _written in self._good(run):
            if entry == wanted:
                return data
        return None

    def entries(self) -> Iterator[tuple[str, bytes]]:
        """(object key, bytes) of every good entry here, loose or packed, each once."""
        seen: set[str] = set()
        for run in self._loose_runs():
            for entry, data, _written in self._loose(run):
                seen.add(object_key(run, entry))
                yield object_key(run, entry), data
        for name in sorted(self._pack_sizes()):
            scanned = _scan(self.packs_dir / name, 0)
            for record in scanned.records:
                if record.object_key not in seen:
                    seen.add(record.object_key)
                    yield record.object_key, scanned.entry_bytes(record)

    def _loose_runs(self) -> Iterator[str]:
        for prefix in sorted(_listdir(self.runs_dir)):
            for rest in sorted(_listdir(self.runs_dir / prefix)):
                if hashing.is_valid_hash(prefix + rest):
                    yield prefix + rest

    def _good(self, key: str) -> Iterator[tuple[str, bytes, int]]:
        """(entry hash, bytes, when written) of the good entries of run `key`: loose files
        (their mtime), then pack records."""
        yield from self._loose(key)
        for record in self._records(key):
            data = self._read_packed(record)
            if data is not None:
                yield record.entry, data, record.written

    def _loose(self, key: str) -> Iterator[tuple[str, bytes, int]]:
        """(entry hash, bytes, mtime) of the good loose entries of run `key` (the key
        directories' prefixes are listed once: most caches have no loose entry at all)."""
        if self._prefixes is None:
            self._prefixes = frozenset(_listdir(self.runs_dir))
        if key[:2] not in self._prefixes:
            return
        directory = os.path.join(self.runs_dir, key[:2], key[2:])
        for name in _listdir(directory):
            if not hashing.is_valid_hash(name):
                continue
            path = os.path.join(directory, name)
            try:
                with open(path, "rb") as file:
                    data = file.read()
                    written = os.fstat(file.fileno()).st_mtime_ns
            except OSError:
                continue
            if hashing.hash_bytes(data) == name:
                yield name, data, written

    def _records(self, key: str) -> list[Packed]:
        """The pack records of run `key` (indexed, or appended by this process)."""
        self._sync()
        fresh = self._fresh.get(key, [])
        if (
            not self._ends
            or key in self._absent
            or (self._keys is not None and key not in self._keys)
        ):
            return list(fresh)  # no pack at all, or none indexed for `key`: nothing to ask
        rows = self._index.run_records(key)
        if not rows:
            self._absent.add(key)
        return [*(Packed(*row) for row in rows), *fresh]

    def _read_packed(self, record: Packed) -> bytes | None:
        """The record's entry bytes if they still match their hash."""
        try:
            descriptor = self._readers.get(record.pack)
            if descriptor is None:
                path = self.packs_dir / record.pack
                descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                self._readers[record.pack] = descriptor
            data = os.pread(descriptor, record.length, record.offset)
        except OSError:
            return None
        return data if hashing.hash_bytes(data) == record.entry else None

    def _pack_sizes(self) -> dict[str, int]:
        sizes = {}
        for name in _listdir(self.packs_dir):
            if name.endswith(PACK_SUFFIX) and not name.startswith("."):
                with contextlib.suppress(FileNotFoundError):
                    sizes[name] = os.stat(self.packs_dir / name).st_size
        return sizes

    def _sync(self) -> None:
        """Bring the index up to date with the packs on disk (once per process: later records
        are this process's own): forget packs that are gone or shorter than indexed, and index
        what was appended past the indexed part (by a process that died before indexing it)."""
        if self._synced:
            return
        self._synced = True
        sizes = self._pack_sizes()
        known = self._index.run_packs()
        if known is None:  # the state db cannot be used: index in memory
            self._index = _MemoryIndex()
            known = {}
        forget = [name for name, end in known.items() if name not in sizes or end > sizes[name]]
        found: list[Packed] = []
        ends: dict[str, int] = {}
        for name, size in sizes.items():
            start = 0 if name in forget else known.get(name, 0)
            self._ends[name] = start
            if size > start:
                scanned = _scan(self.packs_dir / name, start)
                self._ends[name] = scanned.end
                found += scanned.records
            if self._ends[name] != known.get(name):
                ends[name] = self._ends[name]
        if found or ends or forget:
            self._index.index_runs(found, ends, forget)

    # --- writing ------------------------------------------------------------------------------

    def save(self, key: str, outs: Sequence[OutEntry], inline: Mapping[str, bytes]) -> str:
        """Record that the run `key` produced `outs` (`inline`: the uncached files' content),
        unless a good copy of that entry is here already; returns the entry's object key."""
        data = outs_to_bytes(outs, inline)
        entry = hashing.hash_bytes(data)
        if key not in self._absent:
            self._saves += 1
            if self._saves == KEYS_AFTER:
                self._sync()
                self._keys = self._index.run_keys()
        if self._find(key, entry) is None:
            with fs.map_os_errors(self.packs_dir, "write the run cache"):
                self._append(key, entry, data)
        return object_key(key, entry)

    def _append(self, key: str, entry: str, data: bytes) -> None:
        written = time.time_ns()
        record = _record(key, entry, data, written)
        descriptor = self._pack_for_writing()
        start = self._ends[self._writing]
        try:
            done = os.write(descriptor, record)
        except BaseException:
            self._stop_writing()  # the pack may end in a torn record now: append to no more
            raise
        if done != len(record):
            self._stop_writing()
            raise OSError(28, "No space left on device (short write)")
        self._ends[self._writing] = start + len(record)
        offset = start + len(record) - len(data) - 1
        self._fresh.setdefault(key, []).append(
            Packed(key, entry, self._writing, offset, len(data), written)
        )

    def _pack_for_writing(self) -> int:
        """The descriptor this process appends to: the newest pack while it is small, whole
        and not in use by another process, else a new one."""
        if self._writer is not None:
            return self._writer
        self._sync()
        self.packs_dir.mkdir(parents=True, exist_ok=True)
        newest = max(self._ends, default=None)
        if newest is not None and self._ends[newest] < REUSE_BELOW:
            descriptor = _lock_pack(self.packs_dir / newest, os.O_WRONLY | os.O_APPEND)
            if descriptor is not None and os.fstat(descriptor).st_size == self._ends[newest]:
                self._writer, self._writing = descriptor, newest
                return descriptor
            if descriptor is not None:  # grown since it was read, or a torn tail: leave it
                os.close(descriptor)
        name = _new_pack_name()  # made under a hidden name, locked, then named: never shared
        hidden = fs.temp_path_for(self.packs_dir / name)  # litter if we die: cleaned up
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        descriptor = os.open(hidden, flags, fs.FILE_MODE)
        import fcntl  # POSIX only, as in `_lock_pack`

        fcntl.flock(descriptor, fcntl.LOCK_EX)  # nobody else can see it yet: never waits
        os.rename(hidden, self.packs_dir / name)
        self._writer, self._writing, self._ends[name] = descriptor, name, 0
        return descriptor

    def _stop_writing(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(OSError):
                os.close(self._writer)
        self._writer, self._writing = None, ""

    def flush(self) -> None:
        """Index the records this process appended."""
        if not self._fresh:
            return
        records = [record for records in self._fresh.values() for record in records]
        ends = {record.pack: self._ends[record.pack] for record in records}
        self._index.add_runs(records, ends)  # (written with the state db's next flush)
        if self._keys is not None:
            self._keys.update(self._fresh)
        self._absent.difference_update(self._fresh)
        self._fresh = {}

    def close(self) -> None:
        """Index what this process appended, and close its packs (releasing its flock)."""
        self.flush()
        self._stop_writing()
        for descriptor in self._readers.values():
            with contextlib.suppress(OSError):
                os.close(descriptor)
        self._readers = {}

    def refresh(self) -> None:
        """`close`, and read the disk again on next use: for after entries or packs were added
        or removed by other means (a fetch writes loose entries)."""
        self.close()
        self._synced, self._ends, self._prefixes, self._keys = False, {}, None, None
        self._absent = set()

    # --- removing and repairing ---------------------------------------------------------------

    def remove(self, keys: Iterable[str]) -> None:
        """Delete the entries with these object keys: loose files (and their emptied key
        directories), and pack records (each pack holding some is rewritten without them under
        a new name; a pack another process is appending to is left as it is)."""
        doomed = set(keys)
        for key in sorted(doomed):
            path = self.root / key
            fs.remove_path(path)
            for directory in (path.parent, path.parent.parent):
                try:
                    directory.rmdir()
                except OSError:
                    break
        self.close()
        for name in sorted(self._pack_sizes()):
            scanned = _scan(self.packs_dir / name, 0)
            if any(record.object_key in doomed for record in scanned.records):
                self._rewrite(name, doomed)
        self.refresh()

    def repair(self) -> tuple[int, list[Damage]]:
        """Check every entry, loose or packed; move what is damaged to the quarantine (a pack
        is rewritten without its damaged bytes, under a new name; one another process is
        appending to is left alone). Returns (good entries, what was damaged)."""
        good = 0
        damages: list[Damage] = []
        for run in self._loose_runs():
            directory = self.runs_dir / run[:2] / run[2:]
            for name in _listdir(directory):
                if not hashing.is_valid_hash(name):
                    continue
                with contextlib.suppress(OSError):
                    if hashing.hash_bytes((directory / name).read_bytes()) == name:
                        good += 1
                        continue
                    moved = self._quarantine(name)
                    os.replace(directory / name, moved)
                    detail = "its bytes do not hash to its name"
                    damages.append(Damage(object_key(run, name), detail, moved))
        self.close()
        for name in sorted(self._pack_sizes()):
            scanned = _scan(self.packs_dir / name, 0)
            good += len(scanned.records)
            if scanned.damaged:
                damage = self._rewrite(name, set())
                if damage is not None:
                    damages.append(damage)
        self.refresh()
        return good, damages

    def _rewrite(self, name: str, drop: set[str]) -> Damage | None:
        """Rewrite pack `name` without the records `drop` and without damaged bytes (those go
        to the quarantine: the returned Damage); nothing when another process holds the pack."""
        path = self.packs_dir / name
        descriptor = _lock_pack(path, os.O_RDONLY)
        if descriptor is None:
            return None
        try:
            scanned = _scan(path, 0)  # again, now that nobody appends
            kept = b"".join(
                _record(r.key, r.entry, scanned.entry_bytes(r), r.written)
                for r in scanned.records
                if r.object_key not in drop
            )
            damage = None
            if scanned.damaged:
                moved = self._quarantine(name)
                fs.atomic_write_bytes(
                    moved, b"".join(scanned.data[a:b] for a, b in scanned.damaged)
                )
                ranges = ", ".join(f"{a}-{b}" for a, b in scanned.damaged)
                detail = f"bytes {ranges} are no whole, intact record"
                damage = Damage(f"{RUNS_DIR}/{PACKS_DIR}/{name}", detail, moved)
            if kept:
                fs.atomic_write_bytes(self.packs_dir / _new_pack_name(), kept)
            os.unlink(path)
        finally:
            os.close(descriptor)
        return damage

    def _quarantine(self, name: str) -> Path:
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        return self.quarantine_dir / f"{RUNS_DIR}-{name}.{os.urandom(4).hex()}"


def _listdir(path: Path | str) -> list[str]:
    try:
        return os.listdir(path)
    except (NotADirectoryError, FileNotFoundError):
        return []
