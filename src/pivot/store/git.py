"""Reading the git repository around a project: HEAD and the dirty flag, revisions, and files as
they were at a revision (many at once through one `git cat-file --batch`). Never writes.

Paths given and returned are relative to the project root, which may lie below the repository's
top. Imports nothing of Pivot's but `pivot.errors` and the store itself.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Sequence
from pathlib import Path

from pivot.errors import RevisionError
from pivot.store.runs import GitState

__all__ = ["Commit", "Repo", "head_state", "log", "open_repo", "read_files", "resolve", "tree"]


@dataclasses.dataclass(frozen=True)
class Repo:
    """A git work tree holding the project: its top directory and the project's prefix in it."""

    top: Path
    prefix: str  # "" or "sub/dir/" (the project root relative to `top`)


@dataclasses.dataclass(frozen=True)
class Commit:
    sha: str
    date: str  # ISO 8601 committer date
    subject: str

    @property
    def short(self) -> str:
        return self.sha[:8]


def _git(cwd: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["git", *args], cwd=cwd, input=stdin, capture_output=True, check=False, timeout=120
    )


def open_repo(root: Path) -> Repo | None:
    """The repository holding `root`; None when there is none (or git is not installed)."""
    try:
        done = _git(root, "rev-parse", "--show-toplevel", "--show-prefix")
    except OSError:
        return None
    if done.returncode != 0:
        return None
    lines = done.stdout.decode().splitlines()
    return Repo(Path(lines[0]), lines[1] if len(lines) > 1 else "")


def head_state(directory: Path) -> GitState | None:
    """HEAD's commit, branch and whether tracked files differ from it, in one `git status`;
    None outside a repository or before the first commit."""
    try:
        done = _git(directory, "status", "--porcelain=v2", "--branch", "--untracked-files=no")
    except OSError:
        return None
    if done.returncode != 0:
        return None
    headers = {}
    dirty = False
    for line in done.stdout.decode(errors="replace").splitlines():
        if line.startswith("# "):
            key, _, value = line[2:].partition(" ")
            headers[key] = value
        elif line.strip():
            dirty = True
    commit, branch = headers.get("branch.oid", ""), headers.get("branch.head", "")
    if not commit or commit == "(initial)":
        return None
    return GitState(commit, None if branch == "(detached)" else branch, dirty)


def resolve(repo: Repo, rev: str) -> str:
    """The commit sha `rev` names (branch, tag, sha, HEAD~2, ...); RevisionError if none."""
    done = _git(repo.top, "rev-parse", "--verify", "-q", f"{rev}^{{commit}}")
    if done.returncode != 0 or rev.startswith("-"):
        raise RevisionError(
            f"'{rev}' is not a git revision of this repository. Give a commit, branch or tag "
            "(e.g. HEAD, HEAD~1, main); `git log --oneline` lists them"
        )
    return done.stdout.decode().strip()


def read_files(repo: Repo, sha: str, paths: Sequence[str]) -> dict[str, bytes | None]:
    """The content of each project-relative path at commit `sha` (None where it is not a file
    there), read with one `git cat-file --batch`."""
    if not paths:
        return {}
    request = "".join(f"{sha}:{repo.prefix}{path}\n" for path in paths).encode()
    done = _git(repo.top, "cat-file", "--batch", stdin=request)
    if done.returncode != 0:
        raise RevisionError(f"git cat-file failed at {sha[:8]}: {done.stderr.decode().strip()}")
    found: dict[str, bytes | None] = {}
    data, offset = done.stdout, 0
    for path in paths:
        end = data.index(b"\n", offset)
        header = data[offset:end].split()
        offset = end + 1
        if len(header) == 3 and header[1] in (b"blob", b"tree", b"commit", b"tag"):
            size = int(header[2])
            found[path] = data[offset : offset + size] if header[1] == b"blob" else None
            offset += size + 1
        else:  # "<name> missing" / "ambiguous"
            found[path] = None
    return found


def tree(repo: Repo, sha: str, directory: str) -> list[str]:
    """Names of the files directly in project-relative `directory` at `sha` (empty if none)."""
    done = _git(repo.top, "ls-tree", "--name-only", f"{sha}:{repo.prefix}{directory}")
    return done.stdout.decode().splitlines() if done.returncode == 0 else []


def log(repo: Repo, rev: str, limit: int) -> list[Commit]:
    """The newest `limit` commits reachable from `rev` (first parents), newest first."""
    done = _git(
        repo.top, "log", "--first-parent", f"-n{limit}", "--format=%H%x1f%cI%x1f%s", rev, "--"
    )
    if done.returncode != 0:
        return []
    commits = []
    for line in done.stdout.decode(errors="replace").splitlines():
        sha, date, subject = line.split("\x1f", 2)
        commits.append(Commit(sha, date, subject))
    return commits
