"""The fingerprint of a stage: its manifest, assembled from what its code reaches, cached by sources.

Imports of Pivot: its sibling modules, `spec` (to read a function's declared loaders) and
`errors`; never plan, execute, api or cli.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
import sys
import types
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from pivot import _collector
from pivot.errors import PivotError
from pivot.fingerprint import forked
from pivot.fingerprint.cache import ManifestCache, Shelf, Stored, cache_key, is_fresh
from pivot.fingerprint.code import entry_name
from pivot.fingerprint.model import Item, Node, digest_of
from pivot.fingerprint.observe import import_reads
from pivot.fingerprint.origin import Origins, module_file, source_path
from pivot.fingerprint.reach import Reach
from pivot.fingerprint.sources import Sources, SourceStats
from pivot.spec.extraction import code_objects, read_interface

__all__ = [
    "Fingerprint",
    "StageRequest",
    "declared_extra",
    "fingerprint_stage",
    "fingerprint_stages",
    "get_stage_fingerprint",
]


@dataclasses.dataclass(frozen=True)
class Fingerprint:
    """A stage's code identity: entry name -> hash, and what explains and validates it."""

    manifest: Mapping[str, str]
    locations: Mapping[str, str]  # entry -> "relative/file.py:LINE"
    sources: tuple[tuple[str, int, int], ...]  # every source file read: (abs path, mtime_ns, size)
    packages: Mapping[str, str]  # third-party distributions reached -> version
    warnings: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class StageRequest:
    """One stage to fingerprint in a batch: `extra` maps caller-chosen entry names to objects."""

    stage_name: str
    func: Callable[..., Any]
    extra: Mapping[str, object] = dataclasses.field(default_factory=dict)
    observed: tuple[str, ...] = ()  # what its last run entered, beyond the static reach


def get_stage_fingerprint(func: Callable[..., Any]) -> dict[str, str]:
    """The manifest of a stage function: entry name -> hash of what its code is made of.

    Exactly the `code` a lock file records for the function registered as a stage: besides the
    code and data it reaches, the loader of each dependency and output by name with its declared
    paths (`loader:out:model (model.pkl)`) and its params class (`params:module.Class`); see
    `pivot.spec.extraction.code_objects`.
    """
    name = str(getattr(func, "__qualname__", func))
    return dict(fingerprint_stage(func, stage_name=name, extra=declared_extra(func, name)).manifest)


def declared_extra(func: Callable[..., Any], name: str) -> dict[str, object]:
    """The declared entries of a bare stage function; {} when its annotations are unusable."""
    try:
        return code_objects(read_interface(func, name=name))
    except PivotError:
        return {}


def fingerprint_stage(
    func: Callable[..., Any],
    *,
    stage_name: str,
    extra: Mapping[str, object] = types.MappingProxyType({}),
    cache: ManifestCache | None = None,
    root: Path | None = None,
    include_packages: bool = False,
    stats: SourceStats | None = None,
) -> Fingerprint:
    """The fingerprint of one stage; see `fingerprint_stages` to share work across stages."""
    request = StageRequest(stage_name, func, extra)
    found = fingerprint_stages(
        [request], cache=cache, root=root, include_packages=include_packages, stats=stats
    )
    return found[stage_name]


