"""dep_path_overrides and out_path_overrides: accepted forms, shapes, PlaceholderDep, and errors."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from pivot import errors
from pivot.outputs import Out
from pivot.pipeline import Pipeline
from pivot.spec import OutKind, Shape, StageSpec
from tests.fixtures import defs_stages


@pytest.fixture
def pipeline(tmp_path: pathlib.Path) -> Pipeline:
    return Pipeline("test", root=tmp_path)


def _out(spec: StageSpec, name: str) -> Any:
    return next(out for out in spec.outs if out.name == name)


def _dep(spec: StageSpec, name: str) -> Any:
    return next(dep for dep in spec.deps if dep.name == name)


# --- PlaceholderDep ---------------------------------------------------------------------------


def test_placeholders_take_their_paths_from_overrides(pipeline: Pipeline) -> None:
    spec = pipeline.register(
        defs_stages.placeholder,
        dep_path_overrides={"baseline": "model_a/results.txt", "candidate": ["b/1.txt", "b/2.txt"]},
    )
    assert (_dep(spec, "baseline").paths, _dep(spec, "baseline").shape) == (
        ("model_a/results.txt",),
        Shape.SINGLE,
    )
    assert (_dep(spec, "candidate").paths, _dep(spec, "candidate").shape) == (
        ("b/1.txt", "b/2.txt"),
        Shape.LIST,
    )
    assert _dep(spec, "reference").paths == ("reference.txt",)


def test_missing_placeholder_lists_every_missing_name(pipeline: Pipeline) -> None:
    with pytest.raises(errors.PlaceholderDepError) as info:
        pipeline.register(defs_stages.placeholder)
    message = str(info.value)
    assert "stage 'placeholder'" in message
    assert "PlaceholderDep requires override for 'baseline', 'candidate'" in message
    assert "dep_path_overrides={'baseline': 'path/to/file', 'candidate': 'path/to/file'}" in message
    assert len(pipeline) == 0


def test_missing_placeholder_points_at_a_misspelt_override(pipeline: Pipeline) -> None:
    with pytest.raises(errors.PlaceholderDepError) as info:
        pipeline.register(
            defs_stages.placeholder,
            dep_path_overrides={"basline": "a.txt", "candidate": "b.txt"},
        )
    message = str(info.value)
    assert (
        "requires override for 'baseline' ('basline' looks like a typo for 'baseline')" in message
    )


def test_placeholder_error_is_a_stage_definition_error(pipeline: Pipeline) -> None:
    with pytest.raises(errors.StageDefinitionError):
        pipeline.register(defs_stages.placeholder, dep_path_overrides={"baseline": "a.txt"})


def test_placeholder_override_paths_are_checked(pipeline: Pipeline) -> None:
    with pytest.raises(errors.PathEscapeError, match="dependency 'baseline'"):
        pipeline.register(
            defs_stages.placeholder,
            dep_path_overrides={"baseline": "../a.txt", "candidate": "b.txt"},
        )


# --- dependency overrides ---------------------------------------------------------------------


def test_dep_override_replaces_a_path(pipeline: Pipeline) -> None:
    spec = pipeline.register(defs_stages.single_text, dep_path_overrides={"source": "v2/in.txt"})
    assert spec.dep_paths == ("v2/in.txt",)


def test_dep_override_keeps_list_and_tuple_shapes(pipeline: Pipeline) -> None:
    spec = pipeline.register(
        defs_stages.multi_deps,
        dep_path_overrides={
            "shards": ["s/1.txt", "s/2.txt", "s/3.txt"],
            "pair": ["l2.txt", "r2.txt"],
        },
    )
    shards, pair = _dep(spec, "shards"), _dep(spec, "pair")
    assert (shards.paths, shards.shape) == (("s/1.txt", "s/2.txt", "s/3.txt"), Shape.LIST)
    assert (pair.paths, pair.shape) == (("l2.txt", "r2.txt"), Shape.TUPLE)


def test_one_path_for_a_list_dep_becomes_a_list_of_one(pipeline: Pipeline) -> None:
    spec = pipeline.register(defs_stages.multi_deps, dep_path_overrides={"shards": "only.txt"})
    assert (_dep(spec, "shards").paths, _dep(spec, "shards").shape) == (("only.txt",), Shape.LIST)


def test_tuple_dep_needs_exactly_as_many_paths(pipeline: Pipeline) -> None:
    with pytest.raises(errors.OverrideError) as info:
        pipeline.register(defs_stages.multi_deps, dep_path_overrides={"pair": ["one.txt"]})
    assert "stage 'multi_deps'" in str(info.value)
    assert "dep_path_overrides['pair'] must give exactly 2 paths" in str(info.value)


def test_list_for_a_single_path_dep_is_refused(pipeline: Pipeline) -> None:
    with pytest.raises(errors.OverrideError, match="gives 2 paths for a single-path"):
        pipeline.register(
            defs_stages.single_text, dep_path_overrides={"source": ["a.txt", "b.txt"]}
        )


def test_unknown_dep_override_suggests_close_names(pipeline: Pipeline) -> None:
    with pytest.raises(errors.OverrideError) as info:
        pipeline.register(defs_stages.single_text, dep_path_overrides={"sourse": "a.txt"})
    assert "unknown dependency 'sourse'" in str(info.value)
    assert "Did you mean 'source'?" in str(info.value)


def test_unknown_dep_override_lists_known_names_when_nothing_is_close(
    pipeline: Pipeline,
) -> None:
    with pytest.raises(errors.OverrideError, match="Known names: 'source'"):
        pipeline.register(defs_stages.single_text, dep_path_overrides={"zzz": "a.txt"})


@pytest.mark.parametrize("value", ["", [], [1, 2], 3, None, {"path": "a.txt"}])
def test_bad_dep_override_values(pipeline: Pipeline, value: Any) -> None:
    with pytest.raises(errors.OverrideError, match=r"dep_path_overrides\['source'\]"):
        pipeline.register(defs_stages.single_text, dep_path_overrides={"source": value})


def test_incremental_dep_cannot_be_overridden(pipeline: Pipeline) -> None:
    with pytest.raises(errors.OverrideError) as info:
        pipeline.register(defs_stages.incremental_typed, dep_path_overrides={"cache": "x.json"})
    assert "IncrementalOut paths cannot be overridden ('cache')" in str(info.value)


# --- output overrides -------------------------------------------------------------------------


def test_out_override_with_a_path(pipeline: Pipeline) -> None:
    spec = pipeline.register(defs_stages.pair_outputs, out_path_overrides={"first": "v2/first.txt"})
    assert spec.out_paths == ("v2/first.txt", "pair/second.txt")
    assert _out(spec, "first").cache is True


def test_out_override_with_path_and_cache(pipeline: Pipeline) -> None:
    spec = pipeline.register(
        defs_stages.pair_outputs,
        out_path_overrides={"first": {"path": "v2/first.txt", "cache": False}},
    )
    first = _out(spec, "first")
    assert (first.paths, first.cache) == (("v2/first.txt",), False)
    assert first.marker == Out("v2/first.txt", first.loader, cache=False)


def test_out_override_with_cache_only(pipeline: Pipeline) -> None:
    spec = pipeline.register(defs_stages.all_kinds, out_path_overrides={"score": {"cache": True}})
    score = _out(spec, "score")
    assert (score.paths, score.cache, score.kind) == (("all/score.json",), True, OutKind.METRIC)


def test_out_override_with_a_list(pipeline: Pipeline) -> None:
    spec = pipeline.register(
        defs_stages.single_list_out,
        out_path_overrides={"return": ["n/1.txt", "n/2.txt", "n/3.txt"]},
    )
    assert spec.out_paths == ("n/1.txt", "n/2.txt", "n/3.txt")


def test_single_output_accepts_any_one_key(pipeline: Pipeline) -> None:
    spec = pipeline.register(defs_stages.single_text, out_path_overrides={"anything": "v2/o.txt"})
    assert spec.out_paths == ("v2/o.txt",)
    assert spec.outs[0].name == "return"


def test_single_output_refuses_two_keys(pipeline: Pipeline) -> None:
    with pytest.raises(errors.OverrideError, match="single output, but out_path_overrides has 2"):
        pipeline.register(defs_stages.single_text, out_path_overrides={"a": "a.txt", "b": "b.txt"})


def test_override_keeps_the_output_kind_and_its_rules(pipeline: Pipeline) -> None:
    spec = pipeline.register(
        defs_stages.all_kinds,
        out_path_overrides={"files": "v2/files/", "score": "v2/score.json", "chart": "v2/c.png"},
    )
    assert _out(spec, "files").kind is OutKind.DIRECTORY
    assert _out(spec, "score").kind is OutKind.METRIC
    assert _out(spec, "chart").kind is OutKind.PLOT
    assert _out(spec, "chart").marker.x == "step"


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("files", "v2/files", "DirectoryOut path must end with '/'"),
        ("score", "v2/score.yaml", "Metric path must end with '.json'"),
    ],
)
def test_override_that_breaks_a_marker_rule(
    pipeline: Pipeline, key: str, value: str, words: str
) -> None:
    with pytest.raises(errors.OverrideError) as info:
        pipeline.register(defs_stages.all_kinds, out_path_overrides={key: value})
    assert f"out_path_overrides['{key}']" in str(info.value)
    assert words in str(info.value)


def test_incremental_out_cannot_be_overridden(pipeline: Pipeline) -> None:
    with pytest.raises(errors.OverrideError) as info:
        pipeline.register(defs_stages.all_kinds, out_path_overrides={"state": "v2/state.json"})
    assert "stage 'all_kinds'" in str(info.value)
    assert "IncrementalOut paths cannot be overridden ('state')" in str(info.value)


def test_unknown_out_override_suggests_close_names(pipeline: Pipeline) -> None:
    with pytest.raises(errors.OverrideError) as info:
        pipeline.register(defs_stages.pair_outputs, out_path_overrides={"frist": "a.txt"})
    assert "unknown output 'frist'" in str(info.value)
    assert "Did you mean 'first'?" in str(info.value)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ({"path": "a.txt", "cahce": False}, "unknown keys ['cahce']"),
        ({"cache": "no"}, "['cache'] must be True or False"),
        (3, "must be a path"),
        ("", "must be a path"),
        (["a.txt", "b.txt"], "gives 2 paths for a single-path"),
    ],
)
def test_bad_out_override_values(pipeline: Pipeline, value: Any, words: str) -> None:
    with pytest.raises(errors.OverrideError) as info:
        pipeline.register(defs_stages.pair_outputs, out_path_overrides={"first": value})
    assert "out_path_overrides['first']" in str(info.value)
    assert words in str(info.value)


def test_out_override_paths_are_checked(pipeline: Pipeline) -> None:
    with pytest.raises(errors.PathEscapeError, match="output 'first'"):
        pipeline.register(defs_stages.pair_outputs, out_path_overrides={"first": "/tmp/x.txt"})


def test_overrides_do_not_change_the_function_or_other_registrations(pipeline: Pipeline) -> None:
    v1 = pipeline.register(defs_stages.pair_outputs)
    v2 = pipeline.register(
        defs_stages.pair_outputs,
        name="pair_outputs@v2",
        out_path_overrides={"first": "v2/first.txt", "second": "v2/second.txt"},
        dep_path_overrides={"left": "v2/left.txt"},
    )
    assert v1.out_paths == ("pair/first.txt", "pair/second.txt")
    assert v2.out_paths == ("v2/first.txt", "v2/second.txt")
    assert v2.dep_paths == ("v2/left.txt", "pair/right.txt")
    assert v1.func is v2.func
