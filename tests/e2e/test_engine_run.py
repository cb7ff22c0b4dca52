"""End to end: selecting stages (repro, run, --force), the pool (-j 2), failures, --keep-going."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import E2EProject

CHAIN = """
def prepare(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[str, Out("prepared.txt", loaders.Text())]:
    _ran("prepare")
    return raw + "!"


def train(prepared: Annotated[str, Dep("prepared.txt", loaders.Text())]) -> Annotated[dict, Out("model.json", loaders.JSON())]:
    _ran("train")
    return {"text": prepared}


def report(model: Annotated[dict, Dep("model.json", loaders.JSON())]) -> Annotated[dict, Metric("report.json")]:
    _ran("report")
    return {"length": len(model["text"])}


def side() -> Annotated[str, Out("side.txt", loaders.Text())]:
    _ran("side")
    return "side"


pipeline = Pipeline("chain")
pipeline.register(prepare)
pipeline.register(train)
pipeline.register(report)
pipeline.register(side)
"""


@pytest.fixture
def chain(project: E2EProject) -> E2EProject:
    project.gen({"raw.txt": "data"})
    project.pipeline(CHAIN)
    return project


def test_repro_targets_run_with_their_upstream_only(chain: E2EProject) -> None:
    assert chain.repro_json("train") == {"prepare": "ran", "train": "ran"}
    assert chain.runs() == ["prepare", "train"]
    assert not chain.exists("report.json") and not chain.exists("side.txt")

    assert chain.repro_json("report", "side") == {
        "prepare": "skipped",
        "train": "skipped",
        "report": "ran",
        "side": "ran",
    }
    assert sorted(chain.runs()) == ["report", "side"]


def test_run_runs_only_the_named_stages(chain: E2EProject) -> None:
    failed = chain.pivot("run", "train", "-j", "1", expect=1)
    assert "prepared.txt" in failed.stderr and "does not exist" in failed.stderr
    assert chain.runs() == []

    assert chain.repro_json("prepare") == {"prepare": "ran"}
    result = chain.pivot("run", "train", "report", "-j", "1", "--json")
    assert {name: value["status"] for name, value in result.json["stages"].items()} == {
        "train": "ran",
        "report": "ran",
    }
    assert chain.runs() == ["prepare", "train", "report"]

    chain.gen({"raw.txt": "changed"})  # prepare is stale, but `run report` does not look upstream
    assert chain.pivot("run", "report", "--json").json["stages"]["report"]["status"] == "skipped"
    assert chain.pivot("run", "report", "-f", "--json").json["stages"]["report"]["status"] == "ran"
    assert chain.runs() == ["report"]


def test_run_needs_stage_names_and_unknown_names_are_errors(chain: E2EProject) -> None:
    assert chain.pivot("run", expect=2).code == 2
    result = chain.pivot("repro", "trian", expect=2)
    assert "unknown stage 'trian'" in result.stderr and "train" in result.stderr
    assert chain.pivot("status", "nope", expect=2).code == 2
    assert chain.runs() == []


def test_run_reads_upstream_outputs_as_they_are_on_disk(chain: E2EProject) -> None:
    chain.repro_json()
    chain.runs()
    chain.gen({"prepared.txt": "edited by hand"})  # prepare's output, not through pivot

    assert chain.pivot("run", "train", "--json").json["stages"]["train"]["status"] == "ran"
    assert chain.runs() == ["train"]
    assert json.loads(chain.read("model.json")) == {"text": "edited by hand"}

    # repro looks upstream instead: prepare's output goes back to what its lock records
    chain.gen({"prepared.txt": "edited again"})
    # ... and train's inputs are then those of its first run: the run cache restores that run
    assert chain.repro_json("train") == {"prepare": "restored", "train": "restored"}
    assert json.loads(chain.read("model.json")) == {"text": "data!"}
    assert chain.runs() == []


def test_force_reruns_up_to_date_stages(chain: E2EProject) -> None:
    chain.repro_json()
    chain.runs()
    lock_before = chain.lock_path("report").read_bytes()

    statuses = chain.repro_json("--force")

    assert set(statuses.values()) == {"ran"}
    assert sorted(chain.runs()) == ["prepare", "report", "side", "train"]
    assert chain.lock_path("report").read_bytes() == lock_before  # same inputs, same lock


RENDEZVOUS = """
def _meet(me: str, other: str) -> bool:
    \"\"\"Announce this stage has started, then wait (bounded) for the other one to start.\"\"\"
    pathlib.Path("markers").mkdir(exist_ok=True)
    pathlib.Path(f"markers/{me}").write_text(str(os.getpid()))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if pathlib.Path(f"markers/{other}").exists():
            return True
        time.sleep(0.02)
    return False


def left() -> Annotated[dict, Out("left.json", loaders.JSON())]:
    return {"met": _meet("left", "right"), "pid": os.getpid()}


def right() -> Annotated[dict, Out("right.json", loaders.JSON())]:
    return {"met": _meet("right", "left"), "pid": os.getpid()}


def join(
    a: Annotated[dict, Dep("left.json", loaders.JSON())],
    b: Annotated[dict, Dep("right.json", loaders.JSON())],
) -> Annotated[dict, Out("both.json", loaders.JSON())]:
    return {"met": a["met"] and b["met"]}


pipeline = Pipeline("pool")
pipeline.register(left)
pipeline.register(right)
pipeline.register(join)
"""


def test_jobs_2_runs_independent_stages_concurrently(project: E2EProject) -> None:
    project.pipeline(RENDEZVOUS)

    result = project.pivot("repro", "-j", "2", "--json")

    assert result.json["ok"]
    left, right = json.loads(project.read("left.json")), json.loads(project.read("right.json"))
    assert left["met"] and right["met"]  # each saw the other running at the same time
    assert left["pid"] != right["pid"]
    assert json.loads(project.read("both.json")) == {"met": True}
    assert project.lock("join")["deps"][0]["path"] == "left.json"


FAILING = """
class BadError(Exception):
    pass


def _explode(value: str) -> None:
    raise BadError(f"cannot handle {value!r}")


def bad(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[str, Out("bad.txt", loaders.Text())]:
    print("about to fail: stdout line 42")
    _explode(raw)
    return raw


def after_bad(x: Annotated[str, Dep("bad.txt", loaders.Text())]) -> Annotated[str, Out("after_bad.txt", loaders.Text())]:
    _ran("after_bad")
    return x


def good(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[str, Out("good.txt", loaders.Text())]:
    _ran("good")
    return raw


def after_good(x: Annotated[str, Dep("good.txt", loaders.Text())]) -> Annotated[str, Out("after_good.txt", loaders.Text())]:
    _ran("after_good")
    return x


pipeline = Pipeline("failing")
pipeline.register(bad)
pipeline.register(after_bad)
pipeline.register(good)
pipeline.register(after_good)
"""


@pytest.fixture
def failing(project: E2EProject) -> E2EProject:
    project.gen({"raw.txt": "oops"})
    project.pipeline(FAILING)
    return project


def _assert_failure_report(stderr: str, root: str) -> None:
    assert "✗ bad" in stderr
    assert "1 stage(s) failed: bad" in stderr
    assert "about to fail: stdout line 42" in stderr  # the stage's captured output
    assert "BadError: cannot handle 'oops'" in stderr
    assert f'File "{root}/pipeline.py"' in stderr and "in _explode" in stderr and "in bad" in stderr
    assert "execute/worker.py" not in stderr and "site-packages" not in stderr


def test_fail_fast_stops_at_the_first_failure(failing: E2EProject) -> None:
    result = failing.pivot("repro", "-j", "1", expect=1)
    _assert_failure_report(result.stderr, str(failing.root))
    assert failing.runs() == []

    statuses = failing.repro_json(expect=1)
    assert statuses == {
        "bad": "failed",
        "after_bad": "blocked",
        "good": "blocked",
        "after_good": "blocked",
    }
    assert not failing.exists("bad.txt") and not failing.lock_path("bad").exists()


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_keep_going_finishes_independent_branches(failing: E2EProject, jobs: str) -> None:
    result = failing.pivot("repro", "-j", jobs, "--keep-going", expect=1)

    _assert_failure_report(result.stderr, str(failing.root))
    assert "not run 1" in result.stdout
    assert sorted(failing.runs()) == ["after_good", "good"]
    assert failing.read("after_good.txt") == "oops"
    assert not failing.exists("after_bad.txt")
    assert failing.lock_path("after_good").is_file()
    assert not failing.lock_path("after_bad").exists()
    stages = failing.pivot("repro", "-j", jobs, "-k", "--json", expect=1).json["stages"]
    assert stages["after_bad"]["status"] == "blocked"
    assert "upstream stage failed" in stages["after_bad"]["error"]
    assert stages["good"]["status"] == "skipped"


def test_two_failures_are_both_named(failing: E2EProject) -> None:
    failing.pipeline(FAILING.replace('    _ran("good")\n', "    _explode('good')\n"))

    result = failing.pivot("repro", "-j", "1", "-k", expect=1)

    assert "2 stage(s) failed: bad, good" in result.stderr
    assert "✗ bad" in result.stderr and "✗ good" in result.stderr
    assert "cannot handle 'good'" in result.stderr


EXITING = """
import sys


def quits() -> Annotated[str, Out("quits.txt", loaders.Text())]:
    sys.exit("giving up")


def fine() -> Annotated[str, Out("fine.txt", loaders.Text())]:
    _ran("fine")
    return "fine"


pipeline = Pipeline("exiting")
pipeline.register(quits)
pipeline.register(fine)
"""


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_sys_exit_in_a_stage_fails_only_that_stage(project: E2EProject, jobs: str) -> None:
    project.pipeline(EXITING)

    result = project.pivot("repro", "-j", jobs, "-k", expect=1)

    assert "SystemExit: giving up" in result.stderr
    assert "1 stage(s) failed: quits" in result.stderr
    assert project.runs() == ["fine"]
    assert project.lock_path("fine").is_file() and not project.lock_path("quits").exists()


WORKER_TROUBLE = """
import dataclasses
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class Shaped(loaders.Writer[str]):
    shape: Callable[[str], str] = lambda text: text.upper()  # a lambda: does not pickle

    def save(self, data: str, path: pathlib.Path) -> None:
        path.write_text(self.shape(data))


def dies() -> Annotated[str, Out("dies.txt", loaders.Text())]:
    if pathlib.Path("crash.flag").exists():
        os._exit(3)  # like a segfault or an OOM kill: the worker process is gone
    _ran("dies")
    return "survived"


def unpicklable() -> Annotated[str, Out("shaped.txt", Shaped())]:
    _ran("unpicklable")
    return "shaped"


pipeline = Pipeline("worker_trouble")
pipeline.register(dies)
pipeline.register(unpicklable)
"""


def test_dead_worker_and_unpicklable_stage_are_stage_failures(project: E2EProject) -> None:
    project.gen({"crash.flag": ""})
    project.pipeline(WORKER_TROUBLE)

    result = project.pivot("repro", "-j", "2", "-k", "--json", expect=1)

    stages = result.json["stages"]
    assert {value["status"] for value in stages.values()} == {"failed"}
    assert "TerminatedWorkerError" in stages["dies"]["error"]
    assert "the worker process running it died" in stages["dies"]["error"]
    assert "could not be sent to a worker process" in stages["unpicklable"]["error"]
    assert "lambda" in stages["unpicklable"]["error"]
    assert project.runs() == []
    (project.root / "crash.flag").unlink()
    text = project.pivot("repro", "-j", "2", "-k", expect=1)
    assert "Traceback (most recent call last)" not in text.stderr
    assert "1 stage(s) failed: unpicklable" in text.stderr
    assert project.repro_json() == {"dies": "skipped", "unpicklable": "ran"}  # -j 1: in-process
    assert project.read("shaped.txt") == "SHAPED"


WRONG_RETURN = """
def wrong() -> Annotated[dict, Out("wrong.json", loaders.JSON())]:
    return {"not": {1, 2}}


class Pair(TypedDict):
    a: Annotated[str, Out("a.txt", loaders.Text())]
    b: Annotated[str, Out("b.txt", loaders.Text())]


def partial() -> Pair:
    return {"a": "only a"}


pipeline = Pipeline("wrong")
pipeline.register(wrong)
pipeline.register(partial)
"""


def test_unsaveable_and_incomplete_return_values_fail_the_stage(project: E2EProject) -> None:
    project.pipeline(WRONG_RETURN)

    result = project.pivot("repro", "-j", "1", "-k", "--json", expect=1)

    stages = result.json["stages"]
    assert stages["wrong"]["status"] == "failed"
    assert "wrong.json" in stages["wrong"]["error"]
    assert stages["partial"]["status"] == "failed"
    assert "'b'" in stages["partial"]["error"]
    assert not project.exists("a.txt")  # validated before any write
    assert not project.lock_path("wrong").exists() and not project.lock_path("partial").exists()


NOISY = """
import subprocess


def noisy(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[str, Out("quiet.txt", loaders.Text())]:
    print("from python")
    subprocess.run(["echo", "from a subprocess"], check=True)
    os.write(1, b"from file descriptor 1\\n")
    os.write(2, b"from file descriptor 2\\n")
    return raw


pipeline = Pipeline("noisy")
pipeline.register(noisy)
pipeline.register(noisy, name="noisy_too", out_path_overrides={"quiet": "quiet_too.txt"})
"""


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_everything_a_stage_prints_is_captured_in_order(project: E2EProject, jobs: str) -> None:
    project.gen({"raw.txt": "x"})
    project.pipeline(NOISY)

    result = project.pivot("repro", "--json", "-j", jobs)

    for name in ("noisy", "noisy_too"):  # two independent stages: -j 2 runs them in the pool
        stage = result.json["stages"][name]  # stdout parsed as JSON: nothing leaked into it
        assert stage["output"].splitlines() == [
            "from python",
            "from a subprocess",
            "from file descriptor 1",
            "from file descriptor 2",
        ]
    assert "from" not in result.stderr
