"""End to end: why a stage runs (the plan's reasons), and that status, --dry-run and --explain
announce exactly what `repro` then does."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import E2EProject

PIPELINE = """
class PrepareParams(StageParams):
    factor: int = 1
    label: str = "x"


def prepare(params: PrepareParams, raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[str, Out("prepared.txt", loaders.Text())]:
    _ran("prepare")
    return raw * params.factor + params.label


def train(prepared: Annotated[str, Dep("prepared.txt", loaders.Text())]) -> Annotated[dict, Out("model.json", loaders.JSON())]:
    _ran("train")
    return {"size": len(prepared)}


def report(model: Annotated[dict, Dep("model.json", loaders.JSON())]) -> Annotated[dict, Metric("report.json")]:
    _ran("report")
    return {"score": model["size"] * 10}


def side(other: Annotated[str, Dep("other.txt", loaders.Text())]) -> Annotated[str, Out("side.txt", loaders.Text())]:
    _ran("side")
    return other[::-1]


pipeline = Pipeline("plan")
pipeline.register(prepare, params=PrepareParams(PARAMS))
pipeline.register(train)
pipeline.register(report)
pipeline.register(side)
"""

ALL = {"prepare", "train", "report", "side"}


def write(project: E2EProject, params: str = "", pipeline: str = PIPELINE) -> None:
    project.pipeline(pipeline.replace("PARAMS", params))


@pytest.fixture
def built(project: E2EProject) -> E2EProject:
    """The pipeline above, run once and up to date."""
    project.gen({"raw.txt": "ab", "other.txt": "xyz"})
    write(project)
    project.repro_json()
    assert sorted(project.runs()) == sorted(ALL)
    return project


def active(stages: dict[str, dict[str, object]]) -> dict[str, object]:
    """{stage: action} for stages whose plan is not 'skip'."""
    return {name: value["action"] for name, value in stages.items() if value["action"] != "skip"}


def reasons(project: E2EProject) -> dict[str, list[str]]:
    return {name: value["reasons"] for name, value in project.status_json().items()}


def test_no_previous_run(project: E2EProject) -> None:
    project.gen({"raw.txt": "ab", "other.txt": "xyz"})
    write(project)

    planned = project.status_json()

    assert active(planned) == {name: "run" for name in ALL}
    assert all(value["reasons"] == ["no previous run"] for value in planned.values())
    dry = project.pivot("repro", "--dry-run")
    assert "would run" in dry.stdout and "no previous run" in dry.stdout
    assert project.runs() == []  # a dry run runs nothing...
    assert not any(project.lock_path(name).exists() for name in ALL)  # ...and records nothing


def test_up_to_date_after_a_run(built: E2EProject) -> None:
    assert active(built.status_json()) == {}
    assert "Everything is up to date" in built.pivot("status").stdout
    result = built.pivot("repro", "-j", "1")
    assert "nothing ran" in result.stdout
    assert built.runs() == []


def test_params_changed_names_fields_old_and_new(built: E2EProject) -> None:
    write(built, "factor=3")

    planned = built.status_json()

    assert active(planned) == {"prepare": "run", "train": "run", "report": "run"}
    assert planned["prepare"]["reasons"] == ["params changed: factor"]
    assert planned["prepare"]["details"] == ["factor: 1 -> 3"]
    assert planned["train"]["reasons"] == ["upstream stage(s) will run: prepare"]
    assert planned["report"]["reasons"] == ["upstream stage(s) will run: train"]
    explained = built.pivot("status", "--explain").stdout
    assert "params changed: factor" in explained and "factor: 1 -> 3" in explained
    assert "side: up to date" in explained
    built.repro_json()
    assert built.runs() == ["prepare", "train", "report"]
    assert built.read("prepared.txt") == "abababx"
    assert built.lock("prepare")["params"] == {"factor": 3, "label": "x"}


def test_dependency_changed_names_the_paths(built: E2EProject) -> None:
    built.gen({"other.txt": "new"})

    planned = built.status_json()

    assert active(planned) == {"side": "run"}
    assert planned["side"]["reasons"] == ["dependencies changed: other.txt"]
    assert built.repro_json()["side"] == "ran"
    assert built.runs() == ["side"]
    assert built.read("side.txt") == "wen"


def test_missing_output_is_restored_without_running(built: E2EProject) -> None:
    before = built.read("model.json")
    (built.root / "model.json").unlink()

    planned = built.status_json()

    assert active(planned) == {"train": "restore"}
    assert planned["train"]["reasons"] == [
        "outputs missing or modified, restoring from cache: model.json"
    ]
    assert built.repro_json() == {
        "prepare": "skipped",
        "train": "restored",
        "report": "skipped",
        "side": "skipped",
    }
    assert built.runs() == []
    assert built.read("model.json") == before


def test_modified_output_is_restored_without_running(built: E2EProject) -> None:
    before = built.read("prepared.txt")
    built.gen({"prepared.txt": "tampered"})

    assert active(built.status_json()) == {"prepare": "restore"}
    built.repro_json()

    assert built.runs() == []
    assert built.read("prepared.txt") == before
    assert active(built.status_json()) == {}


def test_forced_stages_run_with_reason(built: E2EProject) -> None:
    dry = built.pivot("repro", "--dry-run", "--json", "--force", "train").json["stages"]
    assert active(dry) == {"prepare": "run", "train": "run"}
    assert all(value["reasons"][0] == "forced" for value in dry.values())
    only = built.pivot("run", "report", "-n", "-f", "--json").json["stages"]
    assert active(only) == {"report": "run"}

    result = built.pivot("repro", "--json", "-j", "1", "--force", "train")

    stages = result.json["stages"]
    assert set(stages) == {"prepare", "train"}  # the target and its upstream
    assert all(value["status"] == "ran" for value in stages.values())
    assert all("forced" in value["reasons"] for value in stages.values())
    assert built.runs() == ["prepare", "train"]


def test_editing_a_stage_function_reruns_it_and_downstream(built: E2EProject) -> None:
    write(built, pipeline=PIPELINE.replace('return {"size": len(prepared)}', "return {'size': 1}"))

    planned = built.status_json()

    assert set(active(planned)) == {"train", "report"}
    assert planned["train"]["reasons"][0].startswith("code changed")
    built.repro_json()
    assert built.runs() == ["train", "report"]
    assert json.loads(built.read("report.json")) == {"score": 10}


MUTATIONS = {
    "params": lambda p: write(p, "factor=2"),
    "dependency": lambda p: p.gen({"raw.txt": "zzz"}),
    "params, downstream cut off": lambda p: write(p, "label='y'"),
    "output deleted": lambda p: (p.root / "side.txt").unlink(),
    "downstream output modified": lambda p: p.gen({"report.json": "{}"}),
    "code": lambda p: write(p, pipeline=PIPELINE.replace("other[::-1]", "other.upper()")),
    "params and output deleted": lambda p: (
        write(p, "factor=2"),
        (p.root / "model.json").unlink(),
    ),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_status_dry_run_and_explain_announce_what_repro_does(
    built: E2EProject, mutation: str
) -> None:
    MUTATIONS[mutation](built)

    planned = built.status_json()
    status = active(planned)
    planned_reasons = {name: value["reasons"] for name, value in planned.items()}
    dry = active(built.pivot("repro", "--dry-run", "--json").json["stages"])
    explained = built.pivot("repro", "--explain", "-j", "1")
    after = built.status_json()

    assert dry == status
    announced = {
        line.split(":")[0]: line.rsplit(" ", 1)[1]
        for line in explained.stdout.splitlines()
        if line.endswith((": will run", ": will restore"))
    }
    assert announced == status
    did = set(re.findall(r"^\[\d+/\d+\] (\S+) done", explained.stdout, re.MULTILINE))
    assert did == set(built.runs())
    # Everything announced runs, except stages that were stale only because upstream would run
    # and whose inputs came out of it byte-identical (early cut-off, reported as up to date).
    cut_off = set(re.findall(r"^\[\d+/\d+\] (\S+) up to date", explained.stdout, re.MULTILINE))
    assert did | cut_off == {name for name, action in status.items() if action == "run"}
    assert all(
        reason.startswith("upstream") for name in cut_off for reason in planned_reasons[name]
    )
    assert (mutation == "params, downstream cut off") == bool(cut_off)
    assert active(after) == {}


def test_repro_explain_prints_the_reasons_before_the_first_stage_starts(built: E2EProject) -> None:
    write(built, "factor=3")

    lines = built.pivot("repro", "--explain", "-j", "1").stdout.splitlines()

    announced = next(i for i, line in enumerate(lines) if "factor: 1 -> 3" in line)
    first_start = next(i for i, line in enumerate(lines) if line.startswith("[1/"))
    assert announced < first_start