def fingerprint_stages(
    requests: Sequence[StageRequest],
    *,
    cache: ManifestCache | None = None,
    root: Path | None = None,
    include_packages: bool = False,
    stats: SourceStats | None = None,
    share: bool = False,
) -> dict[str, Fingerprint]:
    """Fingerprints of many stages, by stage name, with one stat per source file for the batch.

    A cached manifest is used while all its source files are unchanged; otherwise it is
    computed (sharing parsed modules and nodes between stages) and cached when its files are
    settled (not written right before the code was loaded, see `SourceStats`). With `share`,
    when many stages of several modules must be walked, a forked copy of this process walks
    the stages of some of the modules on another core (`_assemble_all`); the caller must not
    need to know what files the walks read (the copy's reads are not seen here).
    """
    stats = stats if stats is not None else SourceStats()
    results: dict[str, Fingerprint] = {}
    memo: dict[object, str] = {}
    plain_kinds: dict[type, bool] = {}
    keys = [
        cache_key(
            r.func,
            r.extra,
            include_packages=include_packages,
            root=root,
            observed=r.observed,
            memo=memo,
            plain_kinds=plain_kinds,
        )
        if cache
        else ""
        for r in requests
    ]
    shelf = Shelf(cache) if cache is not None else None
    validity = _Validity(stats, root, cache)
    # A batch makes many small objects (syntax trees, nodes) and no cycles of note, and each
    # automatic collection walks every object the user's pipeline holds (measured: 40% of a
    # first fingerprinting of 10,000 stages): the collector is paused for the batch.
    with _collector.paused():
        found = shelf.read(keys) if shelf is not None else {}
        walk: list[int] = []  # the requests whose stored fingerprint does not hold
        for index, (request, key) in enumerate(zip(requests, keys)):
            stored = found.get(key)
            sources = validity.sources(stored) if stored is not None else None
            if stored is not None and sources is not None:
                results[request.stage_name] = _fingerprint(stored, request.stage_name, sources)
            else:
                walk.append(index)
        if walk:
            assembler = _Assembler(stats, root, include_packages, cache)
            assembler.reach.sources.read_whole(_stage_files([requests[i] for i in walk]))

            def made(index: int, stored: Stored, settled: bool) -> None:
                if shelf is not None and settled:
                    shelf.write(keys[index], assembler.kept(stored))
                name = requests[index].stage_name
                results[name] = _fingerprint(stored, name)

            _assemble_all(assembler, requests, walk, made, share=share)
            results = {r.stage_name: results[r.stage_name] for r in requests}  # in their order
        reach = stats.shared.get("reach")
        if isinstance(reach, Reach):
            reach.sources.save()
    return results


_Sources = tuple[tuple[str, int, int], ...]

SHARE_AT_LEAST = 400
"""Stages a forked copy must have to walk for `_assemble_all` to start one (a fork, and sending
back what it made, cost about as much as walking 20-40 stages)."""
SHARE_OF_COPY = 0.55
"""The share of the walks given to the copy: this process also stores what both made."""


def _assemble_all(
    assembler: _Assembler,
    requests: Sequence[StageRequest],
    walk: Sequence[int],
    made: Callable[[int, Stored, bool], None],
    *,
    share: bool,
) -> None:
    """`made(index, *assembler.assemble(requests[index]))` for each index in `walk`, in order.

    With `share`, a forked copy of this process (`forked`) assembles the stages of some modules
    (a module's stages stay together: its parse and facts are made once), with whether those
    modules are quiet (`quiet.ImportTime`, which `made` asks about every loaded user module),
    while this process assembles the others and judges the other modules. If the copy fails,
    this process assembles its stages too, so an error shows as it would have."""
    theirs = _copy_share(requests, walk) if share and forked.possible() else []
    copy = None
    if theirs:
        assembler.reach.sources.save()  # what was read until now is stored here, not sent back
        _ = assembler.stats.loaded_ns  # from this process's start (a fork starts later)
        apart = [requests[index] for index in theirs]
        files = _stage_files(apart)
        copy = forked.start(lambda: _assembled_apart(assembler, apart, files))
    if copy is None:
        for index in walk:
            made(index, *assembler.assemble(requests[index]))
        return
    sources, imports = assembler.reach.sources, assembler.reach.import_time
    try:
        wanted = set(theirs)
        found = {i: assembler.assemble(requests[i]) for i in walk if i not in wanted}
        imports.prepare(assembler.root, skip=files)
        sent = copy.result()
    finally:
        copy.stop()
    if isinstance(sent, tuple) and len(sent) == 3 and len(sent[0]) == len(theirs):
        found.update(zip(theirs, sent[0]))
        if sources.store is not None:
            for key, value in sent[1]:
                sources.store.put(key, value)
        imports.adopt(sent[2])
    else:  # the copy failed
        found.update((index, assembler.assemble(requests[index])) for index in theirs)
    for index in walk:
        made(index, *found[index])


def _copy_share(requests: Sequence[StageRequest], walk: Sequence[int]) -> list[int]:
    """The indexes (of `walk`) of the requests a forked copy should assemble: those of whole
    stage modules, about `SHARE_OF_COPY` of them; [] when too few to be worth a fork."""
    by_file: dict[str | None, list[int]] = {}
    for index in walk:
        func = _unwrapped(requests[index].func)
        path = func.__code__.co_filename if isinstance(func, types.FunctionType) else None
        by_file.setdefault(path, []).append(index)
    mine = by_file.pop(None, [])
    theirs: list[int] = []
    for group in sorted(by_file.values(), key=len, reverse=True):
        if len(theirs) * (1 - SHARE_OF_COPY) <= len(mine) * SHARE_OF_COPY:
            theirs += group
        else:
            mine += group
    return sorted(theirs) if len(theirs) >= SHARE_AT_LEAST and mine else []


