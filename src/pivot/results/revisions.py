"""What a project recorded at a git revision or in the workspace: its lock files, and the content
of its outputs (from git where the file is tracked, else from the cache by the hash the lock
records). A revision that has no lock for a stage simply has none: callers show "—".

Imports of Pivot: workspace (the context; the lock path rule is the project's), store,
errors; never execute, api or cli.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from pivot.errors import CacheCorruptError, LockFileError, RevisionError
from pivot.store import git, lock
from pivot.store.lock import LockEntry, OutEntry
from pivot.workspace import Context

__all__ = ["WORKSPACE", "Reader", "Revision"]

WORKSPACE = "workspace"
"""The name of the working tree as a revision (`pivot metrics diff HEAD workspace`)."""


@dataclasses.dataclass(frozen=True)
class Revision:
    """One revision: the name the user gave, its commit (None for the workspace), its locks."""

    name: str
    commit: str | None
    locks: Mapping[str, LockEntry]  # stage -> lock; stages with no lock there are absent

    @property
    def label(self) -> str:
        """`HEAD (1a2b3c4d)`, `main (…)`, or `workspace`."""
        if self.commit is None:
            return self.name
        short = self.commit[:8]
        return short if self.name.startswith(short) else f"{self.name} ({short})"

    def out_entry(self, path: str) -> OutEntry | None:
        for entry in self.locks.values():
            for out in entry.outs:
                if out.path == path:
                    return out
        return None


class Reader:
    """Reads revisions of one project; git is opened once and asked in batches."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.root = ctx.project.root
        self.repo = git.open_repo(self.root)
        self.warnings: list[str] = []
        self._lock_paths = {
            name: ctx.project.lock_file(spec.name, spec.state_dir).relative_to(self.root).as_posix()
            for name, spec in ctx.graph.stages.items()
        }
        self._stages_dir = ctx.project.stages_dir.relative_to(self.root).as_posix()

    def require_git(self, what: str) -> git.Repo:
        if self.repo is None:
            raise RevisionError(
                f"{what} is read from git, but {self.root} is not in a git repository, so there "
                "is no revision to compare with. Run `git init` and commit your results; the "
                "`show` commands read the workspace alone"
            )
        return self.repo

    def resolve(self, name: str) -> str | None:
        """The commit `name` stands for; None for the workspace."""
        if name == WORKSPACE:
            return None
        return git.resolve(self.require_git(f"revision '{name}'"), name)

    def has_commits(self) -> bool:
        return self.repo is not None and git.head_state(self.repo.top) is not None

    def revision(self, name: str) -> Revision:
        """The locks recorded at `name` (a git revision, or WORKSPACE)."""
        commit = self.resolve(name)
        paths = dict(self._lock_paths)
        for file in self._lock_files(commit):
            stage = file[: -len(".lock")]
            paths.setdefault(stage, f"{self._stages_dir}/{file}")
        texts = self._read(commit, list(paths.values()))
        locks = {}
        for stage, path in paths.items():
            data = texts.get(path)
            if data is None:
                continue
            try:
                locks[stage] = lock.decode_lock(data.decode("utf-8"), Path(path))
            except (LockFileError, UnicodeDecodeError) as error:
                where = name if commit is None else f"{name} ({commit[:8]})"
                self.warnings.append(f"{where}: {error}; stage '{stage}' is shown as not run")
        return Revision(name, commit, locks)

    def _lock_files(self, commit: str | None) -> list[str]:
        if commit is None:
            try:
                names = os.listdir(self.ctx.project.stages_dir)
            except FileNotFoundError:
                return []
        else:
            assert self.repo is not None
            names = git.tree(self.repo, commit, self._stages_dir)
        return sorted(name for name in names if name.endswith(".lock"))

    def _read(self, commit: str | None, paths: Sequence[str]) -> dict[str, bytes | None]:
        if commit is None:
            return {path: _read_file(self.root / path) for path in paths}
        assert self.repo is not None
        return git.read_files(self.repo, commit, paths)

    def files(self, revision: Revision, paths: Sequence[str]) -> dict[str, bytes | None]:
        """The content of output files at `revision`: the workspace file, or the git-tracked
        file there, else the cached blob of the hash the revision's lock records."""
        found = self._read(revision.commit, paths)
        if revision.commit is None:
            return found
        for path, data in found.items():
            out = revision.out_entry(path)
            if data is None and out is not None and not out.is_directory:
                found[path] = self._cached(out.hash)
        return found

    def _cached(self, digest: str) -> bytes | None:
        if not self.ctx.cache.has(digest):
            return None
        try:
            return self.ctx.cache.read_bytes(digest)
        except CacheCorruptError:
            return None


def _read_file(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
