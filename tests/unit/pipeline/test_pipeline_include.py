"""Pipeline.include: deep copy, point in time, state dir kept, collisions and self-include refused."""

from __future__ import annotations

import pathlib

import pytest

from pivot import errors
from pivot.pipeline import Pipeline
from tests.fixtures import defs_stages


@pytest.fixture
def roots(tmp_path: pathlib.Path) -> dict[str, pathlib.Path]:
    paths = {name: tmp_path / name for name in ("main", "sub", "leaf")}
    for path in paths.values():
        path.mkdir()
    return paths


def _sub(root: pathlib.Path) -> Pipeline:
    sub = Pipeline("preprocessing", root=root)
    sub.register(defs_stages.single_text, name="clean")
    sub.register(defs_stages.with_params, name="normalize", params={"threshold": 0.1})
    return sub


def test_include_copies_the_stages(roots: dict[str, pathlib.Path]) -> None:
    sub = _sub(roots["sub"])
    main = Pipeline("main", root=roots["main"])
    main.register(defs_stages.pair_outputs, name="train")
    main.include(sub)
    assert list(main.stages) == ["train", "clean", "normalize"]
    assert main.stages["clean"].out_paths == sub.stages["clean"].out_paths
    assert main.stages["clean"].func is defs_stages.single_text


def test_included_stages_keep_their_state_dir(roots: dict[str, pathlib.Path]) -> None:
    main = Pipeline("main", root=roots["main"])
    main.include(_sub(roots["sub"]))
    main.register(defs_stages.pair_outputs, name="train")
    assert main.stages["clean"].state_dir == roots["sub"].resolve() / ".pivot"
    assert main.stages["train"].state_dir == roots["main"].resolve() / ".pivot"


def test_include_is_a_deep_copy(roots: dict[str, pathlib.Path]) -> None:
    sub = _sub(roots["sub"])
    main = Pipeline("main", root=roots["main"])
    main.include(sub)
    copied, original = main.stages["normalize"], sub.stages["normalize"]
    assert copied == original
    assert copied is not original
    assert copied.params is not original.params
    original.params.tags.append("mutated")  # type: ignore[union-attr]
    assert copied.params.tags == []  # type: ignore[union-attr]


def test_include_is_a_point_in_time_snapshot(roots: dict[str, pathlib.Path]) -> None:
    sub = _sub(roots["sub"])
    main = Pipeline("main", root=roots["main"])
    main.include(sub)
    sub.register(defs_stages.single_metric, name="late")
    assert "late" in sub
    assert "late" not in main
    main.register(defs_stages.single_uncached, name="main_only")
    assert "main_only" not in sub


def test_including_an_empty_pipeline_is_a_no_op(roots: dict[str, pathlib.Path]) -> None:
    main = Pipeline("main", root=roots["main"])
    main.register(defs_stages.single_text)
    before = main.stages
    main.include(Pipeline("empty", root=roots["sub"]))
    assert main.stages == before


def test_including_the_same_pipeline_twice_raises(roots: dict[str, pathlib.Path]) -> None:
    sub = _sub(roots["sub"])
    main = Pipeline("main", root=roots["main"])
    main.include(sub)
    with pytest.raises(errors.StageNameError) as info:
        main.include(sub)
    message = str(info.value)
    assert "stage 'clean' already exists in pipeline 'main'" in message
    assert "'preprocessing'" in message
    assert "name=" in message
    assert isinstance(info.value, errors.PipelineConfigError)


def test_name_collision_with_a_registered_stage(roots: dict[str, pathlib.Path]) -> None:
    main = Pipeline("main", root=roots["main"])
    main.register(defs_stages.single_metric, name="normalize")
    with pytest.raises(errors.PipelineConfigError, match="stage 'normalize' already exists"):
        main.include(_sub(roots["sub"]))
    assert list(main.stages) == ["normalize"]  # nothing half-included


def test_register_after_include_collides_too(roots: dict[str, pathlib.Path]) -> None:
    main = Pipeline("main", root=roots["main"])
    main.include(_sub(roots["sub"]))
    with pytest.raises(errors.StageNameError, match="stage 'clean' already exists"):
        main.register(defs_stages.single_metric, name="clean")


def test_output_conflict_across_include(roots: dict[str, pathlib.Path]) -> None:
    main = Pipeline("main", root=roots["main"])
    main.register(defs_stages.single_uncached, out_path_overrides={"x": "out.txt"})
    with pytest.raises(errors.OutputConflictError, match=r"'out\.txt'"):
        main.include(_sub(roots["sub"]))
    assert list(main.stages) == ["single_uncached"]


def test_output_conflict_with_a_directory_across_include(roots: dict[str, pathlib.Path]) -> None:
    sub = Pipeline("sub", root=roots["sub"])
    sub.register(defs_stages.produce_directory)
    main = Pipeline("main", root=roots["main"])
    main.register(defs_stages.produce_shared)
    with pytest.raises(errors.OutputConflictError, match="lies inside directory output"):
        main.include(sub)


def test_self_include_raises(roots: dict[str, pathlib.Path]) -> None:
    main = Pipeline("main", root=roots["main"])
    main.register(defs_stages.single_text)
    with pytest.raises(errors.PipelineConfigError) as info:
        main.include(main)
    assert "pipeline 'main' cannot include itself" in str(info.value)
    assert "separate Pipeline" in str(info.value)


def test_include_is_transitive(roots: dict[str, pathlib.Path]) -> None:
    leaf = Pipeline("leaf", root=roots["leaf"])
    leaf.register(defs_stages.single_metric, name="leaf_stage")
    sub = _sub(roots["sub"])
    sub.include(leaf)
    main = Pipeline("main", root=roots["main"])
    main.include(sub)
    assert list(main.stages) == ["clean", "normalize", "leaf_stage"]
    assert main.stages["leaf_stage"].state_dir == roots["leaf"].resolve() / ".pivot"
    assert main.stages["clean"].state_dir == roots["sub"].resolve() / ".pivot"


def test_include_rejects_a_non_pipeline(roots: dict[str, pathlib.Path]) -> None:
    main = Pipeline("main", root=roots["main"])
    with pytest.raises(TypeError, match="include\\(\\) takes a Pipeline, got dict"):
        main.include({})  # type: ignore[arg-type]
