"""Backup: previous outputs set aside by renaming (no new file or directory for a short path),
put back on failure, dropped on success (or thrown away to be removed later), and recovered
after a killed run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pivot.store.backup import DISCARDED, Backup, recover, remove_discarded

LONG = "deep/" + "x" * 200 + "/" + "y" * 60 + ".txt"  # too long for one flat file name


def _all_set_aside(root: Path, scratch: Path) -> Backup:
    """A backup of a short file path, a directory and a path too long for a flat name."""
    backup = Backup(root, scratch, "stage")
    for path in ("out/a.txt", "parts/", LONG):
        backup.move(path)
    return backup


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.txt").write_text("old a")
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "0.txt").write_text("old part")
    (tmp_path / LONG).parent.mkdir(parents=True)
    (tmp_path / LONG).write_text("old long")
    return tmp_path


def test_short_paths_wait_in_scratch_under_names_saying_where_they_came_from(root: Path) -> None:
    scratch = root / ".pivot" / "tmp"
    backup = Backup(root, scratch, "stage")
    backup.move("out/a.txt")
    backup.move("parts/")
    backup.move("out/missing.txt")

    assert not (root / "out" / "a.txt").exists() and not (root / "parts").exists()
    names = sorted(entry.name for entry in scratch.iterdir())
    assert [name.split("=", 2)[2] for name in names] == ["out%2Fa.txt", "parts%2F"]
    assert all(entry.is_file() or entry.is_dir() for entry in scratch.iterdir())

    backup.discard()
    assert list(scratch.iterdir()) == []


def test_restore_puts_back_short_and_long_paths_over_what_the_failed_run_left(root: Path) -> None:
    scratch = root / "scratch"
    backup = _all_set_aside(root, scratch)
    (root / "out" / "a.txt").write_text("half-written by the failing run")

    backup.restore()

    assert (root / "out" / "a.txt").read_text() == "old a"
    assert (root / "parts" / "0.txt").read_text() == "old part"
    assert (root / LONG).read_text() == "old long"
    assert list(scratch.iterdir()) == []


def test_copy_keeps_the_output_in_place(root: Path) -> None:
    backup = Backup(root, root / "scratch", "stage")
    backup.copy("out/a.txt")
    (root / "out" / "a.txt").write_text("appended by the failing run")

    backup.restore()

    assert (root / "out" / "a.txt").read_text() == "old a"


def test_recover_puts_back_what_a_killed_run_left_where_the_workspace_has_nothing(
    root: Path,
) -> None:
    scratch = root / "scratch"
    _all_set_aside(root, scratch)
    (root / "out" / "a.txt").write_text("the new output was complete")
    # the run was killed here: nothing restored or discarded

    restored = recover(root, scratch, {"out/a.txt", "parts/", LONG})

    assert sorted(restored) == sorted(["parts/", LONG])
    assert (root / "out" / "a.txt").read_text() == "the new output was complete"
    assert (root / "parts" / "0.txt").read_text() == "old part"
    assert (root / LONG).read_text() == "old long"
    assert list(scratch.iterdir()) == []


def test_recover_leaves_undeclared_paths_and_reads_older_backups(root: Path) -> None:
    scratch = root / "scratch"
    Backup(root, scratch, "stage").move("out/a.txt")
    older = scratch / "train.0123456789ab"  # a backup in the directory-and-index form
    (older / "files" / "parts").mkdir(parents=True)
    (older / "files" / "parts" / "1.txt").write_text("older part")
    (older / "paths.json").write_text(json.dumps(["parts/"]))
    (root / "parts" / "0.txt").unlink()
    (root / "parts").rmdir()

    restored = recover(root, scratch, {"parts/"})

    assert restored == ["parts/"]
    assert (root / "parts" / "1.txt").read_text() == "older part"
    assert not (root / "out" / "a.txt").exists()  # no longer declared: not put back
    assert list(scratch.iterdir()) == []


def test_discard_later_renames_files_out_of_reach_of_recover_and_removes_the_rest_now(
    root: Path,
) -> None:
    scratch = root / "scratch"
    backup = _all_set_aside(root, scratch)
    handed: list[str] = []

    backup.discard(later=handed.append)

    thrown = scratch / DISCARDED / Path(handed[0]).name
    assert handed == [str(thrown)] and thrown.read_text() == "old a"
    assert [entry.name for entry in scratch.iterdir()] == [DISCARDED]  # directory, long path: gone
    # the run is killed before the file is removed, and the workspace has nothing there:
    # a discarded output is never put back
    assert recover(root, scratch, {"out/a.txt", "parts/", LONG}) == []
    assert not (root / "out" / "a.txt").exists()
    assert list(scratch.iterdir()) == []


def test_remove_discarded_removes_what_waits_and_takes_files_gone_already(root: Path) -> None:
    scratch = root / "scratch"
    handed: list[str] = []
    for stage, path in (("one", "out/a.txt"), ("two", "parts/0.txt")):
        backup = Backup(root, scratch, stage)
        backup.move(path)
        backup.discard(later=handed.append)
    os.unlink(handed[0])  # removed by a worker's thread before the run ended

    remove_discarded(scratch)

    assert list(scratch.iterdir()) == []
    remove_discarded(scratch)  # nothing discarded: nothing to do
