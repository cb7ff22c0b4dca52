"""THE place that decides, per stage, RUN / SKIP / RESTORE, and why.

`status`, `repro --dry-run`, `--explain` and `repro` all call `make_plan`. Workers never decide.
Imports of Pivot: graph, fingerprint, spec, project, store, errors; never execute, api or cli.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pivot import fingerprint
from pivot import project as project_module
from pivot.errors import CacheCorruptError, LockFileError
from pivot.graph import Graph
from pivot.project import Project
from pivot.spec import StageSpec
from pivot.store import lock
from pivot.store.cache import Cache
from pivot.store.lock import LockEntry, OutEntry
from pivot.store.state import FileHasher, StateDB

__all__ = [
    "Action",
    "Context",
    "Plan",
    "Reason",
    "Step",
    "current_params",
    "dep_hash",
    "fingerprints_of",
    "hash_path",
    "lock_file_for",
    "make_plan",
]

FINGERPRINT_NAMESPACE = "fingerprint"


class Action(enum.Enum):
    RUN = "run"
    SKIP = "skip"
    RESTORE = "restore"


@dataclasses.dataclass(frozen=True)
class Reason:
    """Why a stage runs or restores: a one-line summary plus detail lines for --explain."""

    kind: str
    summary: str
    details: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Step:
    """The decision for one stage, with everything needed to act on it and explain it."""

    stage: str
    action: Action
    reasons: tuple[Reason, ...]
    code: Mapping[str, str]
    locations: Mapping[str, str]
    params: Mapping[str, Any]
    previous: LockEntry | None
    packages: Mapping[str, str] = dataclasses.field(default_factory=dict)
    outputs_intact: bool = False  # workspace outputs match the lock (enables early cut-off)


@dataclasses.dataclass(frozen=True)
class Plan:
    """Decisions for the selected stages in topological order."""

    steps: tuple[Step, ...]
    warnings: tuple[str, ...]

    def by_action(self, action: Action) -> tuple[Step, ...]:
        return tuple(step for step in self.steps if step.action is action)

    @property
    def nothing_to_do(self) -> bool:
        return all(step.action is Action.SKIP for step in self.steps)


@dataclasses.dataclass(frozen=True)
class Context:
    """What planning (and executing) reads: the project, its graph, state db and cache."""

    project: Project
    graph: Graph
    state: StateDB
    cache: Cache

    @property
    def hasher(self) -> FileHasher:
        return FileHasher(self.state)

    @functools.cached_property
    def ignore(self) -> Callable[[str], bool] | None:
        """`.pivotignore` as a predicate over project-relative paths (read on first use)."""
        return project_module.ignore_matcher(self.project.root)


class _StateCache:
    """The fingerprint layer's ManifestCache, backed by the state db's key-value table."""

    def __init__(self, state: StateDB) -> None:
        self._state = state

    def get(self, key: str) -> bytes | None:
        return self._state.get_value(FINGERPRINT_NAMESPACE, key)

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        return self._state.get_values(FINGERPRINT_NAMESPACE, keys)

    def put(self, key: str, value: bytes) -> None:
        self._state.set_value(FINGERPRINT_NAMESPACE, key, value)


def lock_file_for(project: Project, spec: StageSpec) -> Path:
    """A stage's lock file: in its pipeline's state dir when that lies inside the project."""
    state_dir = spec.state_dir
    if state_dir is None or not state_dir.is_relative_to(project.root):
        state_dir = project.pivot_dir
    return lock.lock_path(state_dir, spec.name)


def current_params(spec: StageSpec) -> dict[str, Any]:
    return spec.params.model_dump(mode="json") if spec.params is not None else {}


def _fingerprint_extra(spec: StageSpec) -> dict[str, object]:
    extra: dict[str, object] = {}
    for dep in spec.deps:
        extra[f"loader:dep:{dep.name}"] = dep.loader
    for out in spec.outs:
        extra[f"loader:out:{out.name}"] = out.loader
    if spec.params is not None:
        cls = type(spec.params)
        extra[f"params:{cls.__module__}.{cls.__qualname__}"] = cls
    return extra


def fingerprints_of(ctx: Context, specs: Sequence[StageSpec]) -> dict[str, fingerprint.Fingerprint]:
    """Code fingerprints of many stages in one batch (one stat per source file, shared parses)."""
    requests = [fingerprint.StageRequest(s.name, s.func, _fingerprint_extra(s)) for s in specs]
    return fingerprint.fingerprint_stages(
        requests,
        cache=_StateCache(ctx.state),
        root=ctx.project.root,
        include_packages=ctx.project.config.fingerprint_packages,
    )


def hash_path(
    hasher: FileHasher, root: Path, path: str, ignore: Callable[[str], bool] | None = None
) -> tuple[str, bool] | None:
    """(hash, is_directory) of a workspace path, or None when it does not exist. In a
    directory, files whose project-relative path `ignore` accepts are left out."""
    full = root / path
    try:
        if path.endswith("/") or full.is_dir():
            if not full.is_dir():
                return None
            prefix = path.rstrip("/") + "/"
            skip = (lambda relative: ignore(prefix + relative)) if ignore else None
            return hasher.hash_directory(full, ignore=skip)[0], True
        return hasher.hash_file(full), False
    except FileNotFoundError:
        return None


def dep_hash(ctx: Context, path: str) -> str | None:
    """A dependency's workspace hash; `.pivotignore` applies inside directories no stage writes
    (a stage's outputs are hashed whole, as their producer recorded them)."""
    ignore = None if ctx.graph.producers(path) else ctx.ignore
    found = hash_path(ctx.hasher, ctx.project.root, path, ignore)
    return found[0] if found else None


# --- reasons ----------------------------------------------------------------------------------


def _code_reason(
    old: Mapping[str, str], new: Mapping[str, str], locations: Mapping[str, str]
) -> Reason | None:
    changed = sorted(name for name in set(old) | set(new) if old.get(name) != new.get(name))
    if not changed:
        return None
    details = []
    for name in changed:
        where = f" ({locations[name]})" if name in locations else ""
        state = "added" if name not in old else "removed" if name not in new else "changed"
        details.append(f"{state}: {name}{where}")
    shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
    return Reason("code", f"code changed: {shown}", tuple(details))


def _params_reason(old: Mapping[str, Any], new: Mapping[str, Any]) -> Reason | None:
    fields = sorted(
        name for name in set(old) | set(new) if old.get(name, "<unset>") != new.get(name, "<unset>")
    )
    if not fields:
        return None
    details = tuple(
        f"{name}: {old.get(name, '<unset>')!r} -> {new.get(name, '<unset>')!r}" for name in fields
    )
    return Reason("params", f"params changed: {', '.join(fields)}", details)


def _paths_reason(kind: str, label: str, paths: Sequence[str]) -> Reason | None:
    if not paths:
        return None
    shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
    return Reason(kind, f"{label}: {shown}", tuple(paths))


# --- dependency and output checks ---------------------------------------------------------------


class _Planner:
    """Walks the selected stages in order, remembering the decisions already made upstream."""

    def __init__(
        self, ctx: Context, force: frozenset[str], prints: Mapping[str, fingerprint.Fingerprint]
    ) -> None:
        self.ctx = ctx
        self.prints = prints
        self.force = force
        self.steps: dict[str, Step] = {}
        self.warnings: list[str] = []
        self.hasher = ctx.hasher
        self.producer_of: dict[str, str] = {
            path: spec.name for spec in ctx.graph.stages.values() for path in spec.out_paths
        }
        self._locks: dict[str, LockEntry | None] = {}

    def previous(self, spec: StageSpec) -> LockEntry | None:
        if spec.name not in self._locks:
            path = lock_file_for(self.ctx.project, spec)
            try:
                self._locks[spec.name] = lock.read_lock(path)
            except LockFileError as error:
                self.warnings.append(f"stage '{spec.name}': {error}; treating it as never run")
                self._locks[spec.name] = None
        return self._locks[spec.name]

    def recorded_output_hash(self, path: str) -> str | None:
        """The hash a producer planned in this run (to skip or restore) records for `path`, or
        for a file in its directory output; None when no such lock says. A producer outside the
        selection (`pivot run B`) is not consulted: its outputs are used as they are on disk."""
        parts = path.split("/")
        candidates = [path] + [
            "/".join(parts[:depth]) + "/" for depth in range(len(parts) - 1, 0, -1)
        ]
        for candidate in candidates:
            producer = self.producer_of.get(candidate)
            if producer not in self.steps:
                continue
            entry = self.previous(self.ctx.graph.stages[producer])
            recorded = {out.path: out for out in entry.outs} if entry else {}
            if candidate not in recorded:
                continue
            if candidate == path:
                return recorded[path].hash
            try:
                files = self.ctx.cache.load_manifest(recorded[candidate].hash).as_dict()
            except CacheCorruptError:
                return None
            return files.get(path[len(candidate) :])
        return None

    def expected_dep_hash(self, path: str) -> str | None:
        """A dependency's hash: what its producer's lock records, else the workspace's."""
        recorded = self.recorded_output_hash(path)
        if recorded is not None:
            return recorded
        return dep_hash(self.ctx, path)

    def changed_deps(self, spec: StageSpec, entry: LockEntry) -> list[str]:
        recorded = {dep.path: dep.hash for dep in entry.deps}
        current = set(spec.dep_paths)
        changed = sorted((set(recorded) - current) | (current - set(recorded)))
        for path in sorted(current & set(recorded)):
            if self.expected_dep_hash(path) != recorded[path]:
                changed.append(path)
        return changed

    def output_problems(self, spec: StageSpec, entry: LockEntry) -> tuple[list[str], bool]:
        """(paths missing or modified, whether the cache can restore all of them)."""
        root = self.ctx.project.root
        recorded = {out.path: out for out in entry.outs}
        if set(recorded) != set(spec.out_paths):
            return sorted(set(recorded) ^ set(spec.out_paths)), False
        problems: list[str] = []
        restorable = True
        for out in entry.outs:
            found = hash_path(self.hasher, root, out.path)
            if found is None or found[0] != out.hash:
                problems.append(out.path)
                restorable = restorable and out.cache and _in_cache(self.ctx.cache, out)
        return problems, restorable

    def decide(self, spec: StageSpec) -> Step:
        print_ = self.prints[spec.name]
        self.warnings.extend(print_.warnings)
        params = current_params(spec)
        entry = self.previous(spec)
        base: dict[str, Any] = dict(
            code=print_.manifest,
            locations=print_.locations,
            params=params,
            previous=entry,
            packages=print_.packages,
        )
        reasons: list[Reason] = []
        if spec.name in self.force:
            reasons.append(Reason("forced", "forced"))
        if entry is None:
            reasons.append(Reason("new", "no previous run"))
            return Step(spec.name, Action.RUN, tuple(reasons), **base)
        reasons += [
            r
            for r in (
                _code_reason(entry.code, print_.manifest, print_.locations),
                _params_reason(entry.params, params),
            )
            if r
        ]
        running = sorted(
            up
            for up in self.ctx.graph.upstream[spec.name]
            if up in self.steps and self.steps[up].action is Action.RUN
        )
        if running:
            reasons.append(
                Reason(
                    "upstream", f"upstream stage(s) will run: {', '.join(running)}", tuple(running)
                )
            )
            if len(reasons) == 1:
                base["outputs_intact"] = not self.output_problems(spec, entry)[0]
        else:
            dep_reason = _paths_reason(
                "deps", "dependencies changed", self.changed_deps(spec, entry)
            )
            reasons += [dep_reason] if dep_reason else []
        if reasons:
            return Step(spec.name, Action.RUN, tuple(reasons), **base)
        problems, restorable = self.output_problems(spec, entry)
        if not problems:
            return Step(spec.name, Action.SKIP, (), **base)
        if restorable:
            reason = _paths_reason(
                "restore", "outputs missing or modified, restoring from cache", problems
            )
            return Step(spec.name, Action.RESTORE, (reason,) if reason else (), **base)
        reason = _paths_reason(
            "outputs", "outputs missing or modified and not in the cache", problems
        )
        return Step(spec.name, Action.RUN, (reason,) if reason else (), **base)


def _in_cache(cache: Cache, out: OutEntry) -> bool:
    if not out.is_directory:
        return cache.has(out.hash)
    try:
        manifest = cache.load_manifest(out.hash)
    except CacheCorruptError:
        return False
    return all(cache.has(digest) for _, digest in manifest)


def make_plan(ctx: Context, selected: Sequence[str], *, force: Sequence[str] = ()) -> Plan:
    """Decide RUN / SKIP / RESTORE for `selected` stages (in topological order)."""
    specs = [ctx.graph.stages[name] for name in selected]
    root = str(ctx.project.root)
    ctx.state.preload(
        os.path.join(root, path) for spec in specs for path in (*spec.dep_paths, *spec.out_paths)
    )
    prints = fingerprints_of(ctx, specs)
    planner = _Planner(ctx, frozenset(force), prints)
    for name in selected:
        planner.steps[name] = planner.decide(ctx.graph.stages[name])
    return Plan(tuple(planner.steps.values()), tuple(dict.fromkeys(planner.warnings)))
