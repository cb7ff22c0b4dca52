"""Atomic writes through unnamed files (Linux `O_TMPFILE`): a new file is linked in whole under
its name without a temp name; an existing one is replaced through a temp name; where unnamed
files are refused, the named temp file is used, and the result is the same. (Pivot's CI runs
on Linux, where unnamed files exist.)"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from pivot import fs


def _no_temp_names(path: str) -> str:
    raise AssertionError(f"a temp name was asked for: {path}")


def test_a_new_file_is_linked_in_without_a_temp_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert fs._UNNAMED
    monkeypatch.setattr(fs, "temp_name_for", _no_temp_names)
    target = tmp_path / "out.txt"
    fs.atomic_write_bytes(target, b"new\n")
    assert target.read_bytes() == b"new\n"
    assert os.listdir(tmp_path) == ["out.txt"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == fs.FILE_MODE & ~umask
    fs.atomic_write_bytes(tmp_path / "blob", b"x", mode=0o444)
    assert stat.S_IMODE((tmp_path / "blob").stat().st_mode) == 0o444


def test_an_existing_file_is_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_bytes(b"old")
    other = tmp_path / "other"
    os.link(target, other)  # the old file (inode) is left as it was: replaced, not rewritten
    fs.atomic_write_bytes(target, b"new", mode=0o444)
    assert target.read_bytes() == b"new"
    assert other.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["other", "out.txt"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o444


def test_a_missing_directory_is_made(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.txt"
    fs.atomic_write_bytes(target, b"x")
    assert target.read_bytes() == b"x"
    assert os.listdir(target.parent) == ["out.txt"]


def test_a_directory_in_the_way_fails_and_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(IsADirectoryError):
        fs.atomic_write_bytes(tmp_path / "out", b"x")
    assert os.listdir(tmp_path) == ["out"]
    assert os.listdir(tmp_path / "out") == []


def test_where_unnamed_files_are_refused_named_temp_files_are_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An old kernel takes O_TMPFILE for O_DIRECTORY and refuses to open a directory for
    writing (EISDIR): from then on the process writes named temp files."""
    monkeypatch.setattr(fs, "_UNNAMED", [True])
    monkeypatch.setattr(fs, "_UNNAMED_FLAGS", os.O_DIRECTORY | os.O_WRONLY)
    temps: list[str] = []
    real = fs.temp_name_for
    monkeypatch.setattr(fs, "temp_name_for", lambda path: temps.append(path) or real(path))
    fs.atomic_write_bytes(tmp_path / "first", b"1")
    assert fs._UNNAMED == []
    fs.atomic_write_bytes(tmp_path / "second", b"2", mode=0o444)
    assert [os.path.basename(path) for path in temps] == ["first", "second"]
    assert (tmp_path / "first").read_bytes() == b"1"
    assert (tmp_path / "second").read_bytes() == b"2"
    assert stat.S_IMODE((tmp_path / "second").stat().st_mode) == 0o444
    assert sorted(os.listdir(tmp_path)) == ["first", "second"]


def test_where_links_are_refused_the_file_is_written_under_a_temp_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(source: object, dest: object, **options: object) -> None:
        raise OSError(errno.EPERM, "hard links not supported here")

    monkeypatch.setattr(os, "link", refuse)
    fs.atomic_write_bytes(tmp_path / "new", b"1")
    fs.atomic_write_bytes(tmp_path / "new", b"2")
    assert (tmp_path / "new").read_bytes() == b"2"
    assert os.listdir(tmp_path) == ["new"]