class _Kept:
    """The facts store of a forked copy: it reads none (the copy must not use this process's
    database connection; facts not stored are read from the source again) and keeps what it
    would write, to send back."""

    def __init__(self) -> None:
        self.written: list[tuple[str, bytes]] = []

    def get(self, key: str) -> bytes | None:
        return None

    def put(self, key: str, value: bytes) -> None:
        self.written.append((key, value))


def _assembled_apart(
    assembler: _Assembler, requests: Sequence[StageRequest], files: Collection[str]
) -> tuple[list[tuple[Stored, bool]], list[tuple[str, bytes]], dict[str, bool]]:
    """In a forked copy: each request assembled, the facts of the files its walks read, and
    whether the modules of `files` are quiet."""
    kept = _Kept()
    sources = assembler.reach.sources
    if sources.store is not None:
        sources.store = kept
    made = [assembler.assemble(request) for request in requests]
    verdicts = assembler.reach.import_time.verdicts(files)
    sources.save()
    return made, kept.written, verdicts


class _Validity:
    """Whether a stored fingerprint still holds, decided once per distinct set of sources (the
    stages of one module and helper share theirs).

    It holds while every source file is unchanged, or when each changed file is one the
    stage's code only imports (none of its definitions is reached), it changed inside function
    bodies only (what importing it runs, its `surface`, is the same), and importing the user's
    modules runs none of their functions (`quiet.ImportTime`): then nothing the stage reaches
    can differ, and the stage is not walked again. See docs/code-change-detection.md.
    """

    def __init__(self, stats: SourceStats, root: Path | None, store: ManifestCache | None) -> None:
        self.stats = stats
        self.root = os.path.abspath(root) if root is not None else None
        self.store = store
        self._known: dict[tuple[int, int], tuple[object, object, _Sources | None]] = {}

    def sources(self, stored: Stored) -> _Sources | None:
        """The stored fingerprint's sources as they are now if it holds, else None."""
        key = (id(stored.sources), id(stored.surfaces))
        known = self._known.get(key)
        if known is None or known[0] is not stored.sources or known[1] is not stored.surfaces:
            now: _Sources | None = stored.sources
            if not is_fresh(stored, self.stats):
                get = self.stats.get
                now = tuple((p, *get(p)) for p, _, _ in stored.sources)
                now = now if self._only_bodies(stored) else None
            known = self._known[key] = (stored.sources, stored.surfaces, now)
        return known[2]

    def _only_bodies(self, stored: Stored) -> bool:
        if not stored.surfaces:
            return False
        reach = _reach(self.stats, self.store)
        get = self.stats.get
        for (path, mtime_ns, size), surface in zip(stored.sources, stored.surfaces):
            if get(path) == (mtime_ns, size):
                continue
            if not surface:
                return False
            found = reach.sources.facts(path)
            if found is None or found.surface != surface:
                return False
        # surfaces are stored only while importing is quiet (`_Assembler.kept`): it still is
        return _imports_quiet(reach, self.root, stored.sources)


def _imports_quiet(reach: Reach, root: str | None, sources: _Sources) -> bool:
    """Whether importing the user's modules runs none of their functions: every loaded user
    module under `root` (every one, without a root) is quiet, and so is every user module among
    a stage's `sources` from outside it."""
    imports = reach.import_time
    if not imports.scope_quiet(root):
        return False
    inside = os.path.join(root, "") if root is not None else None
    user = reach.sources.user_module_of
    return all(
        imports.file_quiet(path)
        for path, _mtime_ns, _size in sources
        if inside is not None and not path.startswith(inside) and user(path)
    )


def _stage_files(requests: Sequence[StageRequest]) -> set[str]:
    """The files defining the batch's stage functions (their walks read them whole)."""
    funcs = [_unwrapped(r.func) for r in requests]
    names = {f.__code__.co_filename for f in funcs if isinstance(f, types.FunctionType)}
    return {source_path(name) for name in names}


def _unwrapped(func: object) -> object:
    """A stage function under its wrappers (`functools.wraps` sets `__wrapped__`)."""
    while isinstance(getattr(func, "__wrapped__", None), types.FunctionType):
        func = func.__wrapped__  # type: ignore[attr-defined]
    return func


