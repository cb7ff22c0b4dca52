"""Per-stage lock files (`.pivot/stages/<stage>.lock`): what a stage's last successful run saw.

Deterministic JSON (sorted keys, indent 2, trailing newline), written atomically; writing one is
the commit point of a stage. Imports nothing of Pivot's but `pivot.errors`, `pivot.fs` and the store
itself.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pivot import fs
from pivot.errors import LockFileError
from pivot.store.hashing import is_valid_hash

__all__ = [
    "SCHEMA_VERSION",
    "DepEntry",
    "LockEntry",
    "OutEntry",
    "decode_lock",
    "encode_lock",
    "lock_dir",
    "lock_name",
    "lock_path",
    "read_lock",
    "write_lock",
]

SCHEMA_VERSION = 1
_NAME_MAX = 255  # bytes in one file name on Linux and macOS file systems

_READS = 3  # times a lock is read before what it holds is taken as it is (see read_lock)
_FIX = "Fix: delete it, or run `pivot repro` to rewrite it."
_Value = TypeVar("_Value")


@dataclass(frozen=True)
class DepEntry:
    """A dependency as it was when the stage last ran: relative POSIX path and content hash."""

    path: str
    hash: str


@dataclass(frozen=True)
class OutEntry:
    """An output the stage produced: path, content hash (a manifest hash for directories)."""

    path: str
    hash: str
    cache: bool
    is_directory: bool


@dataclass(frozen=True)
class LockEntry:
    """Everything a stage's last successful run depended on and produced.

    `code` and `params` are stored as key-sorted dict copies, `deps` and `outs` as tuples sorted
    by path, so equal runs give equal entries and byte-identical lock files.
    """

    stage: str
    code: Mapping[str, str]
    params: Mapping[str, Any]
    deps: tuple[DepEntry, ...]
    outs: tuple[OutEntry, ...]
    observed: tuple[str, ...] = ()  # code the run entered beyond the static reach (sorted)

    def __post_init__(self) -> None:
        object.__setattr__(self, "observed", tuple(sorted(set(self.observed))))
        object.__setattr__(self, "code", dict(sorted(self.code.items())))
        object.__setattr__(self, "params", dict(sorted(self.params.items())))
        object.__setattr__(self, "deps", tuple(sorted(self.deps, key=_entry_order)))
        object.__setattr__(self, "outs", tuple(sorted(self.outs, key=_entry_order)))


def _entry_order(entry: DepEntry | OutEntry) -> tuple[str, str]:
    return (entry.path, entry.hash)


def lock_dir(state_dir: Path) -> Path:
    """`state_dir/stages`: the directory of a state dir's lock files."""
    return Path(state_dir, "stages")


def lock_path(state_dir: Path, stage: str) -> Path:
    """`state_dir/stages/<stage>.lock`; the stage name must be usable as a file name."""
    return lock_dir(state_dir) / lock_name(stage)


def lock_name(stage: str) -> str:
    """`<stage>.lock`, the name of a stage's lock file; LockFileError when the stage name
    cannot be a file name."""
    if not stage or stage in (".", "..") or "/" in stage or "\\" in stage or "\0" in stage:
        raise LockFileError(
            f"stage name {stage!r} cannot name a lock file: it must be non-empty and contain no "
            "'/', '\\' or NUL. Fix: rename the stage."
        )
    if len(f"{stage}.lock".encode()) > _NAME_MAX:
        raise LockFileError(
            f"stage name '{stage[:40]}...' is {len(stage.encode())} bytes long, too long to name "
            f"its lock file (at most {_NAME_MAX - len('.lock')} bytes). Fix: give the stage a "
            "shorter name (`register(func, name=...)`)."
        )
    return f"{stage}.lock"


