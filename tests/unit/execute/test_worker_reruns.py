"""A stage run again, as after a code edit, in a pool worker: an output whose bytes did not
change is its previous file put back (same inode, mtime now), never a stale or shared file;
lock rewrites go through spare files and leave none behind; failures still put every previous
output back."""

from __future__ import annotations

import dataclasses
import os
import stat
import time
from pathlib import Path

import pytest

from pivot import fs
from pivot.execute import worker
from pivot.execute.worker import StageTask
from pivot.store import hashing, lock, logs
from pivot.store.backup import Backup
from pivot.store.cache import Cache
from tests.unit.execute.test_execute_worker import task_for


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "raw.txt").write_text("ab")
    monkeypatch.chdir(tmp_path)  # stages run with the project root as cwd
    return tmp_path


def _ran(task: StageTask) -> worker.Outcome:
    outcome = worker.execute_stage(task)
    assert outcome.ok, outcome.error
    return outcome


def test_an_unchanged_output_is_its_previous_file_put_back_with_a_new_mtime(root: Path) -> None:
    task = task_for(root, "prepare", factor=2)
    _ran(task)  # a first output written anew (this process learns what a new file gets here)
    output = root / "prepared.txt"
    os.utime(output, (1_000_000, 1_000_000))
    before = os.stat(output)

    outcome = _ran(task)

    after = os.stat(output)
    assert output.read_text() == "abab"
    assert after.st_ino == before.st_ino  # the same file, not a new one
    assert after.st_mtime > time.time() - 60  # touched, as a write would
    digest = hashing.hash_bytes(b"abab")
    assert [(out.path, out.hash) for out in outcome.outs] == [("prepared.txt", digest)]
    assert Cache(root / "cache").verify(digest)
    assert not any((root / "tmp").iterdir())  # nothing set aside is left


def test_a_changed_output_is_written_anew(root: Path) -> None:
    _ran(task_for(root, "prepare", factor=2))
    _ran(task_for(root, "prepare", factor=2))

    _ran(task_for(root, "prepare", factor=3))

    assert (root / "prepared.txt").read_text() == "ababab"
    assert not any((root / "tmp").iterdir())


def test_a_previous_output_with_another_mode_is_not_put_back(root: Path) -> None:
    task = task_for(root, "prepare", factor=2)
    _ran(task)
    output = root / "prepared.txt"
    fresh_mode = stat.S_IMODE(os.stat(output).st_mode)
    os.chmod(output, 0o400)

    _ran(task)

    assert stat.S_IMODE(os.stat(output).st_mode) == fresh_mode  # as a new file gets it
    assert output.read_text() == "abab"


def test_a_previous_output_linked_elsewhere_is_not_put_back(root: Path) -> None:
    task = task_for(root, "prepare", factor=2)
    _ran(task)
    output = root / "prepared.txt"
    os.link(output, root / "elsewhere.txt")

    _ran(task)

    assert output.read_text() == (root / "elsewhere.txt").read_text() == "abab"
    assert os.stat(output).st_ino != os.stat(root / "elsewhere.txt").st_ino
    assert os.stat(root / "elsewhere.txt").st_nlink == 1


def test_an_output_put_back_stays_when_the_run_fails_later(tmp_path: Path) -> None:
    for name, text in (("a.txt", "same"), ("b.txt", "old b")):
        (tmp_path / name).write_text(text)
    made = os.stat(tmp_path / "a.txt")
    backup = Backup(tmp_path, tmp_path / "scratch", "stage")
    backup.move("a.txt")
    backup.move("b.txt")

    assert not backup.put_back_same("b.txt", b"new b", (made.st_mode, made.st_uid, made.st_gid))
    assert backup.put_back_same("a.txt", b"same", (made.st_mode, made.st_uid, made.st_gid))
    (tmp_path / "b.txt").write_text("half-written by the failing run")
    backup.restore()

    assert (tmp_path / "a.txt").read_text() == "same"
    assert os.stat(tmp_path / "a.txt").st_ino == made.st_ino
    assert (tmp_path / "b.txt").read_text() == "old b"
    assert not any((tmp_path / "scratch").iterdir())


