"""A stage's captured output in its run log: live while it runs, exactly its own afterwards,
whichever stages the same process ran before (the capture file is reused between stages)."""

from __future__ import annotations

import dataclasses
import errno
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import pytest

from pivot.execute import capture, worker
from pivot.execute.worker import StageTask
from pivot.loaders import Text
from pivot.outputs import Dep, Out
from pivot.pipeline import Pipeline
from pivot.stage_progress import PROGRESS_ENV
from pivot.store import logs


def loud(raw: Annotated[str, Dep("raw.txt", Text())]) -> Annotated[str, Out("loud.txt", Text())]:
    print(f"loud read {raw!r}")
    subprocess.run([sys.executable, "-c", "print('from a subprocess')"], check=True)
    return raw


def quiet(raw: Annotated[str, Dep("raw.txt", Text())]) -> Annotated[str, Out("quiet.txt", Text())]:
    return raw.upper()


def peek(raw: Annotated[str, Dep("raw.txt", Text())]) -> Annotated[str, Out("peek.txt", Text())]:
    print("before peeking", flush=True)
    log = os.environ[PROGRESS_ENV].removesuffix(".progress")
    return Path(log).read_text()  # what a live follower sees of the log so far


def task(root: Path, function: object, run_id: str = "r1", name: str | None = None) -> StageTask:
    spec = Pipeline("c", root=root).register(function, name=name)  # type: ignore[arg-type]
    log = logs.run_log_path(root / ".pivot", run_id, spec.name)
    return StageTask(
        spec, str(root), str(root / ".pivot" / "cache"), ("copy",), {}, log_path=str(log)
    )


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "raw.txt").write_text("ab")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_log(root: Path, stage: str, run_id: str = "r1") -> str:
    return logs.run_log_path(root / ".pivot", run_id, stage).read_text()


def test_each_log_holds_exactly_its_stage_output_however_many_ran_before(root: Path) -> None:
    for function in (loud, quiet, loud, quiet, quiet):
        outcome = worker.execute_stage(task(root, function, run_id=f"r-{function.__name__}"))
        assert outcome.ok, outcome.error
    outcome = worker.execute_stage(task(root, loud))

    assert outcome.output == "loud read 'ab'\nfrom a subprocess\n"
    assert run_log(root, "loud") == outcome.output
    assert run_log(root, "loud", "r-loud") == outcome.output  # not overwritten by later stages
    assert run_log(root, "quiet", "r-quiet") == ""
    assert worker.execute_stage(task(root, quiet)).output == ""
    assert run_log(root, "quiet") == ""
    assert run_log(root, "loud") == outcome.output  # the silent stage after it left it alone


def test_the_log_is_the_capture_while_the_stage_runs(root: Path) -> None:
    worker.execute_stage(task(root, quiet))  # the process has a capture file already

    outcome = worker.execute_stage(task(root, peek))

    assert outcome.ok, outcome.error
    assert (root / "peek.txt").read_text() == "before peeking\n"
    assert run_log(root, "peek") == "before peeking\n"


def test_a_removed_log_directory_is_made_again(root: Path) -> None:
    worker.execute_stage(task(root, quiet))
    run_dir = logs.run_log_path(root / ".pivot", "r1", "quiet").parent
    for entry in run_dir.iterdir():
        entry.unlink()
    run_dir.rmdir()  # e.g. old runs pruned between two runs of a warm worker

    outcome = worker.execute_stage(task(root, loud))

    assert outcome.ok, outcome.error
    assert run_log(root, "loud") == outcome.output != ""


def test_without_hard_links_each_log_is_a_file_of_its_own(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(source: object, dest: object, **options: object) -> None:
        raise OSError(errno.EPERM, "hard links not supported here")

    monkeypatch.setattr(os, "link", refuse)
    monkeypatch.setattr(capture, "_FILES", capture._Files())  # a process that never linked

    for function in (loud, quiet):
        assert worker.execute_stage(task(root, function)).ok
    assert run_log(root, "loud") == "loud read 'ab'\nfrom a subprocess\n"
    assert run_log(root, "quiet") == ""


def test_silent_logs_move_to_a_new_shared_empty_file_before_the_link_limit(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(capture, "_ROLL_OVER_LINKS", 3)
    monkeypatch.setattr(capture, "_CHECK_LINKS_EVERY", 1)

    names = [f"quiet{number}" for number in range(7)]
    for name in names:
        assert worker.execute_stage(task(root, quiet, name=name)).ok

    assert all(run_log(root, name) == "" for name in names)
    run_dir = logs.run_log_path(root / ".pivot", "r1", "quiet").parent
    shared = {os.stat(run_dir / f"{name}.log").st_ino for name in names}
    assert len(shared) >= 3  # at most 3 links to each shared empty file


def test_without_a_log_the_output_is_still_captured(root: Path) -> None:
    first = worker.execute_stage(dataclasses.replace(task(root, loud), log_path=""))
    second = worker.execute_stage(dataclasses.replace(task(root, quiet), log_path=""))

    assert first.output == "loud read 'ab'\nfrom a subprocess\n"
    assert second.output == ""
    assert not (root / ".pivot" / "logs").exists()


def test_a_capture_descriptor_closed_and_reused_meanwhile_is_never_written(root: Path) -> None:
    assert worker.execute_stage(task(root, quiet)).ok
    os.close(capture._FILES.fd)  # as a stage closing descriptors it does not own would
    other = os.open(root / "unrelated.txt", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(other, b"someone else's data")
    try:
        outcome = worker.execute_stage(task(root, loud))
    finally:
        os.close(other)

    assert outcome.ok, outcome.error
    assert (root / "unrelated.txt").read_bytes() == b"someone else's data"
    assert run_log(root, "loud") == outcome.output == "loud read 'ab'\nfrom a subprocess\n"
