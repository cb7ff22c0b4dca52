"""What registration extracts from a valid stage: deps, outs, shapes, kinds, cache flags, params."""

from __future__ import annotations

import copy
import pathlib
import pickle

import pytest

from pivot import loaders
from pivot.outputs import Plot
from pivot.pipeline import Pipeline
from pivot.spec import DepSpec, OutKind, OutSpec, Shape, StageSpec, extract_spec
from tests.fixtures import defs_stages


@pytest.fixture
def pipeline(tmp_path: pathlib.Path) -> Pipeline:
    return Pipeline("test", root=tmp_path)


def _outs(spec: StageSpec) -> dict[str, OutSpec]:
    return {out.name: out for out in spec.outs}


def _deps(spec: StageSpec) -> dict[str, DepSpec]:
    return {dep.name: dep for dep in spec.deps}


def test_single_output_stage(pipeline: Pipeline) -> None:
    spec = pipeline.register(defs_stages.single_text)
    assert spec.name == "single_text"
    assert spec.func is defs_stages.single_text
    assert spec.single_output is True
    assert spec.params_arg is None and spec.params is None
    assert spec.deps == (DepSpec("source", ("in.txt",), Shape.SINGLE, loaders.Text()),)
    (out,) = spec.outs
    assert (out.paths, out.shape, out.kind, out.loader, out.cache) == (
        ("out.txt",),
        Shape.SINGLE,
        OutKind.OUT,
        loaders.Text(),
        True,
    )
    assert spec.out_paths == ("out.txt",)
    assert spec.dep_paths == ("in.txt",)


def test_cache_false_is_recorded(pipeline: Pipeline) -> None:
    assert pipeline.register(defs_stages.single_uncached).outs[0].cache is False


@pytest.mark.parametrize(
    ("func", "paths", "shape"),
    [
        (defs_stages.single_list_out, ("a.txt", "b.txt"), Shape.LIST),
        (defs_stages.single_tuple_out, ("x.txt", "y.txt"), Shape.TUPLE),
    ],
)
def test_multi_file_single_output(
    pipeline: Pipeline, func: object, paths: tuple[str, ...], shape: Shape
) -> None:
    spec = pipeline.register(func)  # type: ignore[arg-type]
    assert (spec.outs[0].paths, spec.outs[0].shape) == (paths, shape)
    assert spec.out_paths == paths


def test_no_outputs(pipeline: Pipeline) -> None:
    spec = pipeline.register(defs_stages.no_outputs)
    assert spec.outs == ()
    assert spec.single_output is False
    assert spec.dep_paths == ("in.txt",)


def test_single_metric_and_directory(pipeline: Pipeline) -> None:
    metric = pipeline.register(defs_stages.single_metric).outs[0]
    assert (metric.kind, metric.cache, metric.loader) == (OutKind.METRIC, False, loaders.JSON())
    directory = pipeline.register(defs_stages.single_directory).outs[0]
    assert (directory.kind, directory.paths, directory.cache) == (
        OutKind.DIRECTORY,
        ("reports/",),
        True,
    )


def test_multi_file_and_directory_deps(pipeline: Pipeline) -> None:
    deps = _deps(pipeline.register(defs_stages.multi_deps))
    assert (deps["shards"].paths, deps["shards"].shape) == (
        ("shards/a.txt", "shards/b.txt"),
        Shape.LIST,
    )
    assert (deps["pair"].paths, deps["pair"].shape) == (("left.txt", "right.txt"), Shape.TUPLE)
    assert (deps["folder"].paths, deps["folder"].loader) == (("inputs/",), loaders.PathOnly())
    assert list(deps) == ["shards", "pair", "folder"]  # signature order


def test_paths_are_normalised(pipeline: Pipeline) -> None:
    spec = pipeline.register(defs_stages.unnormalised_paths)
    assert spec.dep_paths == ("data/in.txt",)
    assert spec.out_paths == ("out/nested/file.txt",)


