"""Sharing results through remotes: which cache objects targets need, and push / fetch / pull.

Reads lock files for what each stage recorded, asks `pivot.remote` to move the objects, and
names every object that could not be moved by path, stage and hash. Imports of Pivot: plan,
workspace, graph, project, remote, store, fs, errors; never api or cli.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pivot import fs, plan
from pivot import project as project_module
from pivot.errors import CacheCorruptError, ConfigError
from pivot.project import Project
from pivot.remote import base, transfer
from pivot.remote.base import Remote
from pivot.remote.transfer import ProgressSink, TransferResult
from pivot.store.lock import LockEntry, OutEntry
from pivot.workspace import Context

__all__ = [
    "Record",
    "SyncReport",
    "add_remote",
    "fetch",
    "modify_remote",
    "open_named_remote",
    "push",
    "records_of",
    "remote_settings",
    "remove_remote",
    "resolve_targets",
    "set_default_remote",
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


def resolve_targets(ctx: Context, targets: Sequence[str], *, with_deps: bool) -> tuple[str, ...]:
    """Stage names for TARGETS (stage names or output paths; none: every stage), in order;
    `with_deps` adds everything upstream."""
    names = ctx.graph.stages_for(targets)
    return ctx.graph.with_upstream(names) if with_deps and targets else names


def records_of(ctx: Context, stages: Iterable[str]) -> list[Record]:
    """The cached outputs the lock files of `stages` record (stages never run have none)."""
    records = []
    for name in stages:
        entry: LockEntry | None = plan.read_previous(ctx, ctx.graph.stages[name])
        if entry is not None:
            records += [Record(name, out) for out in entry.outs if out.cache]
    return records


class _Index:
    """Object key -> the (stage, path) that need it, to name what is missing."""

    def __init__(self) -> None:
        self.owners: dict[str, list[tuple[str, str]]] = {}

    def add(self, key: str, owner: str, path: str) -> str:
        self.owners.setdefault(key, []).append((owner, path))
        return key

    def stages(self, keys: Iterable[str]) -> frozenset[str]:
        return frozenset(owner for key in keys for owner, _ in self.owners.get(key, []))

    def describe(self, keys: Iterable[str], problem: str) -> list[str]:
        lines = []
        for key in keys:
            for owner, path in self.owners.get(key, [("", key)]):
                who = f" (stage '{owner}')" if owner else ""
                lines.append(f"{problem}: '{path}'{who}, hash {transfer.key_hash(key)}")
        return lines


def _file_and_manifest_keys(records: Sequence[Record], index: _Index) -> list[str]:
    return [index.add(transfer.blob_key(r.out.hash), r.owner, r.out.path) for r in records]


def _directory_entry_keys(ctx: Context, records: Sequence[Record], index: _Index) -> list[str]:
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
            keys.append(index.add(transfer.blob_key(digest), record.owner, path))
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
    index = _Index()
    keys = _file_and_manifest_keys(records, index) + _directory_entry_keys(ctx, records, index)
    remote.check()
    result = transfer.push(ctx.cache.root, remote, keys, jobs=jobs, progress=progress)
    problems = index.describe(result.missing, "not in the local cache") + index.describe(
        result.corrupt, "corrupt in the local cache (not pushed)"
    )
    failed = index.stages(result.missing + result.corrupt)
    return SyncReport(remote.url, result, tuple(problems), failed)


def fetch(
    ctx: Context,
    remote: Remote,
    records: Sequence[Record],
    *,
    jobs: int | None = None,
    progress: ProgressSink | None = None,
) -> SyncReport:
    """Download every object `records` need that the local cache lacks (manifests first)."""
    index = _Index()
    remote.check()

    def move(keys: list[str]) -> TransferResult:
        return transfer.fetch(ctx.cache.root, remote, keys, jobs=jobs, progress=progress)

    result = move(_file_and_manifest_keys(records, index))
    result = result + move(_directory_entry_keys(ctx, records, index))
    problems = index.describe(result.missing, "missing on the remote") + index.describe(
        result.corrupt, "corrupt on the remote (not fetched)"
    )
    failed = index.stages(result.missing + result.corrupt)
    return SyncReport(remote.url, result, tuple(problems), failed)


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
