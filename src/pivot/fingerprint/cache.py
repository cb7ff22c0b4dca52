"""Manifests kept between runs: the cache protocol, the key of a stage, the stored bytes.

A stored manifest stays valid while every source file it was computed from has the same
(mtime_ns, size); checking that costs one dict lookup per file once the files are stat'ed.
A file the stage's code only imports (none of its definitions is reached) may also change
inside its function bodies: `Stored.surfaces` keeps what importing it ran, and
`stage.fingerprint_stages` accepts such an edit when importing ran no user function, when
the manifest was stored as when it is validated.
Imports nothing of ours but sibling modules.
"""

from __future__ import annotations

import dataclasses
import marshal
import sys
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pivot.fingerprint.sources import SourceStats
from pivot.fingerprint.values import Unhashable, encode_value, plain_state_key, short_digest

__all__ = ["FORMAT", "ManifestCache", "Stored", "cache_key", "is_fresh", "pack", "unpack"]

FORMAT = 5  # bump whenever what goes into a manifest changes

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
    # per source, in order: the `facts.ModuleFacts.surface` of a module whose code the stage
    # does not reach (it is only imported), "" for the others (which must not change at all)
    surfaces: tuple[str, ...] = ()


def cache_key(
    func: Callable[..., Any],
    extra: Mapping[str, object],
    *,
    include_packages: bool,
    root: Path | None,
    observed: tuple[str, ...] = (),
    memo: dict[object, str] | None = None,
    plain_kinds: dict[type, bool] | None = None,
) -> str:
    """Stage function identity + options + a digest of the cheap values of the `extra` objects.

    The identity includes the function's file: the same module name loaded from another file
    (a moved package, another checkout) must not find the other file's manifest. `memo` keeps
    the texts of simple values (a loader with plain settings) across the calls of one batch,
    `plain_kinds` which classes have such values (see `plain_state_key`).
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
        kinds = {} if plain_kinds is None else plain_kinds
        parts.append(_extra_digest(extra, {} if memo is None else memo, kinds))
    if observed:
        parts.append(short_digest("\n".join(observed).encode("utf-8", "surrogatepass")))
    return "|".join(parts)


def _extra_digest(
    extra: Mapping[str, object], memo: dict[object, str], kinds: dict[type, bool]
) -> str:
    texts = [f"{name}={_value_text(extra[name], memo, kinds)}" for name in sorted(extra)]
    return short_digest("\n".join(texts).encode("utf-8", "surrogatepass"))


def _value_text(value: object, memo: dict[object, str], kinds: dict[type, bool]) -> str:
    key = plain_state_key(value, kinds)
    if key is not None and key in memo:
        return memo[key]
    try:
        text = encode_value(value, _name_only)
    except Unhashable:
        text = f"unhashable:{type(value).__qualname__}"
    if key is not None:
        memo[key] = text
    return text


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
        stored.surfaces,
    )
    return marshal.dumps(fields)


def unpack(data: bytes, shared: dict[object, Any] | None = None) -> Stored | None:
    """The stored fingerprint, or None if `data` is from another format or damaged.

    With `shared` (one dict for a batch), equal parts of many stages' fingerprints (their
    source files, the entries of a helper they all reach) are one object, not one each:
    at 100,000 stages that is most of their memory."""
    try:
        fields = marshal.loads(data)
    except (EOFError, ValueError, TypeError):
        return None
    if not isinstance(fields, tuple) or len(fields) != 7 or fields[0] != FORMAT:
        return None
    if shared is None:
        return Stored(*fields[1:])
    _format, manifest, locations, sources, packages, warnings, surfaces = fields
    try:
        return Stored(
            manifest=tuple(_one(shared, pair) for pair in manifest),
            locations=tuple(_one(shared, pair) for pair in locations),
            sources=_one(shared, sources),
            packages=_one(shared, packages),
            warnings=warnings,
            surfaces=_one(shared, surfaces),
        )
    except TypeError:  # damaged: an unhashable part
        return None


_T = TypeVar("_T")


def _one(shared: dict[object, Any], value: _T) -> _T:
    """The object equal to `value` that `shared` holds (`value` itself the first time)."""
    found: _T | None = shared.get(value)
    if found is None:
        shared[value] = found = value
    return found


def is_fresh(stored: Stored, stats: SourceStats) -> bool:
    """Whether every source file still has the (mtime_ns, size) it had when `stored` was made."""
    get = stats.get
    return all(get(path) == (mtime_ns, size) for path, mtime_ns, size in stored.sources)
