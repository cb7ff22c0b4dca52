"""Sharing results through remotes: which cache objects targets need, and push / fetch / pull.

Reads lock files for what each stage recorded, asks `pivot.remote` to move the objects, and
names every object that could not be moved by path, stage and hash. Imports of Pivot: plan,
workspace, graph, project, remote, store, fs, errors; never api or cli.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from pivot import fs, plan, tracked
from pivot import project as project_module
from pivot.errors import CacheCorruptError, ConfigError, PivotError
from pivot.plan import Action, Plan, ReasonKind, Step
from pivot.project import Project
from pivot.remote import base, transfer
from pivot.remote.base import Remote
from pivot.remote.transfer import ProgressSink, TransferResult
from pivot.store import run_cache
from pivot.store.lock import LockEntry, OutEntry
from pivot.store.tracked import TrackedEntry
from pivot.workspace import Context

__all__ = [
    "ObjectIndex",
    "Record",
    "Selection",
    "SyncReport",
    "add_remote",
    "directory_file_keys",
    "fetch",
    "modify_remote",
    "open_named_remote",
    "push",
    "records_of",
    "remote_settings",
    "remove_remote",
    "resolve_targets",
    "set_default_remote",
    "top_level_keys",
    "worker_remote_settings",
]


@dataclasses.dataclass(frozen=True)
class Record:
    """A cached output as a lock file records it, and who owns it (a stage name)."""

    owner: str
    out: OutEntry


@dataclasses.dataclass(frozen=True)
class SyncReport:
    """The outcome of a push or fetch: what moved, and each problem named by path and stage."""

    remote: str
    result: TransferResult
    problems: tuple[str, ...]
    """One line per object missing at the source or corrupt: its path, stage and hash."""
    failed_stages: frozenset[str] = frozenset()
    """Stages some of whose objects could not be moved."""
    failed_tracked: frozenset[str] = frozenset()
    """Tracked paths some of whose objects could not be moved."""
    run_entries: int = 0
    """Run-cache entries moved along with the data."""

    @property
    def ok(self) -> bool:
        return not self.problems


def remote_settings(project: Project, name: str | None) -> base.RemoteSettings:
    """The settings of the remote called `name`, or of the default one; ConfigError saying
    how to add one."""
    remotes = project.config.remotes
    chosen = name or project.config.default_remote
    if chosen is None and len(remotes) == 1:
        chosen = next(iter(remotes))
    if chosen is None:
        hint = f"one of {', '.join(sorted(remotes))}" if remotes else "none is configured"
        raise ConfigError(
            f"no remote given and no default remote ({hint}). Fix: `pivot remote add -d NAME URL`"
            ", `pivot remote default NAME`, or pass `-r NAME`."
        )
    if chosen not in remotes:
        known = ", ".join(sorted(remotes)) or "none"
        raise ConfigError(
            f"no remote named '{chosen}' (configured: {known}). Fix: `pivot remote add {chosen} "
            "URL` or pick one from `pivot remote list`."
        )
    return base.parse_settings(chosen, remotes[chosen], str(project.config_path))


_SECRETS = ("access_key_id", "secret_access_key", "session_token")


def worker_remote_settings(project: Project) -> base.RemoteSettings:
    """The remote cluster workers exchange data through (`cluster.remote`, else the default),
    as sent to them: a directory path made absolute, and no secrets (workers take credentials
    from their own environment)."""
    try:
        settings = remote_settings(project, project.config.cluster.remote)
    except ConfigError as error:
        raise ConfigError(
            f"running on a cluster needs a remote for the workers to exchange data through: {error}"
        ) from None
    url = settings.url
    if "://" not in url:
        url = str((project.root / Path(url).expanduser()).resolve())
    options = {key: value for key, value in settings.options.items() if key not in _SECRETS}
    return base.RemoteSettings(settings.name, url, options)


def open_named_remote(project: Project, name: str | None) -> Remote:
    """The remote called `name`, or the default one; ConfigError saying how to add one."""
    return base.open_remote(remote_settings(project, name), project.root)


@dataclasses.dataclass(frozen=True)
class Selection:
    """What TARGETS name: stages (in order) and tracked data."""

    stages: tuple[str, ...]
    tracked: tuple[TrackedEntry, ...]


def resolve_targets(ctx: Context, targets: Sequence[str], *, with_deps: bool) -> Selection:
    """Stages and tracked data for TARGETS (stage names, output or tracked paths; none:
    everything); `with_deps` adds every stage upstream."""
    all_tracked = tracked.find_tracked(ctx.project.root)
    if not targets:
        return Selection(ctx.graph.order, tuple(all_tracked))
    by_path = {entry.path: entry for entry in all_tracked}
    is_tracked = [t not in ctx.graph.stages and t.rstrip("/") in by_path for t in targets]
    chosen = [by_path[t.rstrip("/")] for t, yes in zip(targets, is_tracked) if yes]
    rest = [t for t, yes in zip(targets, is_tracked) if not yes]
    names = ctx.graph.stages_for(rest) if rest else ()
    return Selection(
        ctx.graph.with_upstream(names) if with_deps and names else names, tuple(chosen)
    )


def records_of(ctx: Context, selection: Selection) -> list[Record]:
    """The cached outputs the lock files of the selected stages record (stages never run have
    none), and the selected tracked data."""
    records = []
    for name in selection.stages:
        entry: LockEntry | None = plan.read_previous(ctx, ctx.graph.stages[name])
        if entry is not None:
            records += [Record(name, out) for out in entry.outs if out.cache]
    records += [Record(tracked.TRACKED_OWNER, tracked.to_out(t)) for t in selection.tracked]
    return records


class ObjectIndex:
    """Object key -> the records (and the file paths within them) that need it."""

    def __init__(self) -> None:
        self.owners: dict[str, list[tuple[Record, str]]] = {}

    def add(self, key: str, record: Record, path: str) -> str:
        self.owners.setdefault(key, []).append((record, path))
        return key

    def records(self, keys: Iterable[str]) -> list[Record]:
        return [record for key in keys for record, _ in self.owners.get(key, [])]

    def describe(self, keys: Iterable[str], problem: str) -> list[str]:
        lines = []
        for key in keys:
            for record, path in self.owners.get(key, []):
                who = f" (stage '{record.owner}')" if record.owner else " (tracked)"
                lines.append(f"{problem}: '{path}'{who}, hash {transfer.key_hash(key)}")
        return lines

    def report(
        self, remote: Remote, result: TransferResult, problems: list[str], runs_moved: int
    ) -> SyncReport:
        failed = self.records(result.missing + result.corrupt)
        return SyncReport(
            remote.url,
            result,
            tuple(problems),
            frozenset(r.owner for r in failed if r.owner),
            frozenset(r.out.path for r in failed if not r.owner),
            runs_moved,
        )


def top_level_keys(records: Sequence[Record], index: ObjectIndex) -> list[str]:
    """Keys of the records' own objects: file blobs and directory manifests."""
    return [index.add(transfer.blob_key(r.out.hash), r, r.out.path) for r in records]


