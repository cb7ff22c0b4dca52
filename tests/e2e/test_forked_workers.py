"""End to end: `pivot repro -j 2` runs its stages in worker processes forked from the `pivot`
process after planning (Linux, no other thread running), with the loky pool's behaviour: the
same lock files as -j 1, a worker's death failing only its stage, Ctrl-C and SIGTERM leaving no
process and no temp file behind. The Python API forks only when asked, and never beside a
thread.

Stages note the command line of the process running them in a directory outside the project
(so it is no undeclared write): a forked worker's is the `pivot` command's own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from pivot import api
from tests.e2e.conftest import E2EProject, make_git_project
from tests.e2e.integrity import group_gone, temp_files, violations

PIPELINE = """
def _note(name: str) -> None:
    \"\"\"Test side channel: which process ran the stage (its command line), noted beside the
    project (stages run in the project root).\"\"\"
    processes = pathlib.Path(os.getcwd() + "-ran")
    processes.mkdir(exist_ok=True)
    cmdline = pathlib.Path("/proc/self/cmdline").read_bytes().replace(b"\\0", b" ")
    (processes / name).write_bytes(cmdline)


class Scale(StageParams):
    factor: int = 3


def first(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[str, Out("first.txt", loaders.Text())]:
    _note("first")
    return raw.upper()


def _part(index: int, text: str) -> dict:
    _note(f"part{index}")
    if index == 5 and pathlib.Path("crash.flag").exists():
        os._exit(3)  # like a segfault or an OOM kill: the worker process is gone
    if index == 2 and pathlib.Path("hold.flag").exists():
        pathlib.Path("markers").mkdir(exist_ok=True)
        pathlib.Path("markers/held").write_text("")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.02)
    return {"index": index, "text": text}


