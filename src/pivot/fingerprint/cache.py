"""Manifests kept between runs: the cache protocol, the key of a stage, the stored bytes.

A stored manifest stays valid while every source file it was computed from has the same
(mtime_ns, size); checking that costs one dict lookup per file once the files are stat'ed.
A file the stage's code only imports (none of its definitions is reached) may also change
inside its function bodies: `Stored.surfaces` keeps what importing it ran, and
`stage.fingerprint_stages` accepts such an edit when importing ran no user function, when
the manifest was stored as when it is validated. The sources and surfaces are stored in a row
that the stages reading the same files share (`Shelf`).
Imports nothing of ours but sibling modules.
"""

from __future__ import annotations

import dataclasses
import marshal
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from pivot.fingerprint.sources import SourceStats
from pivot.fingerprint.values import Unhashable, encode_value, plain_state_key, short_digest

__all__ = ["FORMAT", "ManifestCache", "Shelf", "Stored", "cache_key", "is_fresh"]

FORMAT = 6  # bump whenever what goes into a manifest changes

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


class Shelf:
    """A batch's reads and writes of stored manifests.

    A manifest's row holds what is the stage's own (entries, locations, packages, warnings);
    its sources and surfaces, which most stages of a module share, are a row of their own,
    written once per batch: the rows stay small (a row of more than ~1 kB costs the state db
    an overflow page) and so do their reads and writes. A sources row is keyed by the files it
    lists and which of them have a surface, so a later batch overwrites it in place; the
    manifest row records the digest of the sources row it was stored with, and is not used
    when that row now holds other content (a batch that re-walked only some of the stages
    sharing it).

    With a batch's reads, equal parts of many stages' fingerprints (their source files, the
    entries of a helper they all reach) are one object, not one each: at 100,000 stages that
    is most of their memory."""

    def __init__(self, cache: ManifestCache) -> None:
        self.cache = cache
        self._shared: dict[object, Any] = {}
        self._sources: dict[str, tuple[str, tuple[Source, ...], tuple[str, ...]] | None] = {}
        self._packed: dict[tuple[int, int], tuple[object, object, str, str, bytes]] = {}

    def read(self, keys: Sequence[str]) -> dict[str, Stored]:
        """The stored manifests of those `keys` that have a usable one: two queries in all
        when the cache has `get_many`."""
        rows: dict[str, tuple[Any, ...]] = {}
        for key, data in _get_many(self.cache, keys).items():
            fields = _loads(data)
            if fields is not None and len(fields) == 7 and isinstance(fields[3], str):
                rows[key] = fields
        wanted = sorted({fields[3] for fields in rows.values()} - self._sources.keys())
        found = _get_many(self.cache, wanted) if wanted else {}
        for ref in wanted:
            packed = found.get(ref)
            self._sources[ref] = self._unpack_sources(packed) if packed is not None else None
        stored: dict[str, Stored] = {}
        for key, (_format, manifest, locations, ref, digest, packages, warnings) in rows.items():
            sources = self._sources[ref]
            if sources is None or sources[0] != digest:  # overwritten since (or missing)
                continue
            one = self._shared.setdefault  # the equal object the batch holds, else this one
            try:
                stored[key] = Stored(
                    manifest=tuple([one(pair, pair) for pair in manifest]),
                    locations=tuple([one(pair, pair) for pair in locations]),
                    sources=sources[1],
                    packages=one(packages, packages),
                    warnings=warnings,
                    surfaces=sources[2],
                )
            except TypeError:  # damaged: an unhashable part
                continue
        return stored

    def write(self, key: str, stored: Stored) -> None:
        """Store `stored` under `key` (its sources row once per batch)."""
        ref, digest, data = self._pack_sources(stored)
        known = self._sources.get(ref)
        # compared by value: marshal may write equal values as different bytes (it marks
        # objects by their reference counts), and rewriting the row would then orphan the
        # manifests stored with it earlier
        if known is None or (known[1], known[2]) != (stored.sources, stored.surfaces):
            self.cache.put(ref, data)
            known = self._sources[ref] = (digest, stored.sources, stored.surfaces)
        fields = (
            FORMAT,
            stored.manifest,
            stored.locations,
            ref,
            known[0],
            stored.packages,
            stored.warnings,
        )
        self.cache.put(key, marshal.dumps(fields))

    def _pack_sources(self, stored: Stored) -> tuple[str, str, bytes]:
        """(key, digest, bytes) of the sources row of `stored`, once per distinct value."""
        memo = (id(stored.sources), id(stored.surfaces))
        known = self._packed.get(memo)
        if known is None or known[0] is not stored.sources or known[1] is not stored.surfaces:
            data = marshal.dumps((FORMAT, stored.sources, stored.surfaces))
            files = tuple(path for path, _mtime_ns, _size in stored.sources)
            which = tuple(bool(surface) for surface in stored.surfaces)
            version = f"{sys.version_info[0]}.{sys.version_info[1]}"
            name = short_digest(repr((files, which)).encode("utf-8", "surrogatepass"))
            ref = f"fingerprint-sources/{FORMAT}/{version}|{name}"
            known = (stored.sources, stored.surfaces, ref, short_digest(data), data)
            self._packed[memo] = known
        return known[2], known[3], known[4]

    def _unpack_sources(
        self, data: bytes
    ) -> tuple[str, tuple[Source, ...], tuple[str, ...]] | None:
        fields = _loads(data)
        if fields is None or len(fields) != 3:
            return None
        one = self._shared.setdefault
        try:
            return short_digest(data), one(fields[1], fields[1]), one(fields[2], fields[2])
        except TypeError:  # damaged: an unhashable part
            return None


def _loads(data: bytes) -> tuple[Any, ...] | None:
    """The fields of a stored row of this FORMAT, or None (another format, or damaged)."""
    try:
        fields = marshal.loads(data)
    except (EOFError, ValueError, TypeError):
        return None
    if not isinstance(fields, tuple) or not fields or fields[0] != FORMAT:
        return None
    return fields


def _get_many(cache: ManifestCache, keys: Sequence[str]) -> dict[str, bytes]:
    """The cached values of `keys`: in one batch when the cache can (`get_many`)."""
    get_many = getattr(cache, "get_many", None)
    if get_many is not None:
        return dict(get_many(keys))
    return {key: data for key in keys if (data := cache.get(key)) is not None}


def is_fresh(stored: Stored, stats: SourceStats) -> bool:
    """Whether every source file still has the (mtime_ns, size) it had when `stored` was made."""
    get = stats.get
    return all(get(path) == (mtime_ns, size) for path, mtime_ns, size in stored.sources)