def directory_file_keys(ctx: Context, records: Sequence[Record], index: ObjectIndex) -> list[str]:
    """Keys of the files of every directory output whose manifest is in the local cache."""
    keys = []
    for record in records:
        if not record.out.is_directory:
            continue
        try:
            manifest = ctx.cache.load_manifest(record.out.hash)
        except CacheCorruptError:
            continue  # reported as the manifest's own problem
        for relative, digest in manifest:
            path = f"{record.out.path.rstrip('/')}/{relative}"
            keys.append(index.add(transfer.blob_key(digest), record, path))
    return keys


def push(
    ctx: Context,
    remote: Remote,
    records: Sequence[Record],
    *,
    jobs: int | None = None,
    progress: ProgressSink | None = None,
) -> SyncReport:
    """Upload every object `records` need that the remote lacks."""
    index = ObjectIndex()
    keys = top_level_keys(records, index) + directory_file_keys(ctx, records, index)
    remote.check()
    result = transfer.push(ctx.cache.root, remote, keys, jobs=jobs, progress=progress)
    problems = index.describe(result.missing, "not in the local cache") + index.describe(
        result.corrupt, "corrupt in the local cache (not pushed)"
    )
    shared = set(result.moved) | set(result.present)
    entries = _run_entries_within(ctx, shared)
    runs_moved = transfer.push_bytes(remote, entries, jobs=jobs).moved if entries else ()
    return index.report(remote, result, problems, len(runs_moved))


