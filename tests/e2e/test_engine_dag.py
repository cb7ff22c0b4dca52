"""End to end: how stages connect (multi-file and directory outputs), and DAG errors."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.e2e.conftest import E2EProject

MULTI = """
def split(text: Annotated[str, Dep("in.txt", loaders.Text())]) -> Annotated[list[str], Out(["left.txt", "right.txt"], loaders.Text())]:
    _ran("split")
    half = len(text) // 2
    return [text[:half], text[half:]]


def use_right(right: Annotated[str, Dep("right.txt", loaders.Text())]) -> Annotated[str, Out("right_upper.txt", loaders.Text())]:
    _ran("use_right")
    return right.upper()


def use_both(parts: Annotated[tuple[str, str], Dep(("left.txt", "right.txt"), loaders.Text())]) -> Annotated[str, Out("joined.txt", loaders.Text())]:
    _ran("use_both")
    return "|".join(parts)


pipeline = Pipeline("multi")
pipeline.register(use_both)
pipeline.register(use_right)
pipeline.register(split)
"""


def test_multi_file_outputs_connect_each_file(project: E2EProject) -> None:
    project.gen({"in.txt": "abcdef"})
    project.pipeline(MULTI)

    statuses = project.repro_json()

    assert statuses == {"split": "ran", "use_right": "ran", "use_both": "ran"}
    assert project.runs()[0] == "split"  # registered last, runs first
    assert project.read("joined.txt") == "abc|def"
    assert project.read("right_upper.txt") == "DEF"
    assert sorted(out["path"] for out in project.lock("split")["outs"]) == [
        "left.txt",
        "right.txt",
    ]
    assert [dep["path"] for dep in project.lock("use_both")["deps"]] == ["left.txt", "right.txt"]


def test_multi_file_output_changing_one_file_cuts_off_the_other_consumer(
    project: E2EProject,
) -> None:
    project.gen({"in.txt": "abcdef"})
    project.pipeline(MULTI)
    project.repro_json()
    project.runs()

    project.gen({"in.txt": "abcxyz"})  # left.txt stays "abc", right.txt changes
    statuses = project.repro_json()

    assert statuses == {"split": "ran", "use_right": "ran", "use_both": "ran"}
    assert project.read("joined.txt") == "abc|xyz"
    assert project.read("right_upper.txt") == "XYZ"


DIRECTORY = """
class Params(StageParams):
    names: list[str] = ["x", "y"]
    tag: str = "v1"


def make_parts(params: Params) -> Annotated[dict[str, dict], DirectoryOut("parts/", loaders.JSON())]:
    _ran("make_parts")
    return {f"{name}.json": {"name": name, "tag": params.tag if name != "x" else "fixed"} for name in params.names}


def read_x(x: Annotated[dict, Dep("parts/x.json", loaders.JSON())]) -> Annotated[dict, Out("x_copy.json", loaders.JSON())]:
    _ran("read_x")
    return x


def read_all(parts: Annotated[pathlib.Path, Dep("parts/", loaders.PathOnly())]) -> Annotated[list, Out("all.json", loaders.JSON())]:
    _ran("read_all")
    return sorted(path.name for path in parts.iterdir())