def test_an_output_whose_bytes_differ_is_not_put_back(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("abcd")
    made = os.stat(tmp_path / "a.txt")
    backup = Backup(tmp_path, tmp_path / "scratch", "stage")
    backup.move("a.txt")

    assert not backup.put_back_same("a.txt", b"abce", (made.st_mode, made.st_uid, made.st_gid))
    assert not (tmp_path / "a.txt").exists()
    backup.restore()
    assert (tmp_path / "a.txt").read_text() == "abcd"


def _locking(root: Path, *, first_run: bool = False) -> tuple[StageTask, Path]:
    """A task whose worker writes the stage's lock (its observed code as a run observes it),
    and that lock's path."""
    lock_path = root / ".pivot" / "stages" / "prepare.lock"
    task = task_for(root, "prepare", factor=2)
    observed = _ran(task).observed
    return (
        dataclasses.replace(task, lock_path=str(lock_path), observed=observed, first_run=first_run),
        lock_path,
    )


def test_lock_rewrites_in_a_pool_worker_go_through_spares_and_leave_none(root: Path) -> None:
    task, lock_path = _locking(root)
    _ran(task)  # the lock's first version
    written = lock_path.read_bytes()

    with worker.spare_lock_files():
        for _ in range(3):
            inode = os.stat(lock_path).st_ino
            outcome = _ran(task)
            st = os.stat(lock_path)
            assert outcome.lock_signature == (st.st_ino, st.st_size, st.st_mtime_ns)
            assert lock_path.read_bytes() == written
            assert st.st_ino != inode  # swapped in, not rewritten in place
        assert any(fs.is_temp_name(name) for name in os.listdir(lock_path.parent))

    assert os.listdir(lock_path.parent) == ["prepare.lock"]  # the spare is gone
    entry = lock.read_lock(lock_path)
    assert entry is not None and entry.stage == "prepare"


def test_a_silent_run_keeps_an_empty_last_run_log_and_replaces_one_that_holds_text(
    tmp_path: Path,
) -> None:
    runs = tmp_path / "logs" / "runs"
    for run_id in ("one", "two", "three"):
        (runs / run_id).mkdir(parents=True)
        (runs / run_id / "stage.log").write_text("")
    latest = tmp_path / "logs" / "stage.log"
    logs.publish_run_log(str(runs / "one" / "stage.log"), first=True, silent=True)
    assert os.stat(latest).st_ino == os.stat(runs / "one" / "stage.log").st_ino

    logs.publish_run_log(str(runs / "two" / "stage.log"), progressed=False, silent=True)
    assert os.stat(latest).st_ino == os.stat(runs / "one" / "stage.log").st_ino  # left as it was

    (runs / "one" / "stage.log").write_text("printed last time")
    logs.publish_run_log(str(runs / "three" / "stage.log"), progressed=False, silent=True)
    assert latest.read_text() == ""
    assert os.stat(latest).st_ino == os.stat(runs / "three" / "stage.log").st_ino


def test_spare_rewrites_of_other_sizes_hold_exactly_the_bytes_written(tmp_path: Path) -> None:
    spares = fs.SpareFiles()
    paths = [tmp_path / f"{name}.lock" for name in "abc"]
    for path in paths:
        path.write_bytes(b"x" * 50)
    try:
        for path, data in zip(paths, (b"long " * 20, b"short", b"")):
            st = spares.write_stat(path, data)
            assert path.read_bytes() == data
            now = os.stat(path)
            assert (st.st_ino, st.st_size, st.st_mtime_ns) == (
                now.st_ino,
                now.st_size,
                now.st_mtime_ns,
            )
    finally:
        spares.close()
    assert sorted(os.listdir(tmp_path)) == ["a.lock", "b.lock", "c.lock"]


def test_inside_lstat_gives_the_path_s_lstat_or_none(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.txt").write_text("x")
    os.symlink(tmp_path / "d" / "f.txt", tmp_path / "d" / "link.txt")

    found = fs.inside_lstat(tmp_path, "d/f.txt")
    assert found is not None and found.st_ino == os.lstat(tmp_path / "d" / "f.txt").st_ino
    link = fs.inside_lstat(tmp_path, "d/link.txt")  # resolved inside: the link's own lstat
    assert link is not None and stat.S_ISLNK(link.st_mode)
    assert fs.inside_lstat(tmp_path, "d/missing.txt") is None
    assert fs.inside_lstat(tmp_path, "missing/f.txt") is None
    assert fs.inside_lstat(tmp_path, "d/") is not None


def test_a_backup_makes_its_scratch_directory_when_it_first_moves(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    backup = Backup(tmp_path, tmp_path / "not" / "yet", "stage")
    backup.move("a.txt")
    assert not (tmp_path / "a.txt").exists()
    backup.restore()
    assert (tmp_path / "a.txt").read_text() == "a"


def test_a_first_lock_in_a_pool_worker_is_written_without_a_spare(root: Path) -> None:
    task, lock_path = _locking(root, first_run=True)

    with worker.spare_lock_files():
        outcome = _ran(task)
        assert os.listdir(lock_path.parent) == ["prepare.lock"]  # no spare made for it

    st = os.stat(lock_path)
    assert outcome.lock_signature == (st.st_ino, st.st_size, st.st_mtime_ns)
    entry = lock.read_lock(lock_path)
    assert entry is not None and entry.stage == "prepare"
