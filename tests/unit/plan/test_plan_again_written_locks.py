"""The plan made again after a run (for the next no-op's snapshot) takes the locks the run's
worker path wrote from memory (`plan.WrittenLock`), checking each file's stat instead of reading
it back; a lock that is no longer the file written is read as before. A first plan lists the
locks' directory rather than opening each missing lock file."""

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
    # read by neither plan: the first found none in the listing, the second knew them
    assert not reads


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
    assert reads == {"train.lock": 1}  # by the plan made again only


def test_a_first_plan_opens_no_missing_lock_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project(tmp_path / "p", *CHAIN)
    _, report = api.repro(start=root, jobs=1)
    assert report.ok, report
    (root / ".pivot" / "stages" / "side.lock").unlink()
    reads = _reads(monkeypatch)

    with api.open_context(root) as ctx:
        decided = plan.make_plan(ctx, ctx.graph.order)

    assert reads == {f"{name}.lock": 1 for name in ("prepare", "train", "report")}
    assert [s.stage for s in decided.steps if s.previous is None] == ["side"]
