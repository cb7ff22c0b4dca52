"""The no-op snapshot's file (store.snapshot) and its recorder's environment (pivot.noop)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

import pivot
from pivot import noop
from pivot.store import snapshot
from pivot.store.snapshot import Snapshot


def _snapshot(tmp_path: Path, **changes: object) -> Snapshot:
    data = tmp_path / "data.txt"
    data.write_text("one")
    values: dict[str, object] = {
        "command": "status",
        "root": str(tmp_path),
        "interpreter": snapshot.interpreter(),
        "version": pivot.__version__,
        "sys_path": snapshot.search_path(),
        "environ": {"NOOP_TEST_SET": "yes", "NOOP_TEST_UNSET": None},
        "environ_digest": None,
        "stats": {str(data): snapshot.signature(os.stat(data)), str(tmp_path / "gone"): None},
        "lstats": {},
        "listings": {str(tmp_path): snapshot.listing(os.stat(tmp_path))},
        "exists": {str(tmp_path / ".git"): False},
        "stages": ("a", "b"),
        "packages": {"a": {"numpy": "2.0"}},
        "warnings": ("careful",),
    }
    values.update(changes)
    return Snapshot(**values)  # type: ignore[arg-type]


ENV = {"NOOP_TEST_SET": "yes"}


def test_a_saved_snapshot_loads_as_it_was_and_holds(tmp_path: Path) -> None:
    store = tmp_path / ".pivot"  # (not the listed directory: a new file there changes it)
    store.mkdir()
    saved = _snapshot(tmp_path)
    snapshot.save(store, saved)
    loaded = snapshot.load(store, "status")
    assert loaded == saved
    assert loaded is not None and _holds(loaded)
    assert snapshot.load(store, "repro") is None


@pytest.mark.parametrize("cut", [0, 5, 20, 60, -1])
def test_a_damaged_file_is_no_snapshot(tmp_path: Path, cut: int) -> None:
    snapshot.save(tmp_path, _snapshot(tmp_path))
    path = Path(snapshot.path_of(tmp_path, "status"))
    blob = path.read_bytes()
    path.write_bytes(blob[:cut] if cut >= 0 else blob[:-1] + bytes([blob[-1] ^ 1]))
    assert snapshot.load(tmp_path, "status") is None


def _holds(found: Snapshot, environ: dict[str, str] = ENV) -> bool:
    return snapshot.holds(found, version=pivot.__version__, environ=environ)


def test_any_change_breaks_it(tmp_path: Path) -> None:
    found = _snapshot(tmp_path)
    assert _holds(found)
    assert not _holds(found, {})  # a variable read is unset now
    assert not _holds(found, {**ENV, "NOOP_TEST_UNSET": "1"})  # one that was unset is set
    assert not snapshot.holds(found, version="0.0.0", environ=ENV)
    whole = _snapshot(tmp_path, environ_digest=snapshot.environment_digest(ENV))
    assert _holds(whole) and not _holds(whole, {**ENV, "OTHER": "1"})
    (tmp_path / "new.txt").write_text("a new entry in a listed directory")
    assert not _holds(found)
    found = _snapshot(tmp_path)
    (tmp_path / "gone").mkdir()  # a path recorded as missing appears
    assert not _holds(found)
    found = _snapshot(tmp_path)
    (tmp_path / "data.txt").write_text("two")
    assert not _holds(found)
    found = _snapshot(tmp_path, sys_path=(*snapshot.search_path(), "/elsewhere"))
    assert not _holds(found)


def test_discard_removes_every_commands_snapshot(tmp_path: Path) -> None:
    for command in snapshot.COMMANDS:
        snapshot.save(tmp_path, _snapshot(tmp_path, command=command))
    snapshot.discard(tmp_path)
    assert [snapshot.load(tmp_path, command) for command in snapshot.COMMANDS] == [None, None]


def test_the_environment_seen_at_import_is_recorded_and_keeps_working(tmp_path: Path) -> None:
    recorder = noop.Recorder("status", tmp_path)
    real = os.environ
    os.environ["NOOP_TEST_READ"] = "1"
    try:
        with recorder.importing():
            from os import environ  # as a module would at import: it keeps this mapping

            environ.get("NOOP_TEST_READ")
            os.getenv("NOOP_TEST_MISSING")
            environ["NOOP_TEST_WRITTEN"] = "mine"
            environ.get("NOOP_TEST_WRITTEN")  # the code's own value: not an input
        assert os.environ is real
        assert recorder.environ == {"NOOP_TEST_READ": "1", "NOOP_TEST_MISSING": None}
        assert not recorder.whole_environ
        environ["NOOP_TEST_LATER"] = "2"  # after the import: still the real environment
        assert real["NOOP_TEST_LATER"] == "2" and environ["NOOP_TEST_READ"] == "1"
        assert "NOOP_TEST_LATER" not in recorder.environ
    finally:
        for key in ("NOOP_TEST_READ", "NOOP_TEST_WRITTEN", "NOOP_TEST_LATER"):
            real.pop(key, None)
    assert recorder.refused is None


def test_reading_the_whole_environment_is_recorded(tmp_path: Path) -> None:
    recorder = noop.Recorder("status", tmp_path)
    with recorder.importing():
        dict(os.environ)
    assert recorder.whole_environ


def test_what_the_import_stats_and_lists_is_recorded(tmp_path: Path) -> None:
    (tmp_path / "listed").mkdir()
    recorder = noop.Recorder("status", tmp_path)
    with recorder.importing():
        from os import stat as stat_kept

        os.path.exists(tmp_path / "absent.txt")
        os.listdir(tmp_path / "listed")
        (tmp_path / "read.txt").exists()
    assert recorder.stats[str(tmp_path / "absent.txt")] is None
    assert str(tmp_path / "listed") in recorder.listings
    assert os.stat.__module__ in ("posix", "nt")  # the real one back
    kept = recorder.stats.copy()
    (tmp_path / "later.txt").write_text("x")
    stat_kept(tmp_path / "later.txt")  # bound during the import: it works, and notes nothing
    assert recorder.stats == kept
    assert recorder.refused is None
    assert sys.modules  # the module files were noted too
    assert os.path.abspath(noop.__file__) in recorder.stats


def test_a_path_changed_just_before_the_decision_is_not_trusted(tmp_path: Path) -> None:
    from pivot.plan import Plan

    nothing = Plan((), ())
    fresh, coarse, old = tmp_path / "fresh.txt", tmp_path / "coarse.txt", tmp_path / "old.txt"
    for path in (fresh, coarse, old):
        path.write_text("x")
    os.utime(old, ns=(0, 10**18))
    recorder = noop.Recorder("status", tmp_path)
    recorder.note_path(str(old))
    assert recorder.snapshot(nothing) is not None
    for path in (coarse, fresh):
        recorder = noop.Recorder("status", tmp_path)
        # (stamped from the recorder's start: a busy machine may take long to get here)
        os.utime(coarse, ns=(0, (recorder.started // 10**9 - 1) * 10**9))  # 1 s ago, in seconds
        os.utime(fresh, ns=(0, recorder.started - 10**6))  # 1 ms before
        recorder.note_path(str(path))
        assert recorder.snapshot(nothing) is None
        assert recorder.refused is not None and "too recently" in recorder.refused


def test_printing_at_import_is_seen_and_streams_kept_keep_working(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sys.stdout
    quiet = noop.Recorder("status", tmp_path)
    with quiet.importing():
        kept = sys.stderr  # as a logging handler made at import keeps it
    assert quiet.refused is None and sys.stdout is before
    kept.write("later\n")  # after the import: a working stream, and nothing to note
    assert quiet.refused is None
    talking = noop.Recorder("status", tmp_path)
    with talking.importing():
        print("hello")
    assert talking.refused is not None and "printed" in talking.refused
    assert capsys.readouterr() == ("hello\n", "later\n")


def test_a_plan_made_again_replaces_what_the_first_plan_read_not_what_the_import_read(
    tmp_path: Path,
) -> None:
    from pivot.plan import Plan

    nothing = Plan((), ())
    settings, lock, source = (tmp_path / n for n in ("settings.json", "s.lock", "helper.py"))
    for path in (settings, lock, source):
        path.write_text("one")
        os.utime(path, ns=(0, 10**18))
    recorder = noop.Recorder("repro", tmp_path)
    with recorder.importing():
        settings.read_text()
    with recorder.planning():
        lock.read_text()
    lock.write_text("two!")  # the run rewrites it
    os.utime(lock, ns=(0, 15 * 10**17))
    with recorder.replanning([], wait=0.0):
        assert recorder.unchanged(str(source)) is False  # the first plan never read it
        lock.read_text()
    found = recorder.snapshot(nothing)
    assert found is not None, recorder.refused
    assert found.stats[str(lock)] == snapshot.signature(os.stat(lock))

    recorder = noop.Recorder("repro", tmp_path)
    with recorder.importing():
        settings.read_text()
    settings.write_text("changed in the run")
    with recorder.replanning([], wait=0.0):
        settings.read_text()
    assert recorder.snapshot(nothing) is None
    assert "changed" in str(recorder.refused)


def test_reused_fingerprints_need_their_sources_as_they_were_read(tmp_path: Path) -> None:
    from pivot.plan import Plan

    source = tmp_path / "helper.py"
    source.write_text("def f(): pass\n")
    os.utime(source, ns=(0, 10**18))
    st = os.stat(source)
    for mtime, holds in ((st.st_mtime_ns, True), (st.st_mtime_ns - 1, False)):
        recorder = noop.Recorder("repro", tmp_path)
        with recorder.replanning([], wait=0.0):
            recorder.note_sources([(str(source), mtime, st.st_size)] * 2)
        assert (recorder.snapshot(Plan((), ())) is not None) is holds, recorder.refused


def test_a_path_the_plan_made_again_saw_just_after_it_changed_is_not_trusted(
    tmp_path: Path,
) -> None:
    """In a plan made again, a path is judged from when that plan saw it: changed 10 ms
    before (or within the last 2 s, for a time in whole seconds), no snapshot; changed 1.5 s
    before the command started (a time in ns), a snapshot."""
    from pivot.plan import Plan

    nothing = Plan((), ())
    path = tmp_path / "written.txt"
    path.write_text("x")
    for age_ns, trusted in ((None, False), (10**9, False), (1_500_000_007, True)):
        recorder = noop.Recorder("repro", tmp_path)
        if age_ns is None:  # 10 ms before it is seen
            os.utime(path, ns=(0, time.time_ns() - 10**7))
        elif age_ns == 10**9:  # 1 s before, in whole seconds
            os.utime(path, ns=(0, (recorder.started // 10**9 - 1) * 10**9))
        else:
            os.utime(path, ns=(0, recorder.started - age_ns))
        with recorder.replanning([], wait=0.0):
            recorder.note_path(str(path))
        found = recorder.snapshot(nothing)
        assert (found is not None) is trusted, (age_ns, recorder.refused)
