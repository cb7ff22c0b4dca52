"""Manifests kept between runs: the cache protocol, the key of a stage, the stored bytes.

A stored manifest stays valid while every source file it was computed from has the same
(mtime_ns, size); checking that costs one dict lookup per file once the files are stat'ed.
Imports nothing of ours but sibling modules.
"""

from __future__ import annotations

import dataclasses
import marshal
import sys
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from pivot.fingerprint.sources import SourceStats
from pivot.fingerprint.values import Unhashable, encode_value, short_digest

__all__ = ["FORMAT", "ManifestCache", "Stored", "cache_key", "is_fresh", "pack", "unpack"]

FORMAT = 3  # bump whenever what goes into a manifest changes

Source = tuple[str, int, int]


class ManifestCache(Protocol):
    """Where manifests are kept between runs (the lead backs it with the state db). A cache
    that can fetch many keys at once also has `get_many(keys) -> {key: value}`, which
    `fingerprint_stages` then uses for the whole batch."""

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, value: bytes) -> None: ...


@dataclasses.dataclass(frozen=True)
class Stored:
    """A computed fingerprint as cached: warnings do not name the stage (several may share it)."""

    manifest: tuple[tuple[str, str], ...]
    locations: tuple[tuple[str, str], ...]
    sources: tuple[Source, ...]
    packages: tuple[tuple[str, str], ...]
    warnings: tuple[str, ...]


def cache_key(
    func: Callable[..., Any],
    extra: Mapping[str, object],
    *,
    include_packages: bool,
    root: Path | None,
    observed: tuple[str, ...] = (),
) -> str:
    """Stage function identity + options + a digest of the cheap values of the `extra` objects.

    The identity includes the function's file: the same module name loaded from another file
    (a moved package, another checkout) must not find the other file's manifest.
    """
    code = getattr(func, "__code__", None)
    where = code.co_filename if isinstance(code, types.CodeType) else ""
    identity = f"{getattr(func, '__module__', '?')}:{getattr(func, '__qualname__', '?')}@{where}"
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    parts = [
        f"fingerprint/{FORMAT}/{version}",
        identity,
        str(int(include_packages)),
        str(root or ""),
    ]
    if extra:
        parts.append(_extra_digest(extra))
    if observed:
        parts.append(short_digest("\n".join(observed).encode("utf-8", "surrogatepass")))
    return "|".join(parts)


def _extra_digest(extra: Mapping[str, object]) -> str:
    texts = []
    for name in sorted(extra):
        try:
            texts.append(f"{name}={encode_value(extra[name], _name_only)}")
        except Unhashable:
            texts.append(f"{name}=unhashable:{type(extra[name]).__qualname__}")
    return short_digest("\n".join(texts).encode("utf-8", "surrogatepass"))


def _name_only(obj: object) -> str | None:
    """Code-like objects by name only: their code is validated through the source files."""
    if isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
        return f"{obj.__module__}.{obj.__qualname__}"
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    return None


def pack(stored: Stored) -> bytes:
    fields = (
        FORMAT,
        stored.manifest,
        stored.locations,
        stored.sources,
        stored.packages,
        stored.warnings,
    )
    return marshal.dumps(fields)


def unpack(data: bytes) -> Stored | None:
    """The stored fingerprint, or None if `data` is from another format or damaged."""
    try:
        fields = marshal.loads(data)
    except (EOFError, ValueError, TypeError):
        return None
    if not isinstance(fields, tuple) or len(fields) != 6 or fields[0] != FORMAT:
        return None
    return Stored(*fields[1:])


def is_fresh(stored: Stored, stats: SourceStats) -> bool:
    """Whether every source file still has the (mtime_ns, size) it had when `stored` was made."""
    get = stats.get
    return all(get(path) == (mtime_ns, size) for path, mtime_ns, size in stored.sources)
