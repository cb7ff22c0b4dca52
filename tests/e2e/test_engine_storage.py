"""End to end: what a run stores (cache, lock files) and how later runs use it; checkout, commit."""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING

import pytest

from pivot.store import hashing

if TYPE_CHECKING:
    from tests.e2e.conftest import E2EProject

PIPELINE = """
class Outputs(TypedDict):
    table: Annotated[dict, Out("out/table.json", loaders.JSON())]
    scratch: Annotated[str, Out("out/scratch.txt", loaders.Text(), cache=False)]
    score: Annotated[dict, Metric("metrics/score.json")]


def produce(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Outputs:
    _ran("produce")
    return {"table": {"raw": raw}, "scratch": "tmp " + raw, "score": {"len": len(raw)}}


def parts(table: Annotated[dict, Dep("out/table.json", loaders.JSON())]) -> Annotated[dict[str, str], DirectoryOut("parts/", loaders.Text())]:
    _ran("parts")
    return {f"{i}.txt": char for i, char in enumerate(table["raw"])}


def consume(part: Annotated[str, Dep("parts/0.txt", loaders.Text())]) -> Annotated[str, Out("first.txt", loaders.Text())]:
    _ran("consume")
    return part.upper()


pipeline = Pipeline("storage")
pipeline.register(produce)
pipeline.register(parts)
pipeline.register(consume)
"""

STAGES = ("produce", "parts", "consume")


@pytest.fixture
def built(project: E2EProject) -> E2EProject:
    project.gen({"raw.txt": "abc"})
    project.pipeline(PIPELINE)
    project.repro_json()
    assert project.runs() == list(STAGES)
    return project


def locks(project: E2EProject) -> dict[str, bytes]:
    return {name: project.lock_path(name).read_bytes() for name in STAGES}


def test_second_repro_runs_nothing_and_rewrites_no_lock(built: E2EProject) -> None:
    before = locks(built)

    assert built.repro_json() == dict.fromkeys(STAGES, "skipped")
    assert built.runs() == []
    assert locks(built) == before


