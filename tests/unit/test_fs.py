"""Atomic writes leave either the old file or the new one, and never a temp file behind; OS
errors become the most specific FilesystemError, naming the path and the fix."""

from __future__ import annotations

import errno
import os
import pickle
import stat
from pathlib import Path

import pytest

from pivot import errors, fs


def _names(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def test_atomic_write_bytes_creates_parents_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.bin"
    fs.atomic_write_bytes(target, b"\x00data")
    assert target.read_bytes() == b"\x00data"
    assert _names(target.parent) == ["out.bin"]


def test_atomic_write_text_is_utf8_without_newline_translation(tmp_path: Path) -> None:
    target = tmp_path / "t.txt"
    fs.atomic_write_text(target, "héllo\r\nworld\n")
    assert target.read_bytes() == "héllo\r\nworld\n".encode()


def test_atomic_write_replaces_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("old")
    fs.atomic_write_text(target, "new")
    assert target.read_text() == "new"


def test_atomic_output_yields_temp_in_same_directory(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "data.csv"
    with fs.atomic_output(target) as temp:
        assert temp.parent == target.parent
        assert fs.is_temp_name(temp.name)
        assert temp.name.startswith(".data.csv.")
        assert not temp.exists()
        temp.write_text("x")
        assert not target.exists()
    assert target.read_text() == "x"
    assert _names(target.parent) == ["data.csv"]


@pytest.mark.parametrize("error", [ValueError("boom"), KeyboardInterrupt()])
def test_atomic_output_on_error_keeps_old_file_and_deletes_temp(
    tmp_path: Path, error: BaseException
) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(type(error)), fs.atomic_output(target) as temp:
        temp.write_text("half-writ")
        raise error
    assert target.read_text() == "old"
    assert _names(tmp_path) == ["out.txt"]


def test_atomic_output_removes_a_temp_directory_on_error(tmp_path: Path) -> None:
    target = tmp_path / "dir_out"
    with pytest.raises(RuntimeError), fs.atomic_output(target) as temp:
        (temp / "nested").mkdir(parents=True)
        (temp / "nested" / "f").write_text("x")
        raise RuntimeError
    assert _names(tmp_path) == []


def test_atomic_output_when_caller_wrote_nothing_raises_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    with pytest.raises(FileNotFoundError), fs.atomic_output(tmp_path / "never"):
        pass
    assert _names(tmp_path) == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (".data.csv.0123456789abcdef.tmp", True),
        (".x.fedcba9876543210.tmp", True),
        ("data.csv", False),
        (".data.csv.tmp", False),
        (".hidden", False),
        ("data.0123456789abcdef.tmp", False),
    ],
)
def test_is_temp_name(name: str, expected: bool) -> None:
    assert fs.is_temp_name(name) is expected


def test_temp_path_for_is_fresh_each_time(tmp_path: Path) -> None:
    target = tmp_path / "x"
    assert fs.temp_path_for(target) != fs.temp_path_for(target)


def test_make_readonly_clears_every_write_bit(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("x")
    os.chmod(target, 0o666)
    fs.make_readonly(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o444


def test_remove_path_handles_file_symlink_tree_and_missing(tmp_path: Path) -> None:
    kept = tmp_path / "kept"
    kept.write_text("target")
    link = tmp_path / "link"
    link.symlink_to(kept)
    fs.remove_path(link)
    assert not link.is_symlink()
    assert kept.read_text() == "target"

    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "f").write_text("x")
    (tree / "a" / "dirlink").symlink_to(tmp_path / "other", target_is_directory=True)
    os.chmod(tree / "a" / "b", 0o500)
    fs.remove_path(tree)
    assert not tree.exists()

    fs.remove_path(kept)
    assert not kept.exists()
    fs.remove_path(tmp_path / "missing")


def test_remove_path_does_not_follow_a_symlink_to_a_directory(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "f").write_text("x")
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    fs.remove_path(link)
    assert (real / "f").read_text() == "x"


@pytest.mark.parametrize(
    ("code", "kind", "fix"),
    [
        (errno.ENOSPC, errors.DiskFullError, "free space"),
        (errno.EACCES, errors.PermissionDeniedError, "make the directory writable"),
        (errno.EROFS, errors.PermissionDeniedError, "the file system is mounted read-only"),
        (errno.ENAMETOOLONG, errors.PathTooLongError, "shorten the path"),
        (errno.EIO, errors.FilesystemError, "check that the path"),
    ],
)
def test_map_os_errors_gives_the_specific_error_with_path_and_fix(
    tmp_path: Path, code: int, kind: type[errors.FilesystemError], fix: str
) -> None:
    temp = fs.temp_path_for(tmp_path / "out.csv")
    with pytest.raises(kind) as raised, fs.map_os_errors("out.csv", "save output"):
        raise OSError(code, os.strerror(code), str(temp))
    message = str(raised.value)
    assert message.startswith("cannot save output 'out.csv': " + os.strerror(code))
    assert f"'{tmp_path}{os.sep}'" in message  # the directory, never our temp file's name
    assert errno.errorcode[code] in message and f"Fix: {fix}" in message
    assert (raised.value.path, raised.value.errno) == ("out.csv", code)
    clone = pickle.loads(pickle.dumps(raised.value))
    assert (type(clone), str(clone), clone.path, clone.errno) == (kind, message, "out.csv", code)


def test_map_os_errors_leaves_other_errors_alone() -> None:
    with pytest.raises(ValueError, match="not an OS error"), fs.map_os_errors("x", "read"):
        raise ValueError("not an OS error")


def test_check_inside_refuses_symlinks_leading_out_and_only_those(tmp_path: Path) -> None:
    root, outside = tmp_path / "project", tmp_path / "outside"
    (root / "real").mkdir(parents=True)
    outside.mkdir()
    (root / "out_dir").symlink_to(outside, target_is_directory=True)
    (root / "in_dir").symlink_to(root / "real", target_is_directory=True)
    (root / "real" / "file_out").symlink_to(outside / "x.txt")

    for fine in ("a.txt", "not/yet/made.txt", "real/", "in_dir/a.txt", "dir/"):
        fs.check_inside(root, fine)
    for bad in ("out_dir/a.txt", "out_dir/deeper/a.txt", "real/file_out", "in_dir/file_out"):
        with pytest.raises(errors.PathEscapeError, match="leads outside the project"):
            fs.check_inside(root, bad)
    with pytest.raises(errors.PathEscapeError):
        fs.check_inside(root, "../outside/a.txt")


@pytest.mark.parametrize("size", [0, 1, 65_535, 65_536, 65_537, 3_000_001])
def test_read_bytes_gives_the_whole_file(tmp_path: Path, size: int) -> None:
    target = tmp_path / "data.bin"
    data = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    target.write_bytes(data)

    assert fs.read_bytes(target) == data
