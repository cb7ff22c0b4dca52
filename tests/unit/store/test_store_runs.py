"""Run history records (pivot.store.runs) and reading git (pivot.store.git)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest

from pivot.errors import NoRecordError, RevisionError
from pivot.store import git, runs
from pivot.store.runs import GitState, RunRecord, StageRecord


def _record(started: str, *, ok: bool = True) -> RunRecord:
    return RunRecord(
        id=runs.new_run_id(started),
        started=started,
        duration=1.5,
        command="pivot repro -j 2",
        git=GitState("a" * 40, "main", dirty=True),
        pivot_version="0.1.0",
        python_version="3.11.7",
        ok=ok,
        interrupted=False,
        stages=(
            StageRecord("prep", "skip", "skipped"),
            StageRecord(
                "train", "run", "failed", ("params changed: lr",), 0.25, "Traceback\nValueError"
            ),
        ),
        warnings=("careful",),
    )


def test_records_round_trip_and_list_newest_first(tmp_path: Path) -> None:
    first = _record("2026-11-30T07:00:00.000+00:00")
    second = _record("2026-11-30T08:00:00.000+00:00", ok=False)
    runs.write_run(tmp_path, first)
    path = runs.write_run(tmp_path, second)
    assert json.loads(path.read_text())["schema_version"] == runs.SCHEMA_VERSION
    assert runs.list_runs(tmp_path) == [second, first]
    assert runs.list_runs(tmp_path, limit=1) == [second]
    assert second.count("failed") == 1 and second.count("skipped") == 1


def test_a_record_holds_one_line_per_stage_without_default_fields(tmp_path: Path) -> None:
    """A no-op of 100,000 stages writes 100,000 short lines, and they read back as written."""
    record = _record("2026-11-30T07:00:00.000+00:00")
    lines = runs.write_run(tmp_path, record).read_text().splitlines()
    assert '  {"action":"skip","stage":"prep","status":"skipped"},' in lines
    assert sum('"stage":"train"' in line and '"reasons":' in line for line in lines) == 1
    assert runs.list_runs(tmp_path) == [record]
    empty = dataclasses.replace(record, id=runs.new_run_id("2026-11-30T08:00"), stages=())
    assert json.loads(runs.write_run(tmp_path, empty).read_text())["stages"] == []
    assert runs.list_runs(tmp_path)[0] == empty


def test_find_run_by_prefix_newest_by_default(tmp_path: Path) -> None:
    first = _record("2026-11-30T07:00:00.000+00:00")
    second = _record("2026-11-30T08:00:00.000+00:00")
    for record in (first, second):
        runs.write_run(tmp_path, record)
    assert runs.find_run(tmp_path, None) == second
    assert runs.find_run(tmp_path, first.id[:20]) == first
    with pytest.raises(NoRecordError, match="matches several runs"):
        runs.find_run(tmp_path, "2026")
    with pytest.raises(NoRecordError, match="matches no recorded run"):
        runs.find_run(tmp_path, "1999")
    with pytest.raises(NoRecordError, match="no run is recorded yet"):
        runs.find_run(tmp_path / "empty", None)


def test_unreadable_records_are_passed_over(tmp_path: Path) -> None:
    runs.write_run(tmp_path, _record("2026-11-30T07:00:00.000+00:00"))
    (tmp_path / "20261130T090000Z-000000.json").write_text("{broken")
    (tmp_path / "20261130T100000Z-000000.json").write_text('{"schema_version": 99}')
    assert len(runs.list_runs(tmp_path)) == 1


def test_only_the_newest_records_are_kept(tmp_path: Path) -> None:
    written = [_record(f"2026-11-30T07:00:0{i}.000+00:00") for i in range(5)]
    for record in written:
        runs.write_run(tmp_path, record, keep=3)
    assert runs.list_runs(tmp_path) == written[:1:-1]


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_git_state_revisions_and_batched_reads(tmp_path: Path) -> None:
    assert git.open_repo(tmp_path) is None and git.head_state(tmp_path) is None
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "t@pivot.invalid")
    _git(tmp_path, "config", "user.name", "t")
    project = tmp_path / "sub"
    (project / "d").mkdir(parents=True)
    (project / "d" / "a.txt").write_bytes(b"one\n")
    (project / "b.bin").write_bytes(bytes(range(256)))
    assert git.head_state(project) is None  # no commit yet
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-q", "-m", "first")
    repo = git.open_repo(project)
    assert repo is not None and repo.prefix == "sub/"
    state = git.head_state(project)
    assert state is not None and not state.dirty and len(state.commit) == 40
    (project / "d" / "a.txt").write_bytes(b"two\n")
    assert git.head_state(project) == GitState(state.commit, state.branch, dirty=True)
    sha = git.resolve(repo, "HEAD")
    assert sha == state.commit
    found = git.read_files(repo, sha, ["d/a.txt", "missing.txt", "b.bin", "d"])
    assert found == {
        "d/a.txt": b"one\n",
        "missing.txt": None,
        "b.bin": bytes(range(256)),
        "d": None,
    }
    assert git.tree(repo, sha, "d") == ["a.txt"] and git.tree(repo, sha, "nope") == []
    assert [c.subject for c in git.log(repo, "HEAD", 5)] == ["first"]
    with pytest.raises(RevisionError, match="'nope' is not a git revision"):
        git.resolve(repo, "nope")
