"""A stage's return value: validated completely against its outputs, then listed as files to write.

Run time counterpart of `pivot.spec` (nothing is written unless the whole value is valid).
Imports of Pivot: `pivot.spec`, `pivot.errors`.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Mapping
from typing import Any

from pivot.errors import OutputValidationError
from pivot.spec import OutKind, OutSpec, Shape, StageSpec

__all__ = ["OutputWrite", "expand_return_value"]


@dataclasses.dataclass(frozen=True)
class OutputWrite:
    """One file to write after a stage returns: which output, where, and what value."""

    out: OutSpec
    path: str
    value: Any


def _fail(stage: str, message: str) -> OutputValidationError:
    return OutputValidationError(
        f"stage '{stage}' returned an invalid value: {message}. Nothing was written"
    )


def _directory_key(key: Any, out: OutSpec, stage: str) -> str:
    where = f"DirectoryOut '{out.paths[0]}'"
    if not isinstance(key, str) or not key.strip("/"):
        raise _fail(
            stage, f"{where} key {key!r} is empty or not a string; use names like 'task_a.json'"
        )
    if "\x00" in key:  # the OS would refuse it mid-way through the writes
        raise _fail(stage, f"{where} key {key!r} contains a NUL character; remove it")
    if key.startswith("/") or (len(key) > 1 and key[1] == ":"):
        raise _fail(
            stage, f"{where} key {key!r} is an absolute path; use a path relative to the directory"
        )
    parts = key.replace("\\", "/").split("/")
    if ".." in parts:
        raise _fail(
            stage, f"{where} key {key!r} contains '..'; keys must stay inside the directory"
        )
    if any(part == "" for part in parts):
        raise _fail(stage, f"{where} key {key!r} has an empty name part; remove the extra '/'")
    normal = posixpath.normpath("/".join(parts))
    if not posixpath.splitext(posixpath.basename(normal))[1]:
        raise _fail(
            stage,
            f"DirectoryOut key must have extension: {key!r} in {where}; use e.g. '{key}.json'",
        )
    return normal


def _directory_writes(out: OutSpec, value: Any, stage: str) -> list[OutputWrite]:
    if not isinstance(value, Mapping):
        raise _fail(
            stage,
            f"DirectoryOut '{out.paths[0]}' needs a dict of {{file name: value}}, got {type(value).__name__}",
        )
    if not value:
        raise _fail(
            stage, f"DirectoryOut '{out.paths[0]}' got an empty dict; return at least one file"
        )
    by_name: dict[str, str] = {}
    by_folded: dict[str, str] = {}
    writes = []
    for key, item in value.items():
        normal = _directory_key(key, out, stage)
        if normal in by_name:
            raise _fail(
                stage, f"DirectoryOut keys {by_name[normal]!r} and {key!r} name the same file"
            )
        if normal.casefold() in by_folded:
            raise _fail(
                stage,
                f"DirectoryOut keys {by_folded[normal.casefold()]!r} and {key!r} differ only in case "
                "and would collide on case-insensitive file systems",
            )
        by_name[normal] = by_folded[normal.casefold()] = key
        writes.append(OutputWrite(out, out.paths[0] + normal, item))
    return writes


def _out_writes(out: OutSpec, value: Any, stage: str) -> list[OutputWrite]:
    if out.kind is OutKind.DIRECTORY:
        return _directory_writes(out, value, stage)
    if out.shape is Shape.SINGLE:
        return [OutputWrite(out, out.paths[0], value)]
    if not isinstance(value, list | tuple):
        raise _fail(
            stage,
            f"output '{out.name}' declares {len(out.paths)} paths, so it needs a list, got {type(value).__name__}",
        )
    if len(value) != len(out.paths):
        raise _fail(
            stage,
            f"output '{out.name}' declares {len(out.paths)} paths but got {len(value)} values",
        )
    return [OutputWrite(out, path, item) for path, item in zip(out.paths, value, strict=True)]


def expand_return_value(spec: StageSpec, value: Any) -> tuple[OutputWrite, ...]:
    """Validate a stage's return value completely, then list the files to write."""
    if not spec.outs:
        return ()
    if spec.single_output:
        return tuple(_out_writes(spec.outs[0], value, spec.name))
    if not isinstance(value, Mapping):
        raise _fail(
            spec.name,
            f"expected a dict with keys {[o.name for o in spec.outs]}, got {type(value).__name__}",
        )
    names = {out.name for out in spec.outs}
    missing = sorted(names - set(value))
    extra = sorted(str(key) for key in set(value) - names)
    if missing:
        raise _fail(spec.name, f"missing key(s) {missing}; return every field of the TypedDict")
    if extra:
        raise _fail(spec.name, f"unexpected key(s) {extra}; declared outputs are {sorted(names)}")
    return tuple(
        write for out in spec.outs for write in _out_writes(out, value[out.name], spec.name)
    )
