"""Pipeline.register: names, the registry's views, and conflicts between stages' outputs."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from pivot import errors
from pivot.pipeline import Pipeline
from tests.fixtures import defs_stages


@pytest.fixture
def pipeline(tmp_path: pathlib.Path) -> Pipeline:
    return Pipeline("main", root=tmp_path)


def test_register_uses_the_function_name_and_returns_the_spec(pipeline: Pipeline) -> None:
    spec = pipeline.register(defs_stages.single_text)
    assert spec.name == "single_text"
    assert pipeline.stages == {"single_text": spec}
    assert "single_text" in pipeline
    assert len(pipeline) == 1
    assert list(pipeline) == [spec]


def test_register_with_an_explicit_name(pipeline: Pipeline) -> None:
    spec = pipeline.register(defs_stages.single_text, name="stage@v2")
    assert spec.name == "stage@v2"
    assert "stage@v2" in pipeline and "single_text" not in pipeline


def test_stages_keep_registration_order(pipeline: Pipeline) -> None:
    pipeline.register(defs_stages.single_text, name="c")
    pipeline.register(defs_stages.pair_outputs, name="a")
    pipeline.register(defs_stages.single_metric, name="b")
    assert list(pipeline.stages) == ["c", "a", "b"]
    assert [spec.name for spec in pipeline] == ["c", "a", "b"]


def test_stages_view_is_a_copy(pipeline: Pipeline) -> None:
    pipeline.register(defs_stages.single_text)
    view = pipeline.stages
    view.clear()  # type: ignore[attr-defined]
    assert "single_text" in pipeline


def test_repr_names_the_pipeline_and_stages(pipeline: Pipeline) -> None:
    pipeline.register(defs_stages.single_text)
    assert repr(pipeline) == "Pipeline('main', stages=['single_text'])"


def test_same_function_twice_under_two_names(pipeline: Pipeline) -> None:
    pipeline.register(defs_stages.single_text)
    pipeline.register(
        defs_stages.single_text, name="single_text@v2", out_path_overrides={"x": "v2/out.txt"}
    )
    assert list(pipeline.stages) == ["single_text", "single_text@v2"]


def test_duplicate_stage_name(pipeline: Pipeline) -> None:
    pipeline.register(defs_stages.single_text)
    with pytest.raises(errors.StageNameError) as info:
        pipeline.register(defs_stages.single_text, out_path_overrides={"x": "other.txt"})
    message = str(info.value)
    assert "stage 'single_text' already exists in pipeline 'main'" in message
    assert "name='single_text@v2'" in message
    assert len(pipeline) == 1


@pytest.mark.parametrize(
    "name", ["", "has space", "slash/name", "../up", "-leading", "tab\tname", ".hidden"]
)
def test_malformed_stage_names(pipeline: Pipeline, name: str) -> None:
    with pytest.raises(errors.StageNameError) as info:
        pipeline.register(defs_stages.single_text, name=name)
    assert repr(name) in str(info.value)
    assert "'train@v2'" in str(info.value)


@pytest.mark.parametrize("name", ["train", "train@v2", "Train_2", "a.b", "x+y=z", "0abc", "_p"])
def test_accepted_stage_names(pipeline: Pipeline, name: str) -> None:
    assert pipeline.register(defs_stages.single_text, name=name).name == name


def test_a_failed_registration_changes_nothing(pipeline: Pipeline) -> None:
    pipeline.register(defs_stages.produce_shared)
    with pytest.raises(errors.OutputConflictError):
        pipeline.register(defs_stages.produce_shared_again)
    assert list(pipeline.stages) == ["produce_shared"]
    pipeline.register(defs_stages.produce_elsewhere)
    assert list(pipeline.stages) == ["produce_shared", "produce_elsewhere"]


# --- output conflicts between stages ------------------------------------------------------------


def test_two_stages_declaring_the_same_output(pipeline: Pipeline) -> None:
    pipeline.register(defs_stages.produce_shared)
    with pytest.raises(errors.OutputConflictError) as info:
        pipeline.register(defs_stages.produce_shared_again)
    message = str(info.value)
    assert "'shared/out.txt'" in message
    assert "'produce_shared_again'" in message and "'produce_shared'" in message
    assert "out_path_overrides" in message


def test_same_output_after_normalisation(pipeline: Pipeline) -> None:
    pipeline.register(defs_stages.produce_shared)
    with pytest.raises(errors.OutputConflictError):
        pipeline.register(
            defs_stages.produce_elsewhere, out_path_overrides={"x": "./shared//out.txt"}
        )


def _conflict(pipeline: Pipeline, first: Any, second: Any) -> str:
    pipeline.register(first)
    with pytest.raises(errors.OutputConflictError) as info:
        pipeline.register(second)
    return str(info.value)


@pytest.mark.parametrize("order", ["directory first", "file first"])
def test_output_inside_another_stages_directory(pipeline: Pipeline, order: str) -> None:
    stages = [defs_stages.produce_directory, defs_stages.produce_shared]
    if order == "file first":
        stages.reverse()
    message = _conflict(pipeline, *stages)
    assert "output 'shared/out.txt' lies inside directory output 'shared/'" in message
    assert "'produce_directory'" in message and "'produce_shared'" in message
    assert "Move it outside" in message


@pytest.mark.parametrize("order", ["outer first", "inner first"])
def test_directory_inside_another_stages_directory(pipeline: Pipeline, order: str) -> None:
    stages = [defs_stages.produce_directory, defs_stages.produce_nested_directory]
    if order == "inner first":
        stages.reverse()
    message = _conflict(pipeline, *stages)
    assert "output 'shared/inner/' lies inside directory output 'shared/'" in message


def test_reading_another_stages_output_is_fine(pipeline: Pipeline) -> None:
    pipeline.register(defs_stages.produce_shared)
    pipeline.register(defs_stages.consume_shared)
    assert len(pipeline) == 2


def test_similar_prefixes_are_not_nested(pipeline: Pipeline) -> None:
    pipeline.register(defs_stages.produce_directory)  # "shared/"
    pipeline.register(
        defs_stages.produce_elsewhere, out_path_overrides={"x": "shared_other/out.txt"}
    )
    pipeline.register(defs_stages.single_text, out_path_overrides={"x": "sharedfile.txt"})
    assert len(pipeline) == 3


# --- the pipeline's root and state dir ----------------------------------------------------------


def test_root_defaults_to_the_directory_of_the_calling_file() -> None:
    pipeline = Pipeline("here")
    assert pipeline.root == pathlib.Path(__file__).resolve().parent
    assert pipeline.state_dir == pipeline.root / ".pivot"


def test_explicit_root(tmp_path: pathlib.Path) -> None:
    pipeline = Pipeline("there", root=tmp_path)
    assert pipeline.root == tmp_path.resolve()
    assert pipeline.register(defs_stages.single_text).state_dir == tmp_path.resolve() / ".pivot"


def test_registration_writes_nothing(tmp_path: pathlib.Path) -> None:
    pipeline = Pipeline("quiet", root=tmp_path)
    pipeline.register(defs_stages.all_kinds)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("order", ["file first", "inner first"])
def test_a_file_output_where_another_stage_needs_a_directory(
    pipeline: Pipeline, order: str
) -> None:
    stages = [defs_stages.produce_file_named_shared, defs_stages.produce_shared]
    if order == "inner first":
        stages.reverse()
    message = _conflict(pipeline, *stages)
    assert (
        "output 'shared' is a file, but output 'shared/out.txt' would need it to be a directory"
        in message
    )
    assert "'produce_file_named_shared'" in message and "'produce_shared'" in message


def test_a_stage_writing_inside_its_own_directory_output(pipeline: Pipeline) -> None:
    with pytest.raises(errors.OutputConflictError) as info:
        pipeline.register(defs_stages.produce_inside_own_directory)
    assert "'own/extra.txt' lies inside directory output 'own/'" in str(info.value)
