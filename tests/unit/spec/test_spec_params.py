"""StageParams (pydantic v2) and how registration resolves a stage's params."""

from __future__ import annotations

import pathlib
import pickle
from typing import Annotated, Any

import pydantic
import pytest
from typing_extensions import TypedDict  # pydantic needs it for TypedDict fields before 3.12

from pivot import errors
from pivot.outputs import Metric
from pivot.pipeline import Pipeline
from pivot.stage_def import StageParams
from tests.fixtures import defs_stages


class PlotParams(StageParams):
    width: int = 4
    colors: list[str] = ["red"]


class Window(TypedDict):
    start: int
    end: int


class DefaultsParams(StageParams):
    exclude: list[str] = []
    styling: dict[str, Any] = {}
    percents: list[int] = [50, 80]
    plots: PlotParams = PlotParams()
    window: Window = {"start": 0, "end": 10}
    nested: dict[str, list[int]] = {"a": [1]}


def make_params_class() -> Any:
    class LocalParams(StageParams):
        value: int = 1

    return LocalParams


LocalParams = make_params_class()


def uses_local_params(params: LocalParams) -> Annotated[dict[str, int], Metric("local.json")]:  # type: ignore[valid-type]
    return {"value": params.value}


def test_stage_params_is_a_pydantic_v2_model() -> None:
    assert issubclass(StageParams, pydantic.BaseModel)
    assert pydantic.VERSION.startswith("2")
    assert DefaultsParams.model_fields["percents"].default == [50, 80]


def test_mutable_defaults_are_copied_per_instance() -> None:
    first, second = DefaultsParams(), DefaultsParams()
    first.exclude.append("x")
    first.styling["color"] = "blue"
    first.percents.append(99)
    first.plots.colors.append("green")
    first.plots.width = 9
    first.window["end"] = 99
    first.nested["a"].append(2)
    assert second == DefaultsParams()
    assert second.exclude == [] and second.styling == {} and second.percents == [50, 80]
    assert second.plots == PlotParams() and second.plots.colors == ["red"]
    assert second.window == {"start": 0, "end": 10}
    assert second.nested == {"a": [1]}
    assert DefaultsParams.model_fields["plots"].default.width == 4


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(pydantic.ValidationError, match="threshhold"):
        defs_stages.ThresholdParams(threshhold=0.1)  # type: ignore[call-arg]


def test_values_are_validated() -> None:
    assert defs_stages.ThresholdParams(threshold="0.25").threshold == 0.25  # type: ignore[arg-type]
    with pytest.raises(pydantic.ValidationError):
        defs_stages.ThresholdParams(threshold="high")  # type: ignore[arg-type]


def test_params_pickle() -> None:
    params = DefaultsParams(exclude=["a"], plots=PlotParams(width=2))
    assert pickle.loads(pickle.dumps(params)) == params


# --- registration -----------------------------------------------------------------------------


@pytest.fixture
def pipeline(tmp_path: pathlib.Path) -> Pipeline:
    return Pipeline("test", root=tmp_path)


def test_params_default_to_the_class_defaults(pipeline: Pipeline) -> None:
    spec = pipeline.register(defs_stages.with_params)
    assert spec.params_arg == "params"
    assert spec.params == defs_stages.ThresholdParams()


def test_params_instance_is_copied(pipeline: Pipeline) -> None:
    given = defs_stages.ThresholdParams(threshold=0.3, tags=["a"])
    spec = pipeline.register(defs_stages.with_params, params=given)
    assert spec.params == given
    given.tags.append("later")
    assert spec.params.tags == ["a"]  # type: ignore[union-attr]


def test_params_from_a_dict(pipeline: Pipeline) -> None:
    spec = pipeline.register(defs_stages.with_params, params={"threshold": 0.7})
    assert spec.params == defs_stages.ThresholdParams(threshold=0.7)


def test_required_params_must_be_given(pipeline: Pipeline) -> None:
    with pytest.raises(errors.OverrideError) as info:
        pipeline.register(defs_stages.with_required_params)
    message = str(info.value)
    assert "stage 'with_required_params'" in message
    assert "RequiredParams" in message
    assert "learning_rate" in message
    assert "params=RequiredParams(...)" in message
    spec = pipeline.register(defs_stages.with_required_params, params={"learning_rate": 0.1})
    assert spec.params.learning_rate == 0.1  # type: ignore[union-attr]


def test_invalid_params_dict(pipeline: Pipeline) -> None:
    with pytest.raises(errors.PipelineConfigError, match="params for ThresholdParams are invalid"):
        pipeline.register(defs_stages.with_params, params={"threshhold": 0.7})


def test_params_of_another_class(pipeline: Pipeline) -> None:
    with pytest.raises(errors.OverrideError) as info:
        pipeline.register(defs_stages.with_params, params=defs_stages.OtherParams())
    assert "params must be a ThresholdParams instance" in str(info.value)
    assert "got OtherParams" in str(info.value)


def test_params_for_a_stage_without_params(pipeline: Pipeline) -> None:
    with pytest.raises(errors.OverrideError) as info:
        pipeline.register(defs_stages.single_text, params=defs_stages.ThresholdParams())
    assert "stage 'single_text'" in str(info.value)
    assert "no StageParams argument" in str(info.value)


def test_params_class_made_in_a_function_is_rejected(pipeline: Pipeline) -> None:
    with pytest.raises(errors.NotModuleLevelError) as info:
        pipeline.register(uses_local_params)
    assert "StageParams class" in str(info.value)
    assert "make_params_class.<locals>.LocalParams" in str(info.value)