def _run_entries_within(ctx: Context, shared: set[str]) -> dict[str, bytes]:
    """Local run-cache entries (object key -> bytes, loose or packed) about this push's data:
    every cached output of theirs is among the `shared` object keys (and one is, or they have
    none), so an entry on the remote never points at objects the remote lacks."""
    entries = {}
    for key, data in ctx.runs.entries():
        try:
            outs = run_cache.outs_from_bytes(data)
        except ValueError:
            continue
        needed = {transfer.blob_key(out.hash) for out in outs if out.cache}
        if needed <= shared:
            entries[key] = data
    return entries


def fetch_run_entries(ctx: Context, remote: Remote, *, jobs: int | None = None) -> int:
    """Download every run-cache entry the remote has and this cache lacks (loose or packed);
    how many. Fetched entries stay loose files."""
    listed = [key for key, _ in remote.list_keys(run_cache.RUNS_DIR + "/")]
    keys = [key for key in listed if transfer.is_object_key(key) and not ctx.runs.has(key)]
    moved = transfer.fetch(ctx.cache.root, remote, keys, jobs=jobs).moved
    ctx.runs.refresh()  # the fetched entries are new loose files
    return len(moved)


def fetch(
    ctx: Context,
    remote: Remote,
    records: Sequence[Record],
    *,
    jobs: int | None = None,
    progress: ProgressSink | None = None,
) -> SyncReport:
    """Download every object `records` need that the local cache lacks (manifests first)."""
    index = ObjectIndex()
    remote.check()

    def move(keys: list[str]) -> TransferResult:
        return transfer.fetch(ctx.cache.root, remote, keys, jobs=jobs, progress=progress)

    result = move(top_level_keys(records, index))
    result = result + move(directory_file_keys(ctx, records, index))
    problems = index.describe(result.missing, "missing on the remote") + index.describe(
        result.corrupt, "corrupt on the remote (not fetched)"
    )
    return index.report(remote, result, problems, fetch_run_entries(ctx, remote, jobs=jobs))


# --- remote configuration ---------------------------------------------------------------------

_SECRETS = ("access_key_id", "secret_access_key", "session_token")


def _config_file(project: Project, local: bool) -> Path:
    if local:
        _ignore_local_config(project)
        return project.local_config_path
    return project.config_path


def _ignore_local_config(project: Project) -> None:
    """Make sure `.pivot/.gitignore` ignores config.local.yaml (projects made before it did)."""
    path = project.pivot_dir / ".gitignore"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if "/config.local.yaml" not in text.split():
        fs.atomic_write_text(
            path, text + ("" if text.endswith("\n") or not text else "\n") + "/config.local.yaml\n"
        )


def _check_name(name: str) -> None:
    if not name or not all(char.isalnum() or char in "-_." for char in name):
        raise ConfigError(
            f"remote name {name!r} is not usable: use letters, digits, '-', '_' and '.'."
        )


def add_remote(project: Project, name: str, url: str, *, default: bool, local: bool) -> None:
    """Record remote `name` at `url` (optionally as the default)."""
    _check_name(name)
    if name in project.config.remotes:
        raise ConfigError(
            f"a remote named '{name}' exists already ({project.config.remotes[name].get('url')})."
            f" Fix: `pivot remote modify {name} url {url}`, or remove it first."
        )
    base.open_remote(base.parse_settings(name, {"url": url}, "the command line"), project.root)

    def change(data: dict[str, Any]) -> None:
        data.setdefault("remotes", {})[name] = {"url": url}
        if default:
            data["default_remote"] = name

    project_module.edit_config(_config_file(project, local), change)


