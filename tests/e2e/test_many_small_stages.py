"""Many small stages on the pool (`-j 2`): once a run's stages prove small, the runner ships them
to the workers in chunks; results, locks, fail-fast and --keep-going stay exactly as per stage."""

from __future__ import annotations

from tests.e2e.conftest import E2EProject

COUNT = 60

PIPELINE = f"""\
class Which(StageParams):
    index: int = 0
    fail: int = -1


def small(
    params: Which, raw: Annotated[str, Dep("raw.txt", loaders.Text())]
) -> Annotated[str, Out("out/x.txt", loaders.Text())]:
    if params.index == params.fail:
        raise RuntimeError(f"stage {{params.index}} fails on purpose")
    return f"{{raw}} {{params.index}}"


def total(
    parts: Annotated[list[str], Dep([f"out/s{{i:02d}}.txt" for i in range({COUNT})], loaders.Text())],
) -> Annotated[str, Out("total.txt", loaders.Text())]:
    return "\\n".join(parts)


FAIL = int(pathlib.Path("fail.txt").read_text()) if pathlib.Path("fail.txt").exists() else -1
pipeline = Pipeline("many")
for i in range({COUNT}):
    pipeline.register(small, name=f"s{{i:02d}}", params=Which(index=i, fail=FAIL),
                      out_path_overrides={{"return": f"out/s{{i:02d}}.txt"}})
pipeline.register(total)
"""

NAMES = [f"s{i:02d}" for i in range(COUNT)]


def _repro(project: E2EProject, *args: str, expect: int = 0) -> dict[str, str]:
    result = project.pivot("repro", "--json", "-j", "2", *args, expect=expect)
    return {name: value["status"] for name, value in result.json["stages"].items()}


def test_small_stages_on_the_pool_run_once_each_and_record_every_lock(
    project: E2EProject,
) -> None:
    project.gen({"raw.txt": "in"})
    project.pipeline(PIPELINE)

    assert _repro(project) == dict.fromkeys([*NAMES, "total"], "ran")
    assert project.read("total.txt") == "\n".join(f"in {i}" for i in range(COUNT))
    for name in NAMES:
        assert project.lock(name)["outs"][0]["hash"] == project.out_hash(name, f"out/{name}.txt")
    assert _repro(project) == dict.fromkeys([*NAMES, "total"], "skipped")

    project.gen({"raw.txt": "again"})
    assert _repro(project) == dict.fromkeys([*NAMES, "total"], "ran")
    assert project.read("out/s59.txt") == "again 59"


def test_fail_fast_records_what_ran_and_keep_going_runs_the_rest(project: E2EProject) -> None:
    project.gen({"raw.txt": "in", "fail.txt": "40"})
    project.pipeline(PIPELINE)

    statuses = _repro(project, expect=1)

    assert statuses["s40"] == "failed"
    assert statuses["total"] == "blocked"
    assert set(statuses.values()) <= {"ran", "failed", "blocked"}
    for name in NAMES:
        ran = statuses[name] == "ran"
        assert project.lock_path(name).exists() == ran, name
        assert project.exists(f"out/{name}.txt") == ran, name
    assert not project.exists("total.txt")

    again = _repro(project, "--keep-going", expect=1)

    assert again["s40"] == "failed"
    assert again["total"] == "blocked"
    for name in NAMES:
        if name != "s40":
            expected = "skipped" if statuses[name] == "ran" else "ran"
            assert again[name] == expected, name
            assert project.read(f"out/{name}.txt") == f"in {int(name[1:])}"
