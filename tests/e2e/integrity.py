"""What must hold in a project after any fault (kill, Ctrl-C, concurrent runs): the invariants the
fault-injection, concurrency and soak tests check after every trial.

`violations(root)` returns a list of human-readable problems; empty means the project is sound.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from pivot import fs
from pivot.errors import LockFileError
from pivot.store import hashing, lock

__all__ = ["group_gone", "temp_files", "tree_bytes", "violations"]


def _blobs(cache: Path) -> list[Path]:
    files = cache / "files"
    return [path for path in files.rglob("*") if path.is_file()] if files.is_dir() else []


def _blob_problems(root: Path) -> list[str]:
    problems = []
    for blob in _blobs(root / ".pivot" / "cache"):
        if fs.is_temp_name(blob.name):
            continue  # reported by temp_files
        name = blob.parent.name + blob.name
        if hashing.hash_file(blob) != name:
            problems.append(f"blob {blob} does not hash to its name")
    return problems


def _lock_problems(root: Path) -> list[str]:
    problems = []
    files = root / ".pivot" / "cache" / "files"
    for path in sorted((root / ".pivot" / "stages").glob("*.lock")):
        try:
            entry = lock.read_lock(path)
        except LockFileError as error:
            problems.append(f"lock {path.name} does not parse: {error}")
            continue
        assert entry is not None
        for out in (out for out in entry.outs if out.cache):
            blob = files / out.hash[:2] / out.hash[2:]
            if not blob.is_file():
                problems.append(f"lock {path.name} points at missing blob {out.hash} ({out.path})")
            elif out.is_directory:
                manifest = hashing.manifest_from_bytes(blob.read_bytes())
                missing = [rel for rel, h in manifest if not (files / h[:2] / h[2:]).is_file()]
                if missing:
                    problems.append(f"lock {path.name}: {out.path} lacks blobs for {missing[:3]}")
    return problems


def temp_files(root: Path) -> list[str]:
    """Temp files of atomic writes anywhere in the project (`.git` aside)."""
    found = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [name for name in subdirs if name != ".git"]
        found += [os.path.join(directory, n) for n in files + subdirs if fs.is_temp_name(n)]
    tmp = root / ".pivot" / "tmp"
    entries = list(tmp.iterdir()) if tmp.is_dir() else []
    backups = sorted(p.name for p in entries if p.is_dir() or p.name.startswith("="))
    if backups:
        found.append(f"{tmp} holds backups of previous outputs: {backups}")
    return found


def violations(root: Path, *, temp_allowed: bool = False) -> list[str]:
    """Every broken invariant of the project at `root`."""
    problems = _blob_problems(root) + _lock_problems(root)
    if not temp_allowed:
        problems += [f"temp file left: {path}" for path in temp_files(root)]
    return problems


def tree_bytes(root: Path, paths: list[str]) -> dict[str, bytes]:
    """The bytes of each file under the given project-relative files or directories."""
    found: dict[str, bytes] = {}
    for relative in paths:
        full = root / relative
        if full.is_dir():
            for file in sorted(full.rglob("*")):
                if file.is_file():
                    found[str(file.relative_to(root))] = file.read_bytes()
        elif full.is_file():
            found[relative] = full.read_bytes()
    return found


def group_gone(group: int, timeout: float = 30) -> bool:
    """Whether every process of a process group has exited (within `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False