def encode_lock(entry: LockEntry) -> str:
    """The lock file text of `entry`: sorted keys, indent 2, trailing newline (what
    `json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False)` writes, byte for byte;
    written here field by field, as a pool worker writes one per stage)."""
    quote = _quote
    deps = [
        f'{{\n      "hash": {quote(d.hash)},\n      "path": {quote(d.path)}\n    }}'
        for d in entry.deps
    ]
    outs = [
        f'{{\n      "cache": {_LITERALS[o.cache]},\n      "hash": {quote(o.hash)},\n      '
        f'"is_directory": {_LITERALS[o.is_directory]},\n      "path": {quote(o.path)}\n    }}'
        for o in entry.outs
    ]
    fields = [
        f'"code": {_indented(dict(entry.code), "  ")}',
        f'"deps": {_list_of(deps)}',
        f'"observed": {_list_of([quote(item) for item in entry.observed])}',
        f'"outs": {_list_of(outs)}',
        f'"params": {_indented(dict(entry.params), "  ")}',
        f'"schema_version": {SCHEMA_VERSION}',
        f'"stage": {quote(entry.stage)}',
    ]
    if not entry.observed:
        del fields[2]  # written only when the run observed code beyond the static reach
    return "{\n  " + ",\n  ".join(fields) + "\n}\n"


def _list_of(items: list[str]) -> str:
    """A list at indent 2 of items already written at indent 4."""
    return "[\n    " + ",\n    ".join(items) + "\n  ]" if items else "[]"


_quote = json.encoder.encode_basestring  # the C quoting `json.dumps(ensure_ascii=False)` uses
_LITERALS = {True: "true", False: "false", None: "null"}


def _indented(value: Any, indent: str) -> str:
    """`json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False)`, byte for byte, nested at
    `indent`. The stdlib writes indented JSON with its pure-Python encoder; this writes strings,
    ints, lists and string-keyed dicts with the C string quoting (a lock file about 2x faster)
    and hands anything else to json."""
    kind = type(value)
    if kind is str:
        return str(_quote(value))
    if kind is int:
        return int.__repr__(value)
    if kind is bool or value is None:
        return _LITERALS[value]
    inner = indent + "  "
    if kind is dict and all(type(key) is str for key in value):
        if not value:
            return "{}"
        lines = [
            f"{inner}{_quote(key)}: "
            + (_quote(item) if type(item) is str else _indented(item, inner))
            for key, item in sorted(value.items())
        ]
        return "{\n" + ",\n".join(lines) + "\n" + indent + "}"
    if kind is list:
        if not value:
            return "[]"
        lines = [inner + _indented(item, inner) for item in value]
        return "[\n" + ",\n".join(lines) + "\n" + indent + "]"
    text = json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False)
    return text.replace("\n", "\n" + indent)  # JSON strings never hold a raw newline


def write_lock(
    path: Path | str, entry: LockEntry, spares: fs.SpareFiles | None = None
) -> os.stat_result:
    """Write `entry` to `path` atomically (creating `stages/` if needed); a process rewriting
    many locks passes its `spares` (see `fs.SpareFiles`). The stat of the file written
    (`fs.atomic_write_stat`)."""
    data = encode_lock(entry).encode("utf-8")
    with fs.map_os_errors(path, "write the lock file"):
        if spares is None:
            return fs.atomic_write_stat(path, data)
        return spares.write_stat(path, data)


def read_lock(path: Path | str) -> LockEntry | None:
    """The entry in lock file `path`, None if there is none; LockFileError if it is corrupt.

    What is read is read again (up to `_READS` times) when it is not the well-formed lock of
    the stage the file is named after: a run rewrites lock files through spares
    (`fs.SpareFiles`), so a reader that opened a lock just before it was replaced may have read
    a spare being rewritten. A lock that stays so is reported (or taken) as it is."""
    for _ in range(_READS - 1):
        data = _read(path)
        if data is None:
            return None
        with contextlib.suppress(LockFileError):
            entry = _decoded(data, path)
            if os.path.basename(path) == f"{entry.stage}.lock":
                return entry
    data = _read(path)
    return None if data is None else _decoded(data, path)