def test_typed_dict_outputs_of_every_kind(pipeline: Pipeline) -> None:
    spec = pipeline.register(defs_stages.all_kinds)
    assert spec.single_output is False
    outs = _outs(spec)
    assert list(outs) == ["table", "score", "chart", "state", "files", "shards", "raw"]
    expected = {
        "table": (("all/table.json",), OutKind.OUT, True, loaders.JSON()),
        "score": (("all/score.json",), OutKind.METRIC, False, loaders.JSON()),
        "chart": (("all/chart.png",), OutKind.PLOT, True, loaders.PathOnly()),
        "state": (("all/state.json",), OutKind.INCREMENTAL, True, loaders.JSON()),
        "files": (("all/files/",), OutKind.DIRECTORY, True, loaders.Text()),
        "shards": (("all/s1.txt", "all/s2.txt"), OutKind.OUT, True, loaders.Text()),
        "raw": (("all/raw.txt",), OutKind.OUT, False, loaders.Text()),
    }
    for name, (paths, kind, cache, loader) in expected.items():
        out = outs[name]
        assert (out.paths, out.kind, out.cache, out.loader) == (paths, kind, cache, loader), name
    chart = outs["chart"].marker
    assert isinstance(chart, Plot) and (chart.x, chart.y, chart.template) == ("step", "loss", None)


def test_incremental_input_makes_no_dag_edge(pipeline: Pipeline) -> None:
    spec = pipeline.register(defs_stages.all_kinds)
    deps = _deps(spec)
    assert deps["state"].incremental is True
    assert deps["table"].incremental is False
    assert spec.dep_paths == ("all/input.json",)
    assert "all/state.json" in spec.out_paths


def test_params_argument_is_found_and_defaulted(pipeline: Pipeline) -> None:
    spec = pipeline.register(defs_stages.all_kinds)
    assert spec.params_arg == "params"
    assert spec.params == defs_stages.ThresholdParams()


def test_parameter_with_default_is_left_to_python(pipeline: Pipeline) -> None:
    spec = pipeline.register(defs_stages.with_default_argument)
    assert [dep.name for dep in spec.deps] == ["source"]


def test_incremental_single_output(pipeline: Pipeline) -> None:
    spec = pipeline.register(defs_stages.incremental_single)
    assert spec.single_output
    assert spec.outs[0].kind is OutKind.INCREMENTAL
    assert spec.deps[0].incremental and spec.deps[0].paths == ("log.txt",)
    assert spec.dep_paths == ()


def test_incremental_typed_dict_with_optional_input(pipeline: Pipeline) -> None:
    spec = pipeline.register(defs_stages.incremental_typed)
    assert _deps(spec)["cache"].incremental
    assert _outs(spec)["cache"].kind is OutKind.INCREMENTAL
    assert _outs(spec)["summary"].kind is OutKind.METRIC


def test_state_dir_is_the_pipeline_state_dir(tmp_path: pathlib.Path) -> None:
    pipeline = Pipeline("test", root=tmp_path)
    assert pipeline.register(defs_stages.single_text).state_dir == tmp_path.resolve() / ".pivot"


def test_extract_spec_without_a_pipeline() -> None:
    spec = extract_spec(defs_stages.pair_outputs, name="pairs")
    assert spec.name == "pairs"
    assert spec.state_dir is None
    assert [out.name for out in spec.outs] == ["first", "second"]


def test_specs_deep_copy_and_pickle(pipeline: Pipeline) -> None:
    spec = pipeline.register(defs_stages.all_kinds)
    assert copy.deepcopy(spec) == spec
    clone = pickle.loads(pickle.dumps(spec))
    assert clone == spec
    assert clone.func is defs_stages.all_kinds


def test_registering_leaves_the_function_plain(pipeline: Pipeline) -> None:
    pipeline.register(defs_stages.single_text)
    assert defs_stages.single_text("abc") == "ABC"
