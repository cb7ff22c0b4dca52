"""Every definition mistake fails at registration with a PivotError naming the stage and the fix."""

from __future__ import annotations

import pathlib
import sys
import textwrap
import types
from typing import Any

import pytest

from pivot import errors
from pivot.pipeline import Pipeline
from tests.fixtures import defs_invalid as bad


@pytest.fixture
def pipeline(tmp_path: pathlib.Path) -> Pipeline:
    return Pipeline("test", root=tmp_path)


def _register_error(pipeline: Pipeline, func: Any, error: type[Exception], **kwargs: Any) -> str:
    with pytest.raises(error) as info:
        pipeline.register(func, **kwargs)
    assert isinstance(info.value, errors.PivotError)
    assert len(pipeline) == 0, "a rejected stage must not be registered"
    return str(info.value)


# --- not module level -------------------------------------------------------------------------


def test_closure(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.closure_stage, errors.NotModuleLevelError)
    assert "stage 'closure'" in message
    assert "make_closure.<locals>.closure" in message
    assert "defined inside a function" in message
    assert "Move it to module level" in message


def test_factory_made_function(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.factory_stage, errors.NotModuleLevelError, name="made")
    assert "stage 'made'" in message
    assert "make_stage.<locals>.made" in message


def test_lambda_without_a_name(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.lambda_stage, errors.NotModuleLevelError)
    assert "is a lambda" in message
    assert "named `def`" in message


def test_lambda_with_a_name(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.lambda_stage, errors.NotModuleLevelError, name="quick")
    assert "stage 'quick'" in message
    assert "lambda" in message


def test_partial_is_not_a_plain_function(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.partial_stage, errors.NotModuleLevelError, name="p")
    assert "stage 'p'" in message
    assert "not a plain function" in message
    assert "module level" in message


def test_static_method(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.Holder.method_stage, errors.NotModuleLevelError)
    assert "Holder.method_stage" in message
    assert "not importable" in message


_SCRIPT = textwrap.dedent(
    """
    from typing import Annotated, TypedDict
    from pivot import loaders
    from pivot.outputs import Out

    class ScriptOutputs(TypedDict):
        text: Annotated[str, Out("script.txt", loaders.Text())]

    def script_stage() -> ScriptOutputs:
        return {"text": "x"}
    """
)


