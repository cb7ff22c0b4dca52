"""The plan made again after a run (for the next no-op's snapshot) takes the locks the run's
worker path wrote from memory (`plan.WrittenLock`), checking each file's stat instead of reading
it back; a lock that is no longer the file written is read as before."""

from __future__ import annotations

import collections
import os
from pathlib import Path

import pytest

from pivot import api, plan
from pivot.store import lock
from tests.fixtures.engine_project import make_project

CHAIN = ("prepare", "train", "report", "side")


def _reads(monkeypatch: pytest.MonkeyPatch) -> collections.Counter[str]:
    """How many times each lock file is read by a plan, from now on."""
    counted: collections.Counter[str] = collections.Counter()
    real = plan._read_lock_of

    def counting(spec: object, path: Path | str) -> lock.LockEntry | None:
        counted[os.path.basename(path)] += 1
        return real(spec, path)  # type: ignore[arg-type]

    monkeypatch.setattr(plan, "_read_lock_of", counting)
    return counted


def test_the_locks_a_run_wrote_are_not_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project(tmp_path / "p", *CHAIN)
    reads = _reads(monkeypatch)

    _, report = api.repro(start=root, jobs=1, noop_snapshot=True)

    assert report.ok, report
    assert set(report.locks) == set(CHAIN)
    for name, written in report.locks.items():
        path = root / ".pivot" / "stages" / f"{name}.lock"
        assert lock.read_lock(path) == written.entry  # what the file holds
        st = path.stat()
        assert written.signature == (st.st_ino, st.st_size, st.st_mtime_ns)
    # read once each, by the first plan (there was no lock then); not again after the run
    assert reads == {f"{name}.lock": 1 for name in CHAIN}


def test_a_lock_changed_since_the_run_wrote_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project(tmp_path / "p", *CHAIN)
    real = lock.write_lock

    def and_rewritten(path: Path | str, entry: lock.LockEntry, spares: object = None) -> object:
        st = real(path, entry, spares)  # type: ignore[arg-type]
        if os.path.basename(path) == "train.lock":  # then changed behind the run's back
            real(path, entry)  # (a new file: another inode)
        return st

    monkeypatch.setattr(lock, "write_lock", and_rewritten)
    reads = _reads(monkeypatch)

    _, report = api.repro(start=root, jobs=1, noop_snapshot=True)

    assert report.ok, report
    assert reads["train.lock"] == 2
    assert reads["prepare.lock"] == 1
