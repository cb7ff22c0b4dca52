"""`fs.SpareFiles`: existing files are rewritten atomically by swapping in a spare file, whose
old inode becomes the next spare; what is not a private plain file is never reused, and what is
left behind is temp files that litter cleaning deletes. Lock readers read again when they
catch a spare being rewritten."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from pivot import fs
from pivot.store import hashing, lock
from pivot.store.lock import DepEntry, LockEntry, OutEntry


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temps(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if fs.is_temp_name(name))


def _files(directory: Path, count: int) -> list[Path]:
    paths = [directory / f"f{i}.lock" for i in range(count)]
    for path in paths:
        path.write_bytes(b"old " + path.name.encode() * 20)
    return paths


def test_rewrites_reuse_the_replaced_files_and_close_leaves_only_the_targets(
    tmp_path: Path,
) -> None:
    paths = _files(tmp_path, 4)
    inodes = {os.stat(path).st_ino for path in paths}
    spares = fs.SpareFiles()

    for i, path in enumerate(paths):
        spares.write(path, f"new {i}\n".encode())
        assert len(_temps(tmp_path)) == 1  # the replaced file, kept as the spare

    assert [path.read_bytes() for path in paths] == [f"new {i}\n".encode() for i in range(4)]
    # no file was created after the first: the last three took the inodes the first three had
    reused = {os.stat(path).st_ino for path in paths[1:]}
    assert reused <= inodes
    spares.close()
    assert sorted(os.listdir(tmp_path)) == sorted(path.name for path in paths)
    assert all(stat.S_IMODE(os.stat(p).st_mode) == 0o666 & ~_umask() for p in paths)


def test_a_missing_target_is_written_as_a_new_file(tmp_path: Path) -> None:
    spares = fs.SpareFiles()
    target = tmp_path / "sub" / "new.lock"

    spares.write(target, b"first")
    spares.close()

    assert target.read_bytes() == b"first"
    assert os.listdir(target.parent) == ["new.lock"]


def test_a_longer_then_shorter_content_is_exact(tmp_path: Path) -> None:
    paths = _files(tmp_path, 3)
    spares = fs.SpareFiles()
    spares.write(paths[0], b"x" * 10_000)
    spares.write(paths[1], b"short")  # written into the first one's old file
    spares.write(paths[2], b"y" * 10_000)  # into the second one's
    spares.close()
    assert [p.read_bytes() for p in paths] == [b"x" * 10_000, b"short", b"y" * 10_000]


def test_a_hard_linked_target_is_never_rewritten_through_its_other_name(tmp_path: Path) -> None:
    first, second = _files(tmp_path, 2)
    os.link(first, tmp_path / "elsewhere")
    spares = fs.SpareFiles()

    spares.write(first, b"new first")
    spares.write(second, b"new second")  # a spare reusing the old `first` would change it

    assert (tmp_path / "elsewhere").read_bytes() == b"old " + b"f0.lock" * 20
    assert os.stat(tmp_path / "elsewhere").st_nlink == 1
    spares.close()
    assert _temps(tmp_path) == []


def test_a_target_with_another_mode_does_not_pass_it_on(tmp_path: Path) -> None:
    first, second, third = _files(tmp_path, 3)
    first.chmod(0o600)
    spares = fs.SpareFiles()

    for path in (first, second, third):
        spares.write(path, b"new")

    expected = 0o666 & ~_umask()
    assert stat.S_IMODE(os.stat(first).st_mode) == expected  # a new file, as before
    assert stat.S_IMODE(os.stat(second).st_mode) == expected  # not the 0600 one reused
    assert stat.S_IMODE(os.stat(third).st_mode) == expected
    spares.close()


def test_a_directory_target_is_refused_and_left_whole(tmp_path: Path) -> None:
    (first,) = _files(tmp_path, 1)
    directory = tmp_path / "d.lock"
    (directory / "inner").mkdir(parents=True)
    (directory / "inner" / "keep.txt").write_text("keep")
    spares = fs.SpareFiles()
    spares.write(first, b"new")  # now a spare exists

    with pytest.raises(IsADirectoryError):
        spares.write(directory, b"data")

    assert (directory / "inner" / "keep.txt").read_text() == "keep"
    assert first.read_bytes() == b"new"
    spares.close()
    assert _temps(tmp_path) == []


def test_what_a_killed_writer_leaves_is_temp_files_that_litter_cleaning_removes(
    tmp_path: Path,
) -> None:
    paths = _files(tmp_path, 3)
    spares = fs.SpareFiles()
    for path in paths:
        spares.write(path, b"new")
    # killed here: close never runs
    litter = _temps(tmp_path)
    assert len(litter) == 1  # the spare

    assert fs.remove_temp_files(tmp_path, recursive=True) == len(litter)
    assert sorted(os.listdir(tmp_path)) == sorted(path.name for path in paths)


def test_a_removed_spare_is_replaced_by_a_new_file(tmp_path: Path) -> None:
    first, second = _files(tmp_path, 2)
    spares = fs.SpareFiles()
    spares.write(first, b"one")
    for name in _temps(tmp_path):
        os.unlink(tmp_path / name)  # e.g. another process cleaned it away

    spares.write(second, b"two")

    assert second.read_bytes() == b"two"
    spares.close()
    assert _temps(tmp_path) == []


def _entry(stage: str, serial: int) -> LockEntry:
    digest = hashing.hash_bytes(f"{stage} {serial}".encode())
    outs = tuple(OutEntry(f"out/{stage}/{i}.txt", digest, True, False) for i in range(serial % 7))
    return LockEntry(stage, {stage: digest}, {"n": serial}, (DepEntry("in.txt", digest),), outs)


def test_lock_readers_racing_rewrites_only_ever_see_their_own_stage(tmp_path: Path) -> None:
    """A reader that opened a lock just before a rewrite swapped it out may read it while it is
    being filled as another lock: read_lock reads again then, so it never reports a corrupt
    lock or another stage's entry."""
    stages = [f"s{i}" for i in range(8)]
    for stage in stages:
        lock.write_lock(tmp_path / f"{stage}.lock", _entry(stage, 0))
    stop = threading.Event()
    problems: list[str] = []

    def rewrite() -> None:
        spares = fs.SpareFiles()
        serial = 0
        while not stop.is_set():
            serial += 1
            for stage in stages:
                lock.write_lock(tmp_path / f"{stage}.lock", _entry(stage, serial), spares)
        spares.close()

    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        for _ in range(3000):
            for stage in stages:
                try:
                    entry = lock.read_lock(tmp_path / f"{stage}.lock")
                except Exception as error:  # collected: the assertion names it
                    problems.append(f"{stage}: {error}")
                    continue
                if entry is None or entry.stage != stage:
                    problems.append(f"{stage}: read {entry}")
    finally:
        stop.set()
        writer.join()
    assert problems == []
