"""A pool process links a stage's log only once the stage has run a while (or when it ends):
every log still holds exactly its stage's output, a silent one is a link to the shared empty
file, and a stage running longer is followed live."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path
from typing import Annotated

import pytest

from pivot.execute import capture, worker
from pivot.loaders import Text
from pivot.outputs import Dep, Out
from pivot.stage_progress import PROGRESS_ENV
from pivot.store import logs
from tests.unit.execute.test_execute_capture import loud, quiet, run_log, task

LOUD = "loud read 'ab'\nfrom a subprocess\n"


def slow_peek(
    raw: Annotated[str, Dep("raw.txt", Text())],
) -> Annotated[str, Out("slow.txt", Text())]:
    print("before peeking", flush=True)
    time.sleep(3 * capture._LateLinks.TICK)  # long enough to be linked while it runs
    log = os.environ[PROGRESS_ENV].removesuffix(".progress")
    return Path(log).read_text() if os.path.exists(log) else "no log yet"


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "raw.txt").write_text("ab")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(capture, "_FILES", capture._Files())
    monkeypatch.setattr(capture, "_LATE", [])
    capture.link_logs_late()
    return tmp_path


def run_dir(root: Path, run_id: str = "r1") -> Path:
    return logs.run_log_path(root / ".pivot", run_id, "x").parent


def test_each_log_holds_its_output_and_silent_ones_share_the_empty_file(root: Path) -> None:
    names = []
    for number, function in enumerate((loud, quiet, loud, quiet, quiet)):
        names.append(f"{function.__name__}{number}")
        outcome = worker.execute_stage(task(root, function, name=names[-1]))
        assert outcome.ok, outcome.error

    assert [run_log(root, name) for name in names] == [LOUD, "", LOUD, "", ""]
    silent = {os.stat(run_dir(root) / f"{name}.log").st_ino for name in names[1::2] + names[4:]}
    assert len(silent) == 1  # one shared empty file
    loud_files = {os.stat(run_dir(root) / f"{name}.log").st_ino for name in names[0:3:2]}
    assert len(loud_files) == 2 and not loud_files & silent


def test_a_stage_running_a_while_is_followed_live(root: Path) -> None:
    outcome = worker.execute_stage(task(root, slow_peek))

    assert outcome.ok, outcome.error
    assert (root / "slow.txt").read_text() == "before peeking\n"
    assert run_log(root, "slow_peek") == "before peeking\n"


def test_a_log_of_an_earlier_attempt_is_replaced(root: Path) -> None:
    for function in (quiet, loud):
        log = logs.run_log_path(root / ".pivot", "r1", function.__name__)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("an earlier attempt\n")

        assert worker.execute_stage(task(root, function)).ok
        assert run_log(root, function.__name__) == ("" if function is quiet else LOUD)


def test_a_log_directory_removed_meanwhile_is_made_again(root: Path) -> None:
    for function in (quiet, loud, quiet):
        assert worker.execute_stage(task(root, quiet, name="first")).ok
        for entry in run_dir(root).iterdir():
            entry.unlink()
        run_dir(root).rmdir()  # e.g. old runs pruned between two runs of a warm worker

        outcome = worker.execute_stage(task(root, function))

        assert outcome.ok, outcome.error
        assert run_log(root, function.__name__) == outcome.output


def test_links_refused_when_the_stage_ends_leave_logs_of_their_own(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert worker.execute_stage(task(root, quiet, name="before")).ok

    def refuse(source: object, dest: object, **options: object) -> None:
        raise OSError(errno.EPERM, "hard links not supported here")

    monkeypatch.setattr(os, "link", refuse)
    for function in (loud, quiet, loud):
        outcome = worker.execute_stage(task(root, function, run_id=f"r-{function.__name__}"))
        assert outcome.ok, outcome.error
        assert run_log(root, function.__name__, f"r-{function.__name__}") == outcome.output
    assert not capture._FILES.linking
