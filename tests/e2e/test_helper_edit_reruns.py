"""A helper edit that does not change what the stages return, run by pool workers: the stages
run again, an output that holds the same bytes is its previous file (same inode, mtime now; a
worker's first output in a directory is written anew, which teaches it what a new file there
gets), an output that changed is written anew, the locks are the ones the main process writes,
and nothing is left behind: no spare lock files, no outputs set aside."""

from __future__ import annotations

import os

from pivot import fs
from tests.e2e.conftest import E2EProject

PIPELINE = """
import helpers


def first() -> Annotated[str, Out("out/first.txt", loaders.Text())]:
    _ran("first")
    return helpers.shout("one")


def second(
    text: Annotated[str, Dep("out/first.txt", loaders.Text())],
) -> Annotated[str, Out("out/second.txt", loaders.Text())]:
    _ran("second")
    print("second says hello")
    return helpers.shout(text) + helpers.SUFFIX


def third() -> Annotated[str, Out("out/third.txt", loaders.Text())]:
    _ran("third")
    return "three"


pipeline = Pipeline("worker_reruns")
pipeline.register(first)
pipeline.register(second)
pipeline.register(third)
""" + "".join(
    f"""

def more{index}(
    text: Annotated[str, Dep("out/first.txt", loaders.Text())],
) -> Annotated[str, Out("out/more{index}.txt", loaders.Text())]:
    return helpers.shout(text)


pipeline.register(more{index})
"""
    for index in range(8)
)

HELPERS = """
SUFFIX = "!"


def shout(text: str) -> str:
    revision = {revision}
    return text.upper() + "" * revision
"""

RERUN = ("first", "second", *(f"more{index}" for index in range(8)))


def test_a_helper_edit_rerun_by_workers_puts_unchanged_outputs_back(project: E2EProject) -> None:
    project.gen({"helpers.py": HELPERS.format(revision=0)})
    project.pipeline(PIPELINE)
    project.pivot("repro", "-j", "2")
    assert sorted(project.runs()) == ["first", "second", "third"]
    outputs = project.root / "out"
    for name in RERUN:
        os.utime(outputs / f"{name}.txt", (1_000_000, 1_000_000))
    before = {name: os.stat(outputs / f"{name}.txt") for name in (*RERUN, "third")}

    project.gen({"helpers.py": HELPERS.format(revision=1)})  # the same values returned
    result = project.pivot("repro", "-j", "2", "--json")

    assert {name for name, stage in result.json["stages"].items() if stage["status"] == "ran"} == {
        *RERUN
    }
    put_back = []
    for name in RERUN:
        after = os.stat(outputs / f"{name}.txt")
        assert after.st_mtime > before[name].st_mtime, name  # as if written now
        if after.st_ino == before[name].st_ino:
            put_back.append(name)
    assert len(put_back) >= len(RERUN) - 2, put_back  # all but each worker's first
    assert os.stat(outputs / "third.txt").st_ino == before["third"].st_ino
    assert project.read("out/first.txt") == "ONE"
    assert project.read("out/second.txt") == "ONE!"
    assert {project.read(f"out/more{index}.txt") for index in range(8)} == {"ONE"}
    assert project.pivot("logs", "second").stdout.strip() == "second says hello"
    assert project.pivot("logs", "first").stdout.strip() == ""
    _assert_nothing_left(project)
    written_by_workers = {name: project.lock_path(name).read_bytes() for name in RERUN}

    project.pivot("repro", "--force", "-j", "1")  # the main process writes the locks
    assert {name: project.lock_path(name).read_bytes() for name in RERUN} == written_by_workers
    assert {stage["action"] for stage in project.status_json().values()} == {"skip"}


def test_an_output_a_helper_edit_changes_is_written_anew(project: E2EProject) -> None:
    project.gen({"helpers.py": HELPERS.format(revision=0)})
    project.pipeline(PIPELINE)
    project.pivot("repro", "-j", "2")
    project.runs()
    second = os.stat(project.root / "out" / "second.txt")

    project.gen({"helpers.py": HELPERS.format(revision=0).replace('"!"', '"?"')})
    project.pivot("repro", "-j", "2")

    assert project.runs() == ["second"]
    assert project.read("out/second.txt") == "ONE?"
    assert os.stat(project.root / "out" / "second.txt").st_ino != second.st_ino
    _assert_nothing_left(project)
    assert {stage["action"] for stage in project.status_json().values()} == {"skip"}


def _assert_nothing_left(project: E2EProject) -> None:
    pivot_dir = project.root / ".pivot"
    spares = [name for name in os.listdir(pivot_dir / "stages") if fs.is_temp_name(name)]
    assert spares == []
    scratch = pivot_dir / "tmp"
    assert not [entry.name for entry in scratch.iterdir() if entry.name.startswith("=")]
    assert not (scratch / "discarded").exists() or not any((scratch / "discarded").iterdir())
