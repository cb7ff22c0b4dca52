"""A pool worker writes a stage's lock itself (a new one or a rewrite), once the stage's outputs
are in the cache: the lock is the one the main process would write, and a lock that cannot be
written fails its stage with the stage, the path and the OS error (and exit code 1), never
reporting it as run.
"""

from __future__ import annotations

from tests.e2e.conftest import E2EProject
from tests.e2e.test_tool_failures import _pivot_with_read_only

PIPELINE = """
def first() -> Annotated[str, Out("first.txt", loaders.Text())]:
    _ran("first")
    print("first says hello")
    return "one"


class Params(StageParams):
    suffix: str = " two"


def second(
    params: Params, text: Annotated[str, Dep("first.txt", loaders.Text())]
) -> Annotated[str, Out("second.txt", loaders.Text())]:
    _ran("second")
    return text + params.suffix


def third() -> Annotated[str, Out("third.txt", loaders.Text())]:
    _ran("third")
    return "three"


pipeline = Pipeline("worker_locks")
pipeline.register(first)
pipeline.register(second, params=Params())
pipeline.register(third)
"""


def test_a_lock_written_by_a_worker_is_the_lock_the_main_process_writes(
    project: E2EProject,
) -> None:
    project.pipeline(PIPELINE)
    project.pivot("repro", "-j", "2")
    written_by_workers = {
        name: project.lock_path(name).read_bytes() for name in ("first", "second")
    }

    project.pivot("repro", "--force", "-j", "1")  # rewritten by the main process (spares)
    assert _locks(project) == written_by_workers
    project.pivot("repro", "--force", "-j", "2")  # rewritten by the workers

    assert _locks(project) == written_by_workers
    assert project.pivot("logs", "first").stdout.strip() == "first says hello"
    assert {stage["action"] for stage in project.status_json().values()} == {"skip"}


def _locks(project: E2EProject) -> dict[str, bytes]:
    return {name: project.lock_path(name).read_bytes() for name in ("first", "second")}


def test_a_lock_a_worker_cannot_rewrite_fails_its_stage_and_keeps_the_old_lock(
    project: E2EProject,
) -> None:
    project.pipeline(PIPELINE)
    project.pivot("repro", "-j", "2")
    before = {name: project.lock_path(name).read_bytes() for name in ("first", "third")}

    result = _pivot_with_read_only(
        project, ".pivot/stages", "repro", "--json", "-j", "2", "--force", "--keep-going"
    )

    assert result.code == 1, result.describe()
    stages = result.json["stages"]
    for name in ("first", "third"):
        assert stages[name]["status"] == "failed", result.describe()
        error = stages[name]["error"]
        assert f"stage '{name}'" in error and f".pivot/stages/{name}.lock" in error, error
        assert project.lock_path(name).read_bytes() == before[name]
    # the old locks still hold: the outputs the failed run made are the ones they record
    assert project.repro_json() == {"first": "skipped", "second": "skipped", "third": "skipped"}


def test_a_lock_a_worker_cannot_write_fails_its_stage_naming_the_stage_and_the_path(
    project: E2EProject,
) -> None:
    project.gen({".pivot/stages/.keep": ""})
    project.pipeline(PIPELINE)

    result = _pivot_with_read_only(
        project, ".pivot/stages", "repro", "--json", "-j", "2", "--keep-going"
    )

    assert result.code == 1, result.describe()
    stages = result.json["stages"]
    assert {name: stage["status"] for name, stage in stages.items()} == {
        "first": "failed",
        "second": "blocked",
        "third": "failed",
    }, result.describe()
    for name in ("first", "third"):
        error = stages[name]["error"]
        assert f"stage '{name}'" in error, error
        assert f".pivot/stages/{name}.lock" in error, error
        assert "Read-only file system" in error, error
        assert "Traceback" not in error, error
        assert not project.lock_path(name).exists()
    assert sorted(project.runs()) == ["first", "third"]  # the stages themselves ran fine

    assert project.repro_json() == {"first": "ran", "second": "ran", "third": "ran"}