def test_function_at_the_top_level_of_main_is_accepted(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A script run as `python script.py` or a notebook: its top level is module `__main__`."""
    main = types.ModuleType("__main__")
    exec(_SCRIPT, main.__dict__)
    monkeypatch.setitem(sys.modules, "__main__", main)
    spec = pipeline.register(main.script_stage)
    assert spec.name == "script_stage"
    assert spec.out_paths == ("script.txt",)


def test_function_claiming_main_but_not_found_there_is_rejected(pipeline: Pipeline) -> None:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(_SCRIPT, namespace)
    message = _register_error(pipeline, namespace["script_stage"], errors.NotModuleLevelError)
    assert "stage 'script_stage'" in message
    assert "not importable as __main__.script_stage" in message
    assert "Move it to module level" in message


def test_typed_dict_made_by_a_factory(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.returns_factory_typeddict, errors.TypeHintError)
    assert "stage 'returns_factory_typeddict'" in message
    assert "name 'FactoryOutputs' is not defined at module level" in message
    assert "local to make_outputs()" in message


# --- hints ------------------------------------------------------------------------------------


def test_unresolvable_typed_dict_reads_like_the_seed(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.train, errors.TypeHintError)
    assert "Failed to resolve type hints for train: name 'TrainOutputs' is not defined" in message
    assert "stage 'train'" in message
    assert "module level" in message


def test_unresolvable_typed_dict_field(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.returns_broken_typeddict, errors.TypeHintError)
    assert "Failed to resolve type hints for BrokenFieldOutputs" in message
    assert "UndefinedLoader" in message
    assert "stage 'returns_broken_typeddict'" in message


def test_seed_000_nested_definitions_fail_at_registration(pipeline: Pipeline) -> None:
    """Seed 000's problem: the stage and its TypedDict live inside create_pipeline()."""
    namespace: dict[str, Any] = {"__name__": bad.__name__}
    exec(
        textwrap.dedent(
            """
            from pathlib import Path
            from typing import Annotated, TypedDict
            from pivot.loaders import Pickle
            from pivot.outputs import Out

            def create_pipeline(pipeline):
                class TrainOutputs(TypedDict):
                    model: Annotated[Path, Out("model.pkl", Pickle())]

                def train() -> TrainOutputs:
                    ...

                pipeline.register(train)
            """
        ),
        namespace,
    )
    with pytest.raises(errors.StageDefinitionError) as info:
        namespace["create_pipeline"](pipeline)
    message = str(info.value)
    assert (
        "stage 'train': Failed to resolve type hints for train: name 'TrainOutputs' is " in message
    )
    assert "not defined (train is defined inside create_pipeline()" in message
    assert message.index("not defined") < message.index("at module level")


# --- markers ------------------------------------------------------------------------------------


def test_out_without_loader_names_the_stage(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.out_without_loader, errors.AnnotationError)
    assert message.startswith("stage 'out_without_loader': loader is required")
    assert "Out('file.json')" in message
    assert "Out('file.json', JSON())" in message


def test_directory_out_without_slash_names_the_stage(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.directory_without_slash, errors.AnnotationError)
    assert "stage 'directory_without_slash'" in message
    assert "DirectoryOut path must end with '/'" in message
    assert "DirectoryOut('results/', ...)" in message


def test_metric_not_json_names_the_stage(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.metric_not_json, errors.AnnotationError)
    assert "stage 'metric_not_json'" in message
    assert "'metrics.yaml'" in message


def test_incremental_without_empty_names_the_stage(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.incremental_without_empty, errors.AnnotationError)
    assert "stage 'incremental_without_empty'" in message
    assert "empty()" in message


def test_typed_dict_field_without_marker(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.field_without_marker, errors.AnnotationError)
    assert "stage 'field_without_marker'" in message
    assert "TypedDict field missing Out annotation" in message
    assert "MissingMarkerOutputs.forgotten" in message
    assert "Out('forgotten.json', JSON())" in message


def test_typed_dict_field_with_a_non_marker_annotation(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.field_with_note_only, errors.AnnotationError)
    assert "NoteOnlyOutputs.noted" in message


def test_no_return_annotation(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.no_return_annotation, errors.AnnotationError)
    assert "stage 'no_return_annotation'" in message
    assert "no return annotation" in message
    assert "-> None" in message


def test_return_annotation_without_marker(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.return_without_marker, errors.AnnotationError)
    assert "declares no output" in message
    assert "Annotated[T, Out(...)]" in message


def test_output_marker_on_a_parameter(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.output_marker_on_parameter, errors.AnnotationError)
    assert "parameter 'out'" in message
    assert "return type" in message


def test_parameter_without_dep_or_default(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.parameter_without_dep, errors.AnnotationError)
    assert "stage 'parameter_without_dep'" in message
    assert "parameter 'data'" in message
    assert "Dep(" in message


def test_var_args(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.var_args, errors.AnnotationError)
    assert "parameter 'paths'" in message
    assert "*args" in message


def test_positional_only_parameter(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.positional_only, errors.AnnotationError)
    assert "parameter 'data' is positional-only" in message
    assert "remove the '/'" in message


# --- paths ------------------------------------------------------------------------------------


def test_duplicate_output_path_within_a_stage(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.duplicate_output_path, errors.PipelineConfigError)
    assert "stage 'duplicate_output_path'" in message
    assert "'same.txt' twice" in message
    assert "'first'" in message and "'second'" in message


def test_stage_reading_its_own_output(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.reads_own_output, errors.PipelineConfigError)
    assert "'loop.txt'" in message
    assert "IncrementalOut" in message


@pytest.mark.parametrize(
    ("func", "path", "words"),
    [
        (bad.absolute_dep, "/etc/hostname", "is absolute"),
        (bad.windows_absolute_out, "C:/temp/out.txt", "is absolute"),
        (bad.escaping_out, "../outside.txt", "leaves the project root"),
        (bad.sneaky_escaping_out, "data/../../outside.txt", "leaves the project root"),
        (bad.project_root_out, "data/..", "project root itself"),
    ],
)
def test_paths_outside_the_project(pipeline: Pipeline, func: Any, path: str, words: str) -> None:
    message = _register_error(pipeline, func, errors.PathEscapeError)
    assert f"stage '{func.__name__}'" in message
    assert repr(path) in message
    assert words in message


# --- IncrementalOut ---------------------------------------------------------------------------


def test_incremental_path_mismatch(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.incremental_path_mismatch, errors.IncrementalOutError)
    assert "IncrementalOut path mismatch for 'cache'" in message
    assert "'cache_in.json'" in message and "'cache_out.json'" in message
    assert "same path" in message


def test_incremental_loader_mismatch(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.incremental_loader_mismatch, errors.IncrementalOutError)
    assert "loader mismatch for 'cache'" in message
    assert "indent=4" in message
    assert "same loader" in message


def test_incremental_name_mismatch(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.incremental_name_mismatch, errors.IncrementalOutError)
    assert "parameter 'state'" in message
    assert "return field 'state'" in message


def test_incremental_output_without_input(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.incremental_output_only, errors.IncrementalOutError)
    assert "'only_out.json' has no matching input" in message
    assert "IncrementalOut('only_out.json', ...)" in message


def test_incremental_input_without_output(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.incremental_input_only, errors.IncrementalOutError)
    assert "parameter 'cache' has no matching output" in message
    assert "IncrementalOut('only_in.json', ...)" in message


def test_incremental_single_output_allows_one_input(pipeline: Pipeline) -> None:
    message = _register_error(pipeline, bad.incremental_two_inputs, errors.IncrementalOutError)
    assert "only one IncrementalOut parameter is allowed" in message


# --- every definition error is a StageDefinitionError or PipelineConfigError -------------------

ALL_BAD = [
    value
    for name, value in vars(bad).items()
    if callable(value)
    and not isinstance(value, type)
    and not name.startswith(("make_", "create_", "_"))
    and getattr(value, "__module__", bad.__name__) == bad.__name__  # not imported names
]


@pytest.mark.parametrize("func", ALL_BAD, ids=lambda f: getattr(f, "__name__", repr(f)))
def test_every_bad_definition_fails_at_registration(pipeline: Pipeline, func: Any) -> None:
    assert len(ALL_BAD) >= 30
    with pytest.raises((errors.StageDefinitionError, errors.PipelineConfigError)):
        pipeline.register(func, name="bad")
    assert "bad" not in pipeline