def test_lock_records_code_params_deps_and_outs(built: E2EProject) -> None:
    entry = built.lock("produce")

    assert entry["schema_version"] == 1 and entry["stage"] == "produce"
    assert entry["code"] and all(isinstance(v, str) for v in entry["code"].values())
    assert entry["params"] == {}
    assert entry["deps"] == [{"path": "raw.txt", "hash": hashing.hash_file(built.root / "raw.txt")}]
    outs = {out["path"]: (out["cache"], out["is_directory"]) for out in entry["outs"]}
    assert outs == {
        "metrics/score.json": (False, False),
        "out/scratch.txt": (False, False),
        "out/table.json": (True, False),
    }
    text = built.lock_path("produce").read_text()
    assert text == json.dumps(entry, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_cached_uncached_and_metric_outputs(built: E2EProject) -> None:
    for path in ("out/table.json", "out/scratch.txt", "metrics/score.json"):
        digest = built.out_hash("produce", path)
        assert digest == hashing.hash_file(built.root / path)  # hashed and recorded...
        assert built.blob(digest).is_file() == (path == "out/table.json")  # ...cached if cache
    assert json.loads(built.read("metrics/score.json")) == {"len": 3}


def test_deleted_uncached_output_reruns_its_stage(built: E2EProject) -> None:
    (built.root / "metrics" / "score.json").unlink()

    planned = built.status_json()["produce"]

    assert planned["action"] == "run"
    assert planned["reasons"] == [
        "outputs missing or modified and not in the cache: metrics/score.json"
    ]
    assert built.repro_json()["produce"] == "ran"
    assert built.runs() == ["produce"]  # downstream inputs came out identical: cut off
    assert json.loads(built.read("metrics/score.json")) == {"len": 3}


def test_editing_an_input_reruns_only_its_downstream(built: E2EProject) -> None:
    built.gen({"raw.txt": "abd"})  # parts/0.txt ('a') stays the same

    statuses = built.repro_json()

    assert statuses == {"produce": "ran", "parts": "ran", "consume": "skipped"}
    assert built.runs() == ["produce", "parts"]
    assert built.read("parts/2.txt") == "d"


def test_deleted_directory_output_is_restored_without_running(built: E2EProject) -> None:
    (built.root / "parts" / "1.txt").unlink()
    assert built.status_json()["parts"]["action"] == "restore"

    built.pivot("repro", "-j", "1")

    assert built.runs() == []
    assert sorted(p.name for p in (built.root / "parts").iterdir()) == ["0.txt", "1.txt", "2.txt"]
    shutil.rmtree(built.root / "parts")
    built.repro_json()
    assert built.runs() == []
    assert built.read("parts/1.txt") == "b"


def test_extra_file_in_directory_output_is_removed_on_restore(built: E2EProject) -> None:
    built.gen({"parts/stray.txt": "not ours"})
    assert built.status_json()["parts"]["action"] == "restore"

    built.repro_json()

    assert not built.exists("parts/stray.txt")
    assert built.runs() == []


def test_checkout_restores_outputs(built: E2EProject) -> None:
    table = built.read("out/table.json")
    (built.root / "out" / "table.json").unlink()
    (built.root / "first.txt").write_text("edited")

    result = built.pivot("checkout")

    assert "restored outputs of 'produce'" in result.stdout
    assert "restored outputs of 'consume'" in result.stdout
    assert built.read("out/table.json") == table
    assert built.read("first.txt") == "A"
    assert built.runs() == []
    assert {v["action"] for v in built.status_json().values()} == {"skip"}


def test_checkout_by_path_restores_only_its_producer(built: E2EProject) -> None:
    (built.root / "first.txt").unlink()
    (built.root / "parts" / "0.txt").unlink()

    result = built.pivot("checkout", "parts/")

    assert "restored outputs of 'parts'" in result.stdout
    assert built.read("parts/0.txt") == "a"
    assert not built.exists("first.txt")
    built.pivot("checkout", "first.txt")
    assert built.read("first.txt") == "A"


def test_checkout_of_a_stage_never_run_is_an_error(project: E2EProject) -> None:
    project.gen({"raw.txt": "abc"})
    project.pipeline(PIPELINE)

    result = project.pivot("checkout", "produce", expect=2)

    assert "never run" in result.stderr and "pivot repro produce" in result.stderr


def test_commit_records_without_running(built: E2EProject) -> None:
    built.pipeline(PIPELINE.replace("return part.upper()", "return part.strip().upper()"))
    built.gen({"first.txt": "hand made"})
    assert built.status_json()["consume"]["action"] == "run"

    result = built.pivot("commit", "consume")

    assert "committed 'consume'" in result.stdout
    assert built.runs() == []
    assert built.out_hash("consume", "first.txt") == hashing.hash_file(built.root / "first.txt")
    assert built.blob(built.out_hash("consume", "first.txt")).is_file()
    assert built.repro_json() == dict.fromkeys(STAGES, "skipped")
    assert built.runs() == []
    assert built.read("first.txt") == "hand made"


def test_commit_of_a_missing_output_is_an_error(built: E2EProject) -> None:
    (built.root / "first.txt").unlink()

    result = built.pivot("commit", "consume", expect=2)

    assert "first.txt" in result.stderr and "does not exist" in result.stderr


def test_corrupt_lock_means_no_previous_run_with_a_warning(built: E2EProject) -> None:
    built.lock_path("consume").write_text("{ not json")

    # without the run cache (with it, the earlier identical run would be restored instead)
    result = built.pivot("repro", "--dry-run", "--json", "--no-run-cache")

    planned = result.json
    assert planned["stages"]["consume"]["action"] == "run"
    assert planned["stages"]["consume"]["reasons"] == ["no previous run"]
    assert any("consume" in w and "never run" in w for w in planned["warnings"])
    repro = built.pivot("repro", "-j", "1", "--no-run-cache")
    assert "warning:" in repro.stderr and "Traceback" not in repro.output
    assert built.runs() == ["consume"]
    assert built.lock("consume")["stage"] == "consume"


def test_failure_keeps_earlier_stages_committed(built: E2EProject) -> None:
    built.pipeline(PIPELINE.replace("return part.upper()", "return part.upper() + 1"))
    built.gen({"raw.txt": "xyz"})

    result = built.pivot("repro", "-j", "1", "--json", expect=1)

    statuses = {name: value["status"] for name, value in result.json["stages"].items()}
    assert statuses == {"produce": "ran", "parts": "ran", "consume": "failed"}
    assert built.lock("parts")["deps"][0]["hash"] == hashing.hash_file(
        built.root / "out" / "table.json"
    )
    built.pipeline(PIPELINE)
    built.runs()
    assert built.repro_json() == {"produce": "skipped", "parts": "skipped", "consume": "ran"}
    assert built.runs() == ["consume"]
    assert built.read("first.txt") == "X"


INCREMENTAL = """
class Log(TypedDict):
    log: Annotated[dict, IncrementalOut("state/log.json", loaders.JSON())]


def accumulate(
    log: Annotated[dict, IncrementalOut("state/log.json", loaders.JSON())],
    entry: Annotated[str, Dep("entry.txt", loaders.Text())],
) -> Log:
    _ran("accumulate")
    seen = log.get("entries", [])
    return {"log": {"entries": [*seen, entry]}}


pipeline = Pipeline("incremental")
pipeline.register(accumulate)
"""


def test_incremental_out_sees_the_previous_value(project: E2EProject) -> None:
    project.pipeline(INCREMENTAL)
    hashes = []
    for entry in ("one", "two", "three"):
        project.gen({"entry.txt": entry})
        project.repro_json()
        hashes.append(project.out_hash("accumulate", "state/log.json"))

    assert json.loads(project.read("state/log.json")) == {"entries": ["one", "two", "three"]}
    assert project.runs() == ["accumulate"] * 3
    for digest in hashes:  # restoring a writable copy never touched the cached blobs
        assert hashing.hash_file(project.blob(digest)) == digest
    assert project.repro_json() == {"accumulate": "skipped"}


def test_incremental_out_deleted_from_workspace_is_rebuilt_from_the_cache(
    project: E2EProject,
) -> None:
    project.pipeline(INCREMENTAL)
    project.gen({"entry.txt": "one"})
    project.repro_json()
    (project.root / "state" / "log.json").unlink()

    assert project.repro_json() == {"accumulate": "restored"}
    project.gen({"entry.txt": "two"})
    project.repro_json()

    assert json.loads(project.read("state/log.json")) == {"entries": ["one", "two"]}


def test_uncached_incremental_out_keeps_its_state_in_the_workspace(project: E2EProject) -> None:
    uncached = INCREMENTAL.replace(
        'IncrementalOut("state/log.json", loaders.JSON())]\n\n\ndef',
        'IncrementalOut("state/log.json", loaders.JSON(), cache=False)]\n\n\ndef',
    ).replace(
        'log: Annotated[dict, IncrementalOut("state/log.json", loaders.JSON())]',
        'log: Annotated[dict, IncrementalOut("state/log.json", loaders.JSON(), cache=False)]',
    )
    assert uncached.count("cache=False") == 2
    project.pipeline(uncached)
    for entry in ("one", "two"):
        project.gen({"entry.txt": entry})
        project.repro_json()

    assert json.loads(project.read("state/log.json")) == {"entries": ["one", "two"]}
    assert not project.blob(project.out_hash("accumulate", "state/log.json")).exists()


PATH_ONLY = """
class Written(TypedDict):
    report: Annotated[pathlib.Path, Out("report.txt", loaders.PathOnly())]
    seen: Annotated[dict, Out("seen.json", loaders.JSON())]


def write_report(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Written:
    _ran("write_report")
    existed = {name: pathlib.Path(name).exists() for name in ("report.txt", "seen.json")}
    if raw != "skip":
        pathlib.Path("report.txt").write_text(raw * 2)
    return {"report": pathlib.Path("report.txt"), "seen": existed}


pipeline = Pipeline("path_only")
pipeline.register(write_report)
"""


def test_previous_outputs_are_removed_before_a_stage_runs(project: E2EProject) -> None:
    project.gen({"raw.txt": "ab"})
    project.pipeline(PATH_ONLY)
    project.repro_json()
    assert project.read("report.txt") == "abab"

    project.repro_json("--force")

    assert json.loads(project.read("seen.json")) == {"report.txt": False, "seen.json": False}
    assert project.blob(project.out_hash("write_report", "report.txt")).is_file()


def test_path_only_output_must_exist_after_the_call(project: E2EProject) -> None:
    project.gen({"raw.txt": "skip"})
    project.pipeline(PATH_ONLY)

    result = project.pivot("repro", "-j", "1", expect=1)

    assert "report.txt" in result.stderr and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert not project.lock_path("write_report").exists()


UNCACHED_DIRECTORY = """
class Both(TypedDict):
    listing: Annotated[dict[str, str], DirectoryOut("listing/", loaders.Text(), cache=False)]
    summary: Annotated[str, Out("summary.txt", loaders.Text())]


def both(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Both:
    _ran("both")
    return {"listing": {"a.txt": raw, "b.txt": raw * 2}, "summary": raw.upper()}


pipeline = Pipeline("uncached_directory")
pipeline.register(both)
"""


def test_uncached_directory_output_next_to_a_cached_one(project: E2EProject) -> None:
    project.gen({"raw.txt": "q"})
    project.pipeline(UNCACHED_DIRECTORY)
    project.repro_json()
    listing = project.out_hash("both", "listing/")
    assert not project.blob(listing).exists()  # not even the manifest is cached

    (project.root / "summary.txt").unlink()
    assert project.repro_json() == {"both": "restored"}
    (project.root / "summary.txt").unlink()
    project.pivot("checkout")

    assert project.read("summary.txt") == "Q"
    assert project.read("listing/b.txt") == "qq"
    assert project.runs() == ["both"]
    shutil.rmtree(project.root / "listing")
    assert project.repro_json() == {"both": "ran"}  # uncached and gone: only a run brings it back


def test_checkout_of_everything_passes_over_stages_never_run(project: E2EProject) -> None:
    project.gen({"raw.txt": "abc"})
    project.pipeline(PIPELINE)
    project.pivot("repro", "-j", "1", "produce")
    (project.root / "out" / "table.json").unlink()

    result = project.pivot("checkout")

    assert "restored outputs of 'produce'" in result.stdout
    assert "never run, nothing to restore: parts, consume" in result.stdout
    assert json.loads(project.read("out/table.json")) == {"raw": "abc"}


def test_checkout_names_uncached_outputs_it_cannot_restore(built: E2EProject) -> None:
    (built.root / "out" / "scratch.txt").unlink()

    result = built.pivot("checkout", "produce")

    assert "'out/scratch.txt' is not cached, so it cannot be restored" in result.stdout
    assert "restored outputs of 'produce'" not in result.stdout
    assert not built.exists("out/scratch.txt")