def _read(path: Path | str) -> bytes | None:
    try:
        return fs.read_bytes(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise LockFileError(f"lock file '{path}' cannot be read ({error}). {_FIX}") from None


def _decoded(data: bytes, path: Path | str) -> LockEntry:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise LockFileError(f"lock file '{path}' is not UTF-8 text ({error}). {_FIX}") from None
    return decode_lock(text, path)


def decode_lock(text: str, path: Path | str) -> LockEntry:
    """Parse lock file text; `path` only names the file in error messages."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise _corrupt(path, f"it is not valid JSON ({error})") from None
    return _well_formed(document) or _checked(document, path)


def _well_formed(document: Any) -> LockEntry | None:
    """The entry of a lock as Pivot writes it, checked in one pass of cheap tests (a no-op
    reads N of them); None at the first thing out of the ordinary, which `_checked` then
    names."""
    if type(document) is not dict or document.get("schema_version") != SCHEMA_VERSION:
        return None
    stage, code, params = document.get("stage"), document.get("code"), document.get("params")
    deps, outs = document.get("deps"), document.get("outs")
    observed = document.get("observed", [])
    if not (
        type(stage) is str
        and type(code) is dict
        and type(params) is dict
        and type(deps) is list
        and type(outs) is list
        and type(observed) is list
        and all(type(value) is str for value in code.values())
        and all(type(item) is str for item in observed)
    ):
        return None
    dep_entries = []
    for item in deps:
        if type(item) is not dict:
            return None
        dep_path, digest = item.get("path"), item.get("hash")
        if type(dep_path) is not str or not is_valid_hash(digest):
            return None
        dep_entries.append(DepEntry(dep_path, digest))
    out_entries = []
    for item in outs:
        if type(item) is not dict:
            return None
        out_path, digest = item.get("path"), item.get("hash")
        cache, directory = item.get("cache"), item.get("is_directory")
        if not (
            type(out_path) is str
            and is_valid_hash(digest)
            and type(cache) is bool
            and type(directory) is bool
        ):
            return None
        out_entries.append(OutEntry(out_path, digest, cache, directory))
    return LockEntry(stage, code, params, tuple(dep_entries), tuple(out_entries), tuple(observed))


def _checked(document: Any, path: Path | str) -> LockEntry:
    """The entry of a lock document, field by field; LockFileError names what is wrong."""
    if not isinstance(document, dict):
        raise _corrupt(path, "it is not a JSON object")
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise LockFileError(
            f"lock file '{path}' has schema version {version!r}, but this Pivot reads version "
            f"{SCHEMA_VERSION}. {_FIX}"
        )
    return LockEntry(
        stage=_field(document, "stage", str, path),
        code=_string_map(_field(document, "code", dict, path), "code", path),
        params=_field(document, "params", dict, path),
        deps=tuple(_dep(item, path) for item in _field(document, "deps", list, path)),
        outs=tuple(_out(item, path) for item in _field(document, "outs", list, path)),
        observed=_observed(document, path),
    )


def _observed(document: dict[str, Any], path: Path | str) -> tuple[str, ...]:
    """The optional `observed` list (absent from locks whose run observed nothing extra)."""
    value = document.get("observed", [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _corrupt(path, f"the field 'observed' should be a list of strings, not {value!r}")
    return tuple(value)


def _dep(item: object, path: Path | str) -> DepEntry:
    if not isinstance(item, dict):
        raise _corrupt(path, f"a 'deps' item is not an object: {item!r}")
    return DepEntry(path=_field(item, "path", str, path), hash=_hash_field(item, path))


def _out(item: object, path: Path | str) -> OutEntry:
    if not isinstance(item, dict):
        raise _corrupt(path, f"an 'outs' item is not an object: {item!r}")
    return OutEntry(
        path=_field(item, "path", str, path),
        hash=_hash_field(item, path),
        cache=_field(item, "cache", bool, path),
        is_directory=_field(item, "is_directory", bool, path),
    )


def _hash_field(item: dict[str, Any], path: Path | str) -> str:
    value = _field(item, "hash", str, path)
    if not is_valid_hash(value):
        raise _corrupt(path, f"{value!r} (for '{item.get('path')}') is not a content hash")
    return value


def _string_map(value: dict[str, Any], name: str, path: Path | str) -> dict[str, str]:
    for key, item in value.items():
        if not isinstance(item, str):
            raise _corrupt(path, f"'{name}' entry {key!r} is not a string")
    return value


def _field(document: dict[str, Any], name: str, kind: type[_Value], path: Path | str) -> _Value:
    if name not in document:
        raise _corrupt(path, f"the field '{name}' is missing")
    value = document[name]
    if not isinstance(value, kind):
        raise _corrupt(path, f"the field '{name}' should be a {kind.__name__}, not {value!r}")
    return value


def _corrupt(path: Path | str, problem: str) -> LockFileError:
    return LockFileError(f"lock file '{path}' is corrupt: {problem}. {_FIX}")
