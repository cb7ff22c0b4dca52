"""THE place that decides, per stage, RUN / SKIP / RESTORE, and why.

`status`, `repro --dry-run`, `--explain`, `checkout` and `repro` all ask this module; the runner
only applies its decisions (an early cut-off included) and workers never decide.
Imports of Pivot: workspace, graph, fingerprint, spec, project, store, errors; never execute,
api or cli.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import os
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pivot import _collector
from pivot import spec as spec_module
from pivot.errors import CacheCorruptError, LockFileError, PathEscapeError
from pivot.spec import StageSpec
from pivot.store import lock, run_cache
from pivot.store.cache import Cache
from pivot.store.lock import DepEntry, LockEntry, OutEntry
from pivot.store.state import StateDB
from pivot.workspace import Context, dep_hash, hash_path

if TYPE_CHECKING:  # fingerprinting is imported when a plan is made (not to read a snapshot's)
    from pivot import fingerprint

__all__ = [
    "Action",
    "Plan",
    "Reason",
    "ReasonKind",
    "Step",
    "WrittenLock",
    "current_params",
    "fingerprints_of",
    "make_plan",
    "read_previous",
    "stale_outputs",
    "undeclared_outputs",
]

FINGERPRINT_NAMESPACE = "fingerprint"


class Action(enum.Enum):
    RUN = "run"
    SKIP = "skip"
    RESTORE = "restore"


class ReasonKind(enum.StrEnum):
    """Why a stage runs or restores (the values are what `--json` and tests see)."""

    FORCED = "forced"
    NEW = "new"
    CODE = "code"
    PARAMS = "params"
    UPSTREAM = "upstream"
    DEPS = "deps"
    RESTORE = "restore"
    OUTPUTS = "outputs"
    RUN_CACHE = "run_cache"
    CORRUPT = "corrupt"  # set by the runner: a RESTORE whose cache blob was bad runs instead


@dataclasses.dataclass(frozen=True)
class Reason:
    """Why a stage runs or restores: a one-line summary plus detail lines for --explain."""

    kind: ReasonKind
    summary: str
    details: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Step:
    """The decision for one stage, with everything needed to act on it and explain it.

    `cutoff` is the early cut-off rule of a RUN step: when set, run unless the stage's
    dependencies, hashed as the runner is about to run it, equal exactly these entries (the
    stage is stale only because upstream re-runs, and its outputs match its lock).

    `run_key` names the run's inputs (code, params, dep hashes) when they are all known before
    it runs (no upstream stage runs); `from_run_cache` holds the outputs an earlier run with
    that key made, when the step RESTOREs them from the run cache instead of running.
    """

    stage: str
    action: Action
    reasons: tuple[Reason, ...]
    code: Mapping[str, str]
    params: Mapping[str, Any]
    previous: LockEntry | None
    packages: Mapping[str, str]
    cutoff: frozenset[DepEntry] | None
    observed: tuple[str, ...] = ()  # what the last run entered beyond the static reach (in code)
    run_key: str | None = None
    from_run_cache: tuple[OutEntry, ...] = ()
    run_entry: str | None = None


@dataclasses.dataclass(frozen=True)
class Plan:
    """Decisions for the selected stages in topological order."""

    steps: tuple[Step, ...]
    warnings: tuple[str, ...]

    def by_action(self, action: Action) -> tuple[Step, ...]:
        return tuple(step for step in self.steps if step.action is action)

    @functools.cached_property
    def nothing_to_do(self) -> bool:
        return all(step.action is Action.SKIP for step in self.steps)


@dataclasses.dataclass(frozen=True)
class WrittenLock:
    """A lock file a run wrote whose content this process knows: `entry`, written as a file
    whose stat was `signature` (inode, size, mtime_ns). While the file has that stat it holds
    that entry (as the state db takes a file with the stat it recorded to have the hash it
    recorded), so a plan made again may take it without reading the file back."""

    entry: LockEntry
    signature: tuple[int, int, int]


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


def undeclared_outputs(spec: StageSpec, entry: LockEntry) -> list[str]:
    """Outputs a lock records that the stage does not declare (now): never to be touched."""
    return sorted(out.path for out in entry.outs if out.path not in spec.out_paths)


def current_params(spec: StageSpec) -> dict[str, Any]:
    """The params as JSON values; sets become sorted lists (not the hash seed's order)."""
    if spec.params is None:
        return {}
    dumped: dict[str, Any] = spec.params.model_dump(mode="json")
    python = spec.params.model_dump(mode="python")
    return {name: _stable(python.get(name), value) for name, value in dumped.items()}


def _stable(python: object, value: Any) -> Any:
    """`value` (JSON) with every list that was a set in `python` sorted by its JSON text."""
    if isinstance(python, (set, frozenset)) and isinstance(value, list):
        return sorted(value, key=lambda item: json.dumps(item, sort_keys=True))
    if isinstance(python, dict) and isinstance(value, dict):
        keys = list(python)
        if len(keys) == len(value):
            return {k: _stable(python[p], value[k]) for p, k in zip(keys, value)}
    if isinstance(python, (list, tuple)) and isinstance(value, list) and len(python) == len(value):
        return [_stable(p, v) for p, v in zip(python, value)]
    if hasattr(python, "model_dump") and isinstance(value, dict):
        return {k: _stable(getattr(python, k, None), v) for k, v in value.items()}
    return value


def fingerprints_of(
    ctx: Context,
    specs: Sequence[StageSpec],
    observed: Mapping[str, tuple[str, ...]] = types.MappingProxyType({}),
    *,
    share: bool = False,
) -> dict[str, fingerprint.Fingerprint]:
    """Code fingerprints of many stages in one batch (one stat per source file, shared parses);
    `observed` adds, per stage, the code its last run was seen entering (see its lock).
    `share`: a forked copy of this process may walk some of them (what it reads is not seen by
    a no-op recorder: see `make_plan`)."""
    from pivot import fingerprint

    requests = [
        fingerprint.StageRequest(s.name, s.func, s.code_objects, observed.get(s.name, ()))
        for s in specs
    ]
    return fingerprint.fingerprint_stages(
        requests,
        cache=_StateCache(ctx.state),
        root=ctx.project.root,
        include_packages=ctx.project.config.fingerprint_packages,
        share=share,
    )


def read_previous(ctx: Context, spec: StageSpec) -> LockEntry | None:
    """The stage's lock entry (None when it never ran); LockFileError when it is corrupt or
    names a path an annotation could not (absolute, '..', inside .pivot/): lock files come from
    git, so they are checked like any input before a path in them is used."""
    return _read_lock_of(spec, ctx.project.lock_file(spec.name, spec.state_dir))


def _read_lock_of(spec: StageSpec, path: Path | str) -> LockEntry | None:
    """`read_previous` of the lock file at `path`."""
    entry = lock.read_lock(path)
    if entry is None:
        return None
    items: list[tuple[str, str, bool | None]] = [("dependency", d.path, None) for d in entry.deps]
    items += [("output", out.path, out.is_directory) for out in entry.outs]
    declared = (spec.dep_paths, spec.out_paths)  # normal already: checked at registration
    for role, recorded, is_directory in items:
        if recorded in declared[role == "output"]:
            normal = recorded
        else:
            try:
                normal = spec_module.normalise_path(recorded, stage=spec.name, role=role)
            except PathEscapeError as error:
                raise LockFileError(f"lock file '{path}' is not usable: {error}") from None
        if normal != recorded or is_directory not in (None, normal.endswith("/")):
            raise LockFileError(
                f"lock file '{path}' is not usable: {role} path {recorded!r} is not written the "
                "way Pivot writes paths. Fix: restore the file from git, or delete it and run "
                f"`pivot repro {spec.name}`."
            )
    return entry


def stale_outputs(ctx: Context, entry: LockEntry) -> tuple[OutEntry, ...]:
    """The recorded outputs that are missing from the workspace or differ from the lock."""
    root = ctx.project.root
    hasher = ctx.hasher
    return tuple(
        out for out in entry.outs if (hash_path(hasher, root, out.path) or ("",))[0] != out.hash
    )


def _in_cache(cache: Cache, out: OutEntry) -> bool:
    if not out.is_directory:
        return cache.has(out.hash)
    try:
        manifest = cache.load_manifest(out.hash)
    except CacheCorruptError:
        return False
    return all(cache.has(digest) for _, digest in manifest)


# --- reasons ----------------------------------------------------------------------------------


def _code_reason(
    old: Mapping[str, str], new: Mapping[str, str], locations: Mapping[str, str]
) -> Reason | None:
    if old == new:
        return None
    changed = sorted(name for name in set(old) | set(new) if old.get(name) != new.get(name))
    if not changed:
        return None
    details = []
    for name in changed:
        where = f" ({locations[name]})" if name in locations else ""
        state = "added" if name not in old else "removed" if name not in new else "changed"
        details.append(f"{state}: {name}{where}")
    shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
    return Reason(ReasonKind.CODE, f"code changed: {shown}", tuple(details))


def _params_reason(old: Mapping[str, Any], new: Mapping[str, Any]) -> Reason | None:
    if old == new:
        return None
    fields = sorted(
        name for name in set(old) | set(new) if old.get(name, "<unset>") != new.get(name, "<unset>")
    )
    if not fields:
        return None
    details = tuple(
        f"{name}: {old.get(name, '<unset>')!r} -> {new.get(name, '<unset>')!r}" for name in fields
    )
    return Reason(ReasonKind.PARAMS, f"params changed: {', '.join(fields)}", details)


def _paths_reason(kind: ReasonKind, label: str, paths: Sequence[str]) -> Reason:
    shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
    return Reason(kind, f"{label}: {shown}", tuple(paths))


# --- the planner -------------------------------------------------------------------------------


class _Planner:
    """Walks the selected stages in order, remembering the decisions already made upstream."""

    def __init__(
        self,
        ctx: Context,
        force: frozenset[str],
        prints: Mapping[str, fingerprint.Fingerprint],
        *,
        run_cache: bool = True,
        read: Callable[[str, str], LockEntry | None] | None = None,
        locks: Mapping[str, LockEntry | None] = types.MappingProxyType({}),
    ) -> None:
        self.ctx = ctx
        self.prints = prints
        self.force = force
        self.use_run_cache = run_cache
        self.decided: dict[str, Step] = {}
        self.warnings: list[str] = []
        outputs = ctx.graph.outputs
        self.producer_of: dict[str, str] = {**outputs.files, **outputs.directories}
        self._locks: dict[str, LockEntry | None] = dict(locks)  # the lock entries known
        self._planned_outputs: dict[str, dict[str, OutEntry]] = {}
        self.read = read  # lock entries read earlier (see `make_plan`)
        self.absent: frozenset[str] = frozenset()  # stages with no lock file (`_absent_locks`)

    def plan(
        self,
        selected: Sequence[str],
        settled: Mapping[str, Step],
        cut_off: Mapping[str, Step] = types.MappingProxyType({}),
    ) -> Plan:
        stages = self.ctx.graph.stages
        for name in selected:
            step = settled.get(name)
            if step is not None:
                self.warnings.extend(self.prints[name].warnings)
            elif name in cut_off:
                step = self.after_cut_off(stages[name], cut_off[name])
            else:
                step = self.step(stages[name])
            self.decided[name] = step
        return Plan(tuple(self.decided.values()), tuple(dict.fromkeys(self.warnings)))

    def after_cut_off(self, spec: StageSpec, first: Step) -> Step:
        """The step of a stage the run cut off (`first`: its RUN step, with the cut-off rule):
        SKIP when no reason to run is left, taking its lock and outputs as `first`'s plan
        found them (the rule asked that its outputs matched the lock); else made anew. Its
        only reason then was an upstream stage to run (`cutoff`): with the same lock entry
        and fingerprint, its code and params still match, so what is left to ask is whether
        an upstream stage runs or a dependency is not as the lock records (`run_reasons`)."""
        entry = first.previous
        print_ = self.prints[spec.name]
        if (
            entry is None
            or print_.manifest is not first.code
            or self.upstream_running(spec)
            or self.changed_deps(spec, entry)
        ):
            return self.step(spec)
        self.warnings.extend(print_.warnings)
        return Step(
            stage=spec.name,
            action=Action.SKIP,
            reasons=(),
            code=print_.manifest,
            params=first.params,
            previous=entry,
            packages=print_.packages,
            cutoff=None,
            observed=entry.observed,
        )

    def step(self, spec: StageSpec) -> Step:
        """The decision for one stage, built from one small function per part."""
        print_ = self.prints[spec.name]
        self.warnings.extend(print_.warnings)
        entry = self.previous(spec)
        params = current_params(spec)
        stale = self.run_reasons(spec, entry, print_, params)
        action, reasons = self.action(spec, entry, stale)
        key = self.run_key(spec, print_, params) if action is Action.RUN else None
        run_entry, hit = self.run_cache_hit(spec, key, reasons)
        if hit:
            summary = "restored from run cache"
            why = tuple(f"{r.kind.value}: {r.summary}" for r in reasons)
            action, reasons = Action.RESTORE, (Reason(ReasonKind.RUN_CACHE, summary, why),)
        return Step(
            stage=spec.name,
            action=action,
            reasons=reasons,
            code=print_.manifest,
            params=params,
            previous=entry,
            packages=print_.packages,
            cutoff=None if hit else self.cutoff(spec, entry, stale),
            observed=entry.observed if entry is not None else (),
            run_key=key,
            from_run_cache=hit,
            run_entry=run_entry,
        )

    def run_key(
        self,
        spec: StageSpec,
        print_: fingerprint.Fingerprint,
        params: Mapping[str, Any],
    ) -> str | None:
        """The run's key when its inputs are known now: not forced, no upstream stage runs
        (asked of the decisions, not the reasons: a stage never run has no upstream reason,
        and what an upstream stage about to run left on disk is not what this one will read),
        every dependency exists."""
        if spec.name in self.force or self.upstream_running(spec):
            return None
        deps = {path: self.expected_dep_hash(path) for path in spec.dep_paths}
        if any(digest is None for digest in deps.values()):
            return None
        return run_cache.run_key(spec.name, print_.manifest, params, deps)  # type: ignore[arg-type]

    def run_cache_hit(
        self, spec: StageSpec, key: str | None, reasons: tuple[Reason, ...]
    ) -> tuple[str | None, tuple[OutEntry, ...]]:
        """(entry key, outputs) of an earlier run with this key whose cached outputs the cache
        holds, or (None, ()). Not asked when only the outputs are missing or modified (the
        inputs did not change: that is the lock's business, not the run cache's)."""
        if key is None or not self.use_run_cache:
            return None, ()
        if all(reason.kind is ReasonKind.OUTPUTS for reason in reasons):
            return None, ()
        declared = set(spec.out_paths)
        for entry, outs in self.ctx.runs.lookup(key):
            if {out.path for out in outs} == declared and all(
                _in_cache(self.ctx.cache, out) for out in outs if out.cache
            ):
                return entry, outs
        return None, ()

    def previous(self, spec: StageSpec) -> LockEntry | None:
        if spec.name not in self._locks:
            # a name that cannot name a lock file is an error here, not "never run"
            path = self.ctx.project.lock_path(spec.name, spec.state_dir)
            known = self.read(spec.name, path) if self.read is not None else None
            if known is not None or spec.name in self.absent:  # known already (`make_plan`)
                self._locks[spec.name] = known
                return known
            try:
                self._locks[spec.name] = _read_lock_of(spec, path)
            except LockFileError as error:
                self.warnings.append(f"stage '{spec.name}': {error}; treating it as never run")
                self._locks[spec.name] = None
        return self._locks[spec.name]

    def run_reasons(
        self,
        spec: StageSpec,
        entry: LockEntry | None,
        print_: fingerprint.Fingerprint,
        params: Mapping[str, Any],
    ) -> list[Reason]:
        """Why the stage must run whatever its outputs look like: forced, new, changed code,
        params or dependencies, or an upstream stage that runs."""
        reasons = [Reason(ReasonKind.FORCED, "forced")] if spec.name in self.force else []
        if entry is None:
            return [*reasons, Reason(ReasonKind.NEW, "no previous run")]
        found = (
            _code_reason(entry.code, print_.manifest, print_.locations),
            _params_reason(entry.params, params),
            self.upstream_reason(spec) or self.deps_reason(spec, entry),
        )
        return reasons + [reason for reason in found if reason]

    def upstream_running(self, spec: StageSpec) -> list[str]:
        """The stages upstream of `spec` (in the selection) decided to run, sorted."""
        decided, run = self.decided, Action.RUN
        running = [
            up
            for up in self.ctx.graph.upstream[spec.name]
            if up in decided and decided[up].action is run
        ]
        return sorted(running) if len(running) > 1 else running

    def upstream_reason(self, spec: StageSpec) -> Reason | None:
        running = self.upstream_running(spec)
        if not running:
            return None
        summary = f"upstream stage(s) will run: {', '.join(running)}"
        return Reason(ReasonKind.UPSTREAM, summary, tuple(running))

    def deps_reason(self, spec: StageSpec, entry: LockEntry) -> Reason | None:
        changed = self.changed_deps(spec, entry)
        return _paths_reason(ReasonKind.DEPS, "dependencies changed", changed) if changed else None

    def action(
        self, spec: StageSpec, entry: LockEntry | None, stale: list[Reason]
    ) -> tuple[Action, tuple[Reason, ...]]:
        """RUN for any reason to run; otherwise SKIP when the outputs match the lock, RESTORE
        when the cache can put them back, RUN when it cannot."""
        if stale or entry is None:
            return Action.RUN, tuple(stale)
        problems, restorable = self.output_problems(spec, entry)
        if not problems:
            return Action.SKIP, ()
        if restorable:
            label = "outputs missing or modified, restoring from cache"
            return Action.RESTORE, (_paths_reason(ReasonKind.RESTORE, label, problems),)
        label = "outputs missing or modified and not in the cache"
        return Action.RUN, (_paths_reason(ReasonKind.OUTPUTS, label, problems),)

    def cutoff(
        self, spec: StageSpec, entry: LockEntry | None, stale: list[Reason]
    ) -> frozenset[DepEntry] | None:
        """The early cut-off rule: a stage stale only because upstream runs, with its outputs as
        its lock records, need not run if its inputs come out byte-identical."""
        if entry is None or [reason.kind for reason in stale] != [ReasonKind.UPSTREAM]:
            return None
        return None if self.output_problems(spec, entry)[0] else frozenset(entry.deps)

    def output_problems(self, spec: StageSpec, entry: LockEntry) -> tuple[tuple[str, ...], bool]:
        """(paths missing or modified, whether the cache can restore all of them)."""
        recorded = {out.path for out in entry.outs}
        if recorded != set(spec.out_paths):
            return tuple(sorted(recorded ^ set(spec.out_paths))), False
        problems = stale_outputs(self.ctx, entry)
        restorable = all(out.cache and _in_cache(self.ctx.cache, out) for out in problems)
        return tuple(out.path for out in problems), restorable

    def recorded_output_hash(self, path: str) -> str | None:
        """The hash a producer planned in this run (to skip or restore) records for `path`, or
        for a file in its directory output; None when no such lock says. A producer outside the
        selection (`pivot run B`) is not consulted: its outputs are used as they are on disk."""
        producer = self.producer_of.get(path)
        if producer in self.decided:  # the usual case: the file is a producer's output
            outputs = self._planned_outputs.get(producer) or self.planned_outputs(producer)
            found = outputs.get(path)
            if found is not None:
                return found.hash
        if not self.ctx.graph.outputs.directories:
            return None
        parts = path.split("/")
        directories = ["/".join(parts[:depth]) + "/" for depth in range(len(parts) - 1, 0, -1)]
        for candidate in directories:
            producer = self.producer_of.get(candidate)
            if producer not in self.decided:
                continue
            recorded = self.planned_outputs(producer)
            if candidate not in recorded:
                continue
            try:
                files = self.ctx.cache.load_manifest(recorded[candidate].hash).as_dict()
            except CacheCorruptError:
                return None
            return files.get(path[len(candidate) :])
        return None

    def planned_outputs(self, producer: str) -> dict[str, OutEntry]:
        """The outputs a decided producer will leave: a run-cache hit's, else those of the lock
        its step was decided from (once per producer: a decision is final)."""
        found = self._planned_outputs.get(producer)
        if found is None:
            step = self.decided[producer]
            outs = step.from_run_cache or (step.previous.outs if step.previous else ())
            found = self._planned_outputs[producer] = {out.path: out for out in outs}
        return found

    def expected_dep_hash(self, path: str) -> str | None:
        """A dependency's hash: what its producer's lock records, else the workspace's."""
        recorded = self.recorded_output_hash(path)
        if recorded is not None:
            return recorded
        return dep_hash(self.ctx, path)

    def changed_deps(self, spec: StageSpec, entry: LockEntry) -> list[str]:
        """The dependencies declared or recorded but not both, then those whose expected hash
        is not the recorded one (each part sorted)."""
        expected = self.expected_dep_hash
        paths = tuple(dep.path for dep in entry.deps)  # sorted, as a lock keeps them
        if paths == spec.dep_paths or paths == tuple(sorted(spec.dep_paths)):  # the usual case
            return [dep.path for dep in entry.deps if expected(dep.path) != dep.hash]
        recorded = {dep.path: dep.hash for dep in entry.deps}
        current = set(spec.dep_paths)
        changed = sorted(recorded.keys() ^ current)
        changed += [p for p in sorted(current & recorded.keys()) if expected(p) != recorded[p]]
        return changed


def _absent_locks(ctx: Context, specs: Sequence[StageSpec]) -> frozenset[str]:
    """The stages whose lock file is not in its directory, which is listed once (a no-op
    recorder records the listing) instead of opening each missing file: a first plan of N
    stages tried N of them. A directory that cannot be listed says nothing (its files are read)."""
    names: dict[str, frozenset[str] | None] = {}
    absent = []
    for spec in specs:
        try:
            folder, name = os.path.split(ctx.project.lock_path(spec.name, spec.state_dir))
        except LockFileError:
            continue  # reported when the plan reads it
        if folder not in names:
            try:
                names[folder] = frozenset(os.listdir(folder))
            except FileNotFoundError:
                names[folder] = frozenset()
            except OSError:
                names[folder] = None
        listed = names[folder]
        if listed is not None and name not in listed:
            absent.append(spec.name)
    return frozenset(absent)


KnownPrints = dict[str, tuple[tuple[str, ...], "fingerprint.Fingerprint"]]
"""Fingerprints made in this process, by stage, with the observed code each was made with."""


def make_plan(
    ctx: Context,
    selected: Sequence[str],
    *,
    force: Sequence[str] = (),
    run_cache: bool = True,
    known: KnownPrints | None = None,
    read: Callable[[str, str], LockEntry | None] | None = None,
    settled: Mapping[str, Step] = types.MappingProxyType({}),
    cut_off: Mapping[str, Step] = types.MappingProxyType({}),
    fork: bool = False,
) -> Plan:
    """Decide RUN / SKIP / RESTORE for `selected` stages (in topological order); with
    `run_cache`, a stage about to run with inputs an earlier run had restores that run's outputs.
    `known` keeps the fingerprints made: a plan made again in the same process (after a run:
    the code in memory is the code planned from) reuses each one whose stage's lock still
    records the observed code it was made with. `read(stage, lock path)`: the stage's lock
    entry if it was read earlier from a file known to be unchanged since, or written as a file
    that is still there as written (`WrittenLock`), else None; it is given to a plan made again,
    whose first plan, in this process, preloaded the state db's records of the same files.
    `settled`: steps of an earlier plan made in this process that still stand (a stage whose
    files and upstream nothing touched since), taken as they are; their fingerprints must be
    in `known`.
    `cut_off`: RUN steps of an earlier plan made in this process (with the cut-off rule) of
    stages the run cut off, whose lock file and outputs are still as that plan found them (the
    caller knows): each is SKIP when no reason to run is left (`_Planner.after_cut_off`), its
    lock and outputs taken from that plan; their fingerprints must be in `known`.
    `fork` (a run's plan): when a stage has no lock, many fingerprints may be made partly in a
    forked copy of this process, on another core, whose reads no recorder sees. Such a stage
    runs (or restores), so a no-op snapshot comes only from the plan made again after the run,
    which records the fingerprints' files itself (`Recorder.note_sources`: the code, the files
    its import read, the packages' files); the copy reads no lock, dependency or output."""
    with _collector.building():
        stages = ctx.graph.stages
        specs = [stages[name] for name in selected if name not in settled]
        root = str(ctx.project.root)
        if read is None:  # (see `read`)
            ctx.state.preload(
                os.path.join(root, path)
                for spec in specs
                for path in (*spec.dep_paths, *spec.out_paths)
            )
        locks = {name: step.previous for name, step in cut_off.items()}
        planner = _Planner(ctx, frozenset(force), {}, run_cache=run_cache, read=read, locks=locks)
        if read is None:
            planner.absent = _absent_locks(ctx, specs)
        observed = {}
        for spec in specs:
            entry = planner.previous(spec)
            if entry is not None and entry.observed:
                observed[spec.name] = entry.observed
        known = {} if known is None else known
        stale = [s for s in specs if known.get(s.name, (None,))[0] != observed.get(s.name, ())]
        share = fork and any(planner.previous(spec) is None for spec in stale)
        made = fingerprints_of(ctx, stale, observed, share=share) if stale else {}
        known.update((name, (observed.get(name, ()), made[name])) for name in made)
        planner.prints = {name: known[name][1] for name in selected}
        return planner.plan(selected, settled, cut_off)