def _require(project: Project, name: str) -> None:
    if name not in project.config.remotes:
        known = ", ".join(sorted(project.config.remotes)) or "none"
        raise ConfigError(f"no remote named '{name}' (configured: {known}).")


def remove_remote(project: Project, name: str) -> None:
    """Forget remote `name` in both config files (the remote's data is untouched)."""
    _require(project, name)

    def change(data: dict[str, Any]) -> None:
        (data.get("remotes") or {}).pop(name, None)
        if data.get("default_remote") == name:
            data.pop("default_remote")

    for path in (project.config_path, project.local_config_path):
        if path.exists():
            project_module.edit_config(path, change)


def set_default_remote(project: Project, name: str, *, local: bool) -> None:
    _require(project, name)
    project_module.edit_config(
        _config_file(project, local), lambda data: data.update(default_remote=name)
    )


def modify_remote(project: Project, name: str, key: str, value: str | None, *, local: bool) -> None:
    """Set (or with `value=None` unset) one setting of remote `name`."""
    _require(project, name)
    if key not in ("url", *base.S3_SETTINGS):
        raise ConfigError(
            f"unknown remote setting '{key}'; known: url, {', '.join(base.S3_SETTINGS)}"
        )
    if key in _SECRETS and not local and value is not None:
        raise ConfigError(
            f"'{key}' is a secret and config.yaml is committed. Fix: add --local to write it to "
            ".pivot/config.local.yaml (git-ignored), or use the AWS environment variables."
        )
    parsed: str | bool | int | None = value
    if value is not None and key == "allow_http":
        parsed = value.strip().lower() in ("1", "true", "yes", "on")
    elif value is not None and key == "jobs":
        if not value.isdigit() or int(value) < 1:
            raise ConfigError(f"remote setting jobs must be a positive integer, not {value!r}")
        parsed = int(value)

    def change(data: dict[str, Any]) -> None:
        settings = data.setdefault("remotes", {}).setdefault(name, {})
        if parsed is None:
            settings.pop(key, None)
        else:
            settings[key] = parsed
        if not settings:
            data["remotes"].pop(name)

    project_module.edit_config(_config_file(project, local), change)


def prefetch(ctx: Context, remote: Remote, decide: Callable[[], Plan]) -> Plan:
    """`repro --pull`: fetch what the stages the plan would run need, then plan again, until
    nothing more can be fetched; returns the last plan.

    Fetched first: every run-cache entry and missing tracked data. Then, for each stage to run,
    the outputs of a run-cache entry with the same inputs, or its recorded outputs when their
    being missing is its only reason to run. A stage whose upstream runs is decided after it.
    """
    fetch_run_entries(ctx, remote)
    missing_tracked, _changed = tracked.stale(ctx, tracked.find_tracked(ctx.project.root))
    wanted = [t for t in tracked.find_tracked(ctx.project.root) if t.path in missing_tracked]
    if wanted:
        fetch(ctx, remote, [Record(tracked.TRACKED_OWNER, tracked.to_out(t)) for t in wanted])
        for entry in wanted:
            with contextlib.suppress(PivotError):
                tracked.restore(ctx, entry)
    tried: set[str] = set()
    while True:
        decided = decide()
        records: list[Record] = []
        for step in decided.by_action(Action.RUN):
            if step.stage not in tried:
                tried.add(step.stage)
                records += _fetchable(ctx, step)
        if not records:
            return decided
        fetch(ctx, remote, records)


def _fetchable(ctx: Context, step: Step) -> list[Record]:
    """What could spare a stage from running: a run-cache entry's outputs for its inputs, or
    its recorded outputs when only their absence makes it run."""
    spec = ctx.graph.stages[step.stage]
    if step.run_key is not None:
        for _entry, outs in ctx.runs.lookup(step.run_key):
            if {out.path for out in outs} == set(spec.out_paths):
                return [Record(step.stage, out) for out in outs if out.cache]
    only_outputs = all(reason.kind is ReasonKind.OUTPUTS for reason in step.reasons)
    if step.previous is not None and step.reasons and only_outputs:
        return [Record(step.stage, out) for out in step.previous.outs if out.cache]
    return []