pipeline = Pipeline("directory")
pipeline.register(read_all)
pipeline.register(read_x)
pipeline.register(make_parts, params=Params(PARAMS))
"""


def test_directory_output_feeds_file_and_directory_dependencies(project: E2EProject) -> None:
    project.pipeline(DIRECTORY.replace("PARAMS", ""))

    statuses = project.repro_json()

    assert statuses == {"make_parts": "ran", "read_x": "ran", "read_all": "ran"}
    assert project.runs()[0] == "make_parts"
    assert json.loads(project.read("x_copy.json")) == {"name": "x", "tag": "fixed"}
    assert json.loads(project.read("all.json")) == ["x.json", "y.json"]
    outs = project.lock("make_parts")["outs"]
    assert [(out["path"], out["is_directory"], out["cache"]) for out in outs] == [
        ("parts/", True, True)
    ]
    assert [dep["path"] for dep in project.lock("read_x")["deps"]] == ["parts/x.json"]
    assert [dep["path"] for dep in project.lock("read_all")["deps"]] == ["parts/"]


def test_directory_output_change_reruns_only_real_consumers(project: E2EProject) -> None:
    project.pipeline(DIRECTORY.replace("PARAMS", ""))
    project.repro_json()
    project.runs()

    project.pipeline(DIRECTORY.replace("PARAMS", "tag='v2'"))  # y.json changes, x.json does not
    planned = project.status_json()
    statuses = project.repro_json()

    assert planned["read_x"]["action"] == "run"  # upstream will run...
    assert statuses["make_parts"] == "ran"
    assert statuses["read_all"] == "ran"
    assert statuses["read_x"] == "skipped"  # ...but its file came out identical
    assert sorted(project.runs()) == ["make_parts", "read_all"]
    assert project.repro_json() == {name: "skipped" for name in statuses}


def test_directory_output_removes_stale_files(project: E2EProject) -> None:
    project.pipeline(DIRECTORY.replace("PARAMS", ""))
    project.repro_json()

    project.pipeline(DIRECTORY.replace("PARAMS", "names=['x', 'z']"))
    project.repro_json()

    assert sorted(path.name for path in (project.root / "parts").iterdir()) == [
        "x.json",
        "z.json",
    ]
    assert json.loads(project.read("all.json")) == ["x.json", "z.json"]


CYCLE = """
def first(b: Annotated[str, Dep("b.txt", loaders.Text())]) -> Annotated[str, Out("a.txt", loaders.Text())]:
    return b


def second(a: Annotated[str, Dep("a.txt", loaders.Text())]) -> Annotated[str, Out("b.txt", loaders.Text())]:
    return a


pipeline = Pipeline("cycle")
pipeline.register(first)
pipeline.register(second)
"""


def test_cycle_is_an_error_naming_stages_and_paths(project: E2EProject) -> None:
    project.pipeline(CYCLE)

    for args in (("repro",), ("status",), ("repro", "--dry-run")):
        result = project.pivot(*args, expect=2)
        assert "cycle" in result.stderr
        assert "first" in result.stderr and "second" in result.stderr
        assert "a.txt" in result.stderr and "b.txt" in result.stderr
        assert "Traceback" not in result.output


MISSING = """
def consume(data: Annotated[str, Dep("data/raw.txt", loaders.Text())]) -> Annotated[str, Out("out.txt", loaders.Text())]:
    return data


pipeline = Pipeline("missing")
pipeline.register(consume)
"""


def test_missing_unproduced_dependency_is_an_error(project: E2EProject) -> None:
    project.pipeline(MISSING)

    result = project.pivot("repro", expect=2)

    assert "'consume'" in result.stderr and "data/raw.txt" in result.stderr
    assert "does not exist" in result.stderr
    project.gen({"data/raw.txt": "now here"})
    project.pivot("repro", "-j", "1")
    assert project.read("out.txt") == "now here"


INCREMENTAL_CHAIN = """
class Log(TypedDict):
    log: Annotated[list, IncrementalOut("log.jsonl", loaders.JSONL())]


def append(
    log: Annotated[list, IncrementalOut("log.jsonl", loaders.JSONL())],
    entry: Annotated[str, Dep("entry.txt", loaders.Text())],
) -> Log:
    _ran("append")
    return {"log": [*log, {"entry": entry}]}


def count(log: Annotated[list, Dep("log.jsonl", loaders.JSONL())]) -> Annotated[dict, Metric("count.json")]:
    _ran("count")
    return {"entries": len(log)}


pipeline = Pipeline("incremental")
pipeline.register(count)
pipeline.register(append)
"""


def test_incremental_out_makes_no_self_edge_and_feeds_downstream(project: E2EProject) -> None:
    project.gen({"entry.txt": "one"})
    project.pipeline(INCREMENTAL_CHAIN)

    assert project.repro_json() == {"append": "ran", "count": "ran"}
    assert project.runs() == ["append", "count"]
    assert [dep["path"] for dep in project.lock("append")["deps"]] == ["entry.txt"]
    assert json.loads(project.read("count.json")) == {"entries": 1}