def scaled(params: Scale, raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[dict, Metric("scaled.json")]:
    _note("scaled")
    return {"scaled": len(raw) * params.factor}


def merged(
    parts: Annotated[list[dict], Dep([f"parts/{i}.json" for i in range(8)], loaders.JSON())],
) -> Annotated[str, Out("merged.txt", loaders.Text())]:
    _note("merged")
    return ",".join(str(part["index"]) for part in parts)


pipeline = Pipeline("forked")
pipeline.register(first)
pipeline.register(scaled)
pipeline.register(merged)
"""

PARTS = "".join(
    f"""
def part{i}(text: Annotated[str, Dep("first.txt", loaders.Text())]) -> Annotated[dict, Out("parts/{i}.json", loaders.JSON())]:
    return _part({i}, text)


pipeline.register(part{i})
"""
    for i in range(8)
)

STAGES = ("first", "scaled", "merged", *(f"part{i}" for i in range(8)))


def _project(directory: Path) -> E2EProject:
    """A project at `directory`, whose stages note their process in `directory`-ran."""
    directory.mkdir()
    project = make_git_project(directory)
    project.gen({"raw.txt": "in"})
    project.pipeline(PIPELINE + PARTS)
    return project


def _ran_in(processes: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in processes.iterdir()}


def _locks(project: E2EProject) -> dict[str, bytes]:
    return {name: project.lock_path(name).read_bytes() for name in STAGES}


def test_forked_workers_write_the_same_locks_and_outputs_as_one_job(tmp_path: Path) -> None:
    serial = _project(tmp_path / "serial")
    forked = _project(tmp_path / "forked")

    assert serial.repro_json("-j", "1") == dict.fromkeys(STAGES, "ran")
    result = forked.pivot("repro", "-j", "2", "--json")

    assert {
        name: value["status"] for name, value in result.json["stages"].items()
    } == dict.fromkeys(STAGES, "ran")
    ran_in = _ran_in(tmp_path / "forked-ran")
    assert sorted(ran_in) == sorted(STAGES)
    # a forked worker: the `pivot` command's own command line, no loky worker's
    assert all("-m pivot repro" in line and "loky" not in line for line in ran_in.values()), ran_in
    assert _locks(forked) == _locks(serial)
    assert forked.read("merged.txt") == serial.read("merged.txt") == "0,1,2,3,4,5,6,7"
    assert json.loads(forked.read("scaled.json")) == {"scaled": 6}
    assert forked.pivot("logs", "part3").code == 0
    assert violations(forked.root) == []
    assert forked.repro_json("-j", "2") == dict.fromkeys(STAGES, "skipped")


def test_a_forked_worker_that_dies_fails_only_its_stage(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    project.gen({"crash.flag": ""})

    result = project.pivot("repro", "-j", "2", "-k", "--json", expect=1)

    stages = {name: value["status"] for name, value in result.json["stages"].items()}
    assert stages == {
        **dict.fromkeys(STAGES, "ran"),
        "part5": "failed",
        "merged": "blocked",
    }
    error = result.json["stages"]["part5"]["error"]
    assert "stage 'part5': the worker process running it died" in error
    assert "exited with code 3" in error
    assert not project.lock_path("part5").exists()
    assert all(project.lock_path(f"part{i}").is_file() for i in range(8) if i != 5)
    assert violations(project.root) == []

    (project.root / "crash.flag").unlink()
    assert project.repro_json("-j", "2") == {
        **dict.fromkeys(STAGES, "skipped"),
        "part5": "ran",
        "merged": "ran",
    }


def _held(project: E2EProject) -> subprocess.Popen[str]:
    """`pivot repro -j 2` started, once stage part2 is holding in its worker."""
    project.gen({"hold.flag": ""})
    proc = project.start("repro", "-j", "2")
    marker = project.root / "markers" / "held"
    deadline = time.monotonic() + 60
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            pytest.fail(f"part2 did not start; pivot exited {proc.returncode}\n{out}\n{err}")
        time.sleep(0.02)
    return proc


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, err


def test_ctrl_c_stops_the_forked_workers_and_leaves_nothing_half_written(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    proc = _held(project)

    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    code, err = _finish(proc)

    assert code == 130, err
    assert "Traceback" not in err
    assert group_gone(proc.pid)  # no forked worker left
    assert temp_files(project.root) == []
    assert not project.lock_path("part2").exists() and not project.exists("parts/2.json")
    assert violations(project.root) == []
    (project.root / "hold.flag").unlink()
    assert "ran" in project.repro_json("-j", "2").values()


def test_sigterm_to_pivot_ends_its_forked_workers(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    proc = _held(project)

    proc.send_signal(signal.SIGTERM)  # the pivot process alone: its workers follow it
    code, _ = _finish(proc)

    assert code == -signal.SIGTERM
    assert group_gone(proc.pid, timeout=10)
    (project.root / "hold.flag").unlink()
    project.repro_json("-j", "2")  # takes over, cleaning what the killed run left
    assert violations(project.root) == []


def test_the_python_api_forks_only_when_asked_and_no_thread_runs(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="a user's thread")
    thread.start()
    try:
        _, report = api.repro(jobs=2, root=project.root, fork_workers=True)
    finally:
        stop.set()
        thread.join()

    assert report.ok
    ran_in = _ran_in(tmp_path / "project-ran")
    assert sorted(ran_in) == sorted(STAGES)
    assert all("loky" in line for line in ran_in.values()), ran_in  # loky's workers ran them


WIDE = """
def wide_a(
    texts: Annotated[list[str], Dep([f"many/{i}.txt" for i in range(1000)], loaders.Text())],
) -> Annotated[str, Out("wide_a.txt", loaders.Text())]:
    return str(len(texts))


def wide_b(
    texts: Annotated[list[str], Dep([f"many/{i}.txt" for i in range(1000)], loaders.Text())],
) -> Annotated[str, Out("wide_b.txt", loaders.Text())]:
    return "".join(texts[:3])


pipeline = Pipeline("wide")
pipeline.register(wide_a)
pipeline.register(wide_b)
"""


def test_a_task_larger_than_a_pipe_holds_reaches_its_forked_worker(project: E2EProject) -> None:
    # each task carries its 1,000 planned inputs (~100 kB): more than a pipe takes at once
    project.gen({f"many/{i}.txt": str(i) for i in range(1000)})
    project.pipeline(WIDE)

    assert project.repro_json("-j", "2") == {"wide_a": "ran", "wide_b": "ran"}
    assert project.read("wide_a.txt") == "1000"
    assert project.read("wide_b.txt") == "012"
    assert len(project.lock("wide_b")["deps"]) == 1000


BOTH_DIE = """
def _note(name: str) -> None:
    processes = pathlib.Path(os.getcwd() + "-ran")
    processes.mkdir(exist_ok=True)
    cmdline = pathlib.Path("/proc/self/cmdline").read_bytes().replace(b"\\\\0", b" ")
    (processes / name).write_bytes(cmdline)


def crash_a() -> Annotated[str, Out("crash_a.txt", loaders.Text())]:
    os._exit(3)


def crash_b() -> Annotated[str, Out("crash_b.txt", loaders.Text())]:
    os._exit(4)


def first(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[str, Out("first.txt", loaders.Text())]:
    _note("first")
    return raw + "!"


def after(text: Annotated[str, Dep("first.txt", loaders.Text())]) -> Annotated[str, Out("after.txt", loaders.Text())]:
    _note("after")
    return text + "?"


pipeline = Pipeline("both_die")
pipeline.register(crash_a)
pipeline.register(crash_b)
pipeline.register(first)
pipeline.register(after)
"""


def test_once_every_forked_worker_died_loky_workers_run_the_rest(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    project = make_git_project(tmp_path / "project")
    project.gen({"raw.txt": "in"})
    project.pipeline(BOTH_DIE)

    result = project.pivot("repro", "-j", "2", "-k", "--json", expect=1)

    stages = result.json["stages"]
    assert {name: value["status"] for name, value in stages.items()} == {
        "crash_a": "failed",
        "crash_b": "failed",
        "first": "ran",
        "after": "ran",
    }
    assert "exited with code 3" in stages["crash_a"]["error"]
    assert "exited with code 4" in stages["crash_b"]["error"]
    assert project.read("after.txt") == "in!?"
    ran_in = _ran_in(tmp_path / "project-ran")
    assert "loky" in ran_in["after"], ran_in  # no forked worker was left to run it
    assert violations(project.root) == []


SMALL = "".join(
    f"""
def s{i:02d}() -> Annotated[str, Out("small/{i:02d}.txt", loaders.Text())]:
    if {i} == 45 and pathlib.Path("crash.flag").exists():
        os._exit(3)
    return "{i}"


pipeline.register(s{i:02d})
"""
    for i in range(60)
)


def test_a_worker_dying_mid_chunk_fails_only_the_stages_it_had_started(
    project: E2EProject,
) -> None:
    # 60 small stages go to the workers in chunks; s45 kills its worker midway through one
    project.gen({"crash.flag": ""})
    project.pipeline('pipeline = Pipeline("small")\n' + SMALL)

    result = project.pivot("repro", "-j", "2", "-k", "--json", expect=1)

    stages = result.json["stages"]
    failed = sorted(name for name, value in stages.items() if value["status"] != "ran")
    assert "s45" in failed
    assert "exited with code 3" in stages["s45"]["error"]
    assert "outcome was lost" not in stages["s45"]["error"]
    for name in failed:  # started in its chunk before s45 (had run, its outcome lost)
        assert name <= "s45", failed
        if name != "s45":
            assert "while running stage 's45'" in stages[name]["error"], stages[name]["error"]
    assert all(project.exists(f"small/{i:02d}.txt") for i in range(46, 60))  # never started