def _fingerprint(stored: Stored, stage_name: str, sources: _Sources | None = None) -> Fingerprint:
    return Fingerprint(
        manifest=dict(stored.manifest),
        locations=dict(stored.locations),
        sources=stored.sources if sources is None else sources,
        packages=dict(stored.packages),
        warnings=tuple(f"stage {stage_name!r}: {w}" for w in stored.warnings),
    )


def _reach(stats: SourceStats, store: ManifestCache | None) -> Reach:
    """The run's walker, kept in `stats` so that every call of a run shares parsed sources;
    `store` keeps the facts of source files between runs."""
    reach = stats.shared.get("reach")
    if not isinstance(reach, Reach):
        reach = stats.shared["reach"] = Reach(Sources(stats, Origins(), store))
    elif reach.sources.store is None:
        reach.sources.store = store
    return reach


class _Assembler:
    """Computes manifests for one run, sharing parsed sources and nodes between stages."""

    def __init__(
        self,
        stats: SourceStats,
        root: Path | None,
        include_packages: bool,
        store: ManifestCache | None = None,
    ) -> None:
        self.stats = stats
        self.reach = _reach(stats, store)
        self.origins = self.reach.origins
        self.root = os.path.abspath(root) if root is not None else None
        self.include_packages = include_packages
        self.shown: dict[str, str] = {}  # file -> as shown in locations
        self.source_sets: dict[frozenset[str], tuple[tuple[tuple[str, int, int], ...], bool]] = {}
        self.surface_sets: dict[tuple[object, frozenset[str]], tuple[str, ...]] = {}
        self.quiet_sets: dict[int, tuple[_Sources, bool]] = {}  # by id of `_sources` values
        self.observed_files: set[str] = set()

    def assemble(self, request: StageRequest) -> tuple[Stored, bool]:
        """The stored form of a stage's fingerprint, and whether its sources are settled."""
        self.observed_files = set()
        observed, resolved = self._observed(request.observed)
        nodes = self.reach.walk([*self._roots(request), *observed])
        digests: dict[str, set[str]] = {}
        locations: dict[str, str] = {}
        files: set[str] = set()
        warnings: dict[str, None] = {}
        top_levels: set[str] = set()
        for node in nodes:
            digests.setdefault(node.entry, set()).add(self._digest(node))
            if node.location is not None and node.entry not in locations:
                locations[node.entry] = self._location(*node.location)
            files |= node.files
            warnings.update(dict.fromkeys(node.warnings))
            top_levels |= node.packages
        manifest = {e: min(d) if len(d) == 1 else digest_of(*sorted(d)) for e, d in digests.items()}
        manifest.update(resolved)
        reached = {node.location[0] for node in nodes if node.location is not None}
        data = {d for path in reached for d in import_reads(path)} | self.observed_files
        for path in sorted(data):  # read at import time by a module whose code is reached
            files.add(path)
            manifest[f"file:{self._shown(path)}"] = _file_digest(path)
        packages = self._packages(top_levels, files)
        if self.include_packages:
            manifest.update({f"package:{n}": digest_of(f"{n}=={v}") for n, v in packages.items()})
        sources, settled = self._sources(frozenset(files))
        stored = Stored(
            manifest=tuple(sorted(manifest.items())),
            locations=tuple(sorted(locations.items())),
            sources=sources,
            packages=tuple(sorted(packages.items())),
            warnings=tuple(warnings),
            surfaces=self._surfaces(sources, frozenset(reached | self._linked_files(nodes))),
        )
        failed = any(node.failed for node in nodes)
        return stored, not failed and settled

    def _sources(self, files: frozenset[str]) -> tuple[tuple[tuple[str, int, int], ...], bool]:
        """The (path, mtime_ns, size) of `files`, sorted, and whether all are settled; one
        value for every stage that read the same files (most stages of a module do)."""
        known = self.source_sets.get(files)
        if known is None:
            listed = tuple(sorted((p, *self.stats.get(p)) for p in files))
            known = self.source_sets[files] = (listed, all(self.stats.is_settled(p) for p in files))
        return known

    def _surfaces(
        self, sources: tuple[tuple[str, int, int], ...], reached: frozenset[str]
    ) -> tuple[str, ...]:
        """`Stored.surfaces` of a stage: the surface of each source that is a user module none
        of whose definitions the stage reaches (it is only imported), "" for the others; ()
        when there is no such module."""
        key = (sources, reached)
        known = self.surface_sets.get(key)
        if known is None:
            modules = self.reach.sources
            found: list[str] = []
            for path, _mtime_ns, _size in sources:
                module = modules.user_module_of(path) if path not in reached else None
                facts = modules.facts(path) if module is not None else None
                found.append(facts.surface if facts is not None else "")
            known = self.surface_sets[key] = tuple(found) if any(found) else ()
        return known

    def kept(self, stored: Stored) -> Stored:
        """`stored` as cached: without surfaces when importing the user's modules runs any of
        their functions (a body edit may then change what the stage reads, and whether
        importing still runs them is not known when the manifest is validated later)."""
        if not stored.surfaces:
            return stored
        known = self.quiet_sets.get(id(stored.sources))
        if known is None or known[0] is not stored.sources:
            quiet = _imports_quiet(self.reach, self.root, stored.sources)
            known = self.quiet_sets[id(stored.sources)] = (stored.sources, quiet)
        return stored if known[1] else dataclasses.replace(stored, surfaces=())

    def _roots(self, request: StageRequest) -> list[Item]:
        """The stage function (unwrapped), a user wrapper around it, and the extra objects."""
        func: object = request.func
        underlying = _unwrapped(func)
        if isinstance(underlying, types.FunctionType):
            roots = [Item("stage", underlying)]
        else:  # not a function (discovery rejects these): fingerprint it as a value
            name = str(getattr(func, "__qualname__", type(func).__qualname__))
            roots = [Item("value", func, str(getattr(func, "__module__", "?")), name)]
        wrapper = underlying is not func and isinstance(func, types.FunctionType)
        if wrapper and self.reach.is_user_function(func):  # type: ignore[arg-type]
            roots.append(Item("func", func))
        roots += [Item("extra", obj, name=name) for name, obj in sorted(request.extra.items())]
        return roots

    def _linked_files(self, nodes: list[Node]) -> set[str]:
        """Files defining the classes (and methods) whose code `_digest` adds to extra entries."""
        found: set[str] = set()
        for node in nodes:
            for item in node.links:
                class_node = self.reach.node(item)
                methods = [c for c in class_node.children if c.kind == "method"]
                linked = [class_node, *(self.reach.node(c) for c in methods)]
                found |= {n.location[0] for n in linked if n.location is not None}
        return found

    def _digest(self, node: Node) -> str:
        """An extra entry also changes with the code of its class and that class's methods."""
        if not node.links:
            return node.digest
        linked = []
        for item in node.links:
            class_node = self.reach.node(item)
            linked.append(class_node.digest)
            linked += [self.reach.node(c).digest for c in class_node.children if c.kind == "method"]
        return digest_of(node.digest, *linked)

    def _location(self, path: str, line: int) -> str:
        return f"{self._shown(path)}:{line}"

    def _shown(self, path: str) -> str:
        shown = self.shown.get(path)
        if shown is None:
            relative = os.path.relpath(path, self.root) if self.root is not None else path
            shown = self.shown[path] = Path(relative).as_posix()
        return shown

    def _observed(self, refs: Sequence[str]) -> tuple[list[Item], dict[str, str]]:
        """Roots for what the last run entered, and an `observed:<ref>` entry per reference
        naming what it resolves to now (a definition removed or renamed changes it)."""
        roots: list[Item] = []
        entries: dict[str, str] = {}
        for ref in refs:
            kind, _, rest = ref.partition(":")
            if kind == "file":  # read at import time by a module the run imported
                path = os.path.abspath(os.path.join(self.root or "", rest))
                self.observed_files.add(path)
                continue
            item = self.reach.observed_item(kind, rest)
            entries[f"observed:{ref}"] = digest_of(
                entry_name(item) if item is not None else "missing"
            )
            if item is not None:
                roots.append(item)
        return roots, entries

    def _packages(self, top_levels: set[str], files: set[str]) -> dict[str, str]:
        """Distributions reached -> version; their top-level module files become sources."""
        packages: dict[str, str] = {}
        for name in sorted(top_levels):
            found = self.origins.distribution(name)
            if found is None:
                continue
            packages[found[0]] = found[1]
            path = _package_file(name)
            if path is not None:  # an upgrade rewrites it: the cached versions are then stale
                files.add(path)
        return packages


def _file_digest(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return hashlib.blake2b(handle.read(), digest_size=16).hexdigest()
    except OSError:
        return "missing"


def _package_file(name: str) -> str | None:
    """The file of a top-level library module, imported or not (never importing it)."""
    module = sys.modules.get(name)
    if isinstance(module, types.ModuleType):
        return module_file(module)
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    origin = getattr(spec, "origin", None)
    return os.path.abspath(origin) if isinstance(origin, str) and os.path.isabs(origin) else None
