"""`workspace.hash_path`: what planning sees of an output or dependency path in the workspace."""

from __future__ import annotations

import os
from pathlib import Path

from pivot.store import hashing
from pivot.store.state import FileHasher, StateDB
from pivot.workspace import hash_path


def test_files_directories_and_what_is_not_there(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "data" / "sub").mkdir(parents=True)
    (root / "data" / "a.txt").write_text("a", encoding="utf-8")
    (root / "data" / "sub" / "b.txt").write_text("b", encoding="utf-8")
    with StateDB(tmp_path / "state.db") as state:
        hasher = FileHasher(state)
        expected_dir = hasher.hash_directory(root / "data")[0]
        assert hash_path(hasher, root, "data/a.txt") == (hashing.hash_bytes(b"a"), False)
        assert hash_path(hasher, root, "data") == (expected_dir, True)
        assert hash_path(hasher, root, "data/") == (expected_dir, True)
        assert hash_path(hasher, root, "data/a.txt/") is None  # a directory path names a file
        assert hash_path(hasher, root, "missing.txt") is None
        assert hash_path(hasher, root, "missing/") is None
        assert hash_path(hasher, root, "data/a.txt/inner.txt") is None  # a parent is a file
        ignore_b = hash_path(hasher, root, "data/", lambda path: path == "data/sub/b.txt")
        assert ignore_b is not None and ignore_b[0] != expected_dir


def test_an_edit_is_seen_through_the_state_db(tmp_path: Path) -> None:
    """The file's stat is taken once and the state db asked with it: an edit of the same size
    (a new mtime) is hashed again."""
    (tmp_path / "a.txt").write_text("one", encoding="utf-8")
    with StateDB(tmp_path / "state.db") as state:
        hasher = FileHasher(state)
        assert hash_path(hasher, tmp_path, "a.txt") == (hashing.hash_bytes(b"one"), False)
        (tmp_path / "a.txt").write_text("two", encoding="utf-8")
        later = os.stat(tmp_path / "a.txt").st_mtime_ns + 1_000_000
        os.utime(tmp_path / "a.txt", ns=(later, later))
        assert hash_path(hasher, tmp_path, "a.txt") == (hashing.hash_bytes(b"two"), False)
