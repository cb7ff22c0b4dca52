"""The annotation markers: frozen picklable dataclasses, their defaults and construction rules."""

from __future__ import annotations

import copy
import dataclasses
import pathlib
import pickle
from typing import Any

import pytest

from pivot import loaders
from pivot.errors import AnnotationError, StageDefinitionError
from pivot.outputs import Dep, DirectoryOut, IncrementalOut, Metric, Out, PlaceholderDep, Plot
from tests.fixtures import defs_loaders

EXAMPLES: list[Any] = [
    Dep("data.csv", loaders.CSV()),
    Dep(["a.csv", "b.csv"], loaders.CSV(sep=";")),
    Dep(("x.csv", "y.csv"), loaders.CSV(index_col=0)),
    Dep("inputs/", loaders.PathOnly()),
    PlaceholderDep(loaders.CSV()),
    Out("model.pkl", loaders.Pickle()),
    Out(["a.json", "b.json"], loaders.JSON(), cache=False),
    Metric("metrics.json"),
    Plot("plots/loss.png", loaders.MatplotlibFigure(dpi=72), x="step", y="loss", template="t"),
    IncrementalOut("cache.json", loaders.JSON()),
    DirectoryOut("results/", loaders.YAML()),
    Out("page.html", defs_loaders.HTMLWriter()),
]


@pytest.mark.parametrize("marker", EXAMPLES, ids=repr)
def test_markers_are_frozen_dataclasses(marker: Any) -> None:
    assert dataclasses.is_dataclass(marker)
    field = dataclasses.fields(marker)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(marker, field, "other")


@pytest.mark.parametrize("marker", EXAMPLES, ids=repr)
def test_markers_pickle_and_copy_to_equal_values(marker: Any) -> None:
    assert pickle.loads(pickle.dumps(marker)) == marker
    assert copy.deepcopy(marker) == marker


def test_single_list_and_tuple_paths_keep_their_shape() -> None:
    assert Dep("a.csv", loaders.CSV()).path == "a.csv"
    assert Dep(["a.csv", "b.csv"], loaders.CSV()).path == ["a.csv", "b.csv"]
    assert Dep(("a.csv", "b.csv"), loaders.CSV()).path == ("a.csv", "b.csv")
    assert isinstance(Out(("a.txt",), loaders.Text()).path, tuple)
    assert isinstance(Out(["a.txt"], loaders.Text()).path, list)


def test_pathlike_paths_become_strings() -> None:
    assert Dep(pathlib.Path("data") / "a.csv", loaders.CSV()).path == "data/a.csv"
    assert Out([pathlib.Path("a.txt"), "b.txt"], loaders.Text()).path == ["a.txt", "b.txt"]


def test_out_defaults() -> None:
    out = Out("model.pkl", loaders.Pickle())
    assert out.cache is True
    assert out.loader == loaders.Pickle()


def test_metric_defaults_to_json_and_no_cache() -> None:
    metric = Metric("metrics.json")
    assert metric.loader == loaders.JSON()
    assert metric.cache is False
    assert isinstance(metric, Out)


def test_metric_options_can_be_set() -> None:
    metric = Metric("m.json", loaders.JSON(indent=None), cache=True)
    assert metric.cache is True
    assert metric.loader == loaders.JSON(indent=None)


@pytest.mark.parametrize("path", ["metrics.yaml", "metrics", "metrics.json.bak"])
def test_metric_path_must_end_in_json(path: str) -> None:
    with pytest.raises(AnnotationError, match=r"Metric path must end with '\.json'") as info:
        Metric(path)
    assert repr(path) in str(info.value)
    assert "use Out(...)" in str(info.value)


def test_metric_path_list_checks_every_path() -> None:
    assert Metric(["a.json", "b.json"]).path == ["a.json", "b.json"]
    with pytest.raises(AnnotationError, match=r"'b\.txt'"):
        Metric(["a.json", "b.txt"])


def test_plot_metadata_and_defaults() -> None:
    plot = Plot("plots/p.png", loaders.MatplotlibFigure(), x="epoch", y="loss", template="linear")
    assert (plot.x, plot.y, plot.template) == ("epoch", "loss", "linear")
    assert plot.cache is True
    bare = Plot("plots/roc.png", loaders.PathOnly())
    assert (bare.x, bare.y, bare.template) == (None, None, None)
    assert isinstance(plot, Out)


def test_directory_out_needs_trailing_slash() -> None:
    assert DirectoryOut("results/", loaders.JSON()).path == "results/"
    with pytest.raises(AnnotationError, match="DirectoryOut path must end with '/'") as info:
        DirectoryOut("results", loaders.JSON())
    assert "DirectoryOut('results/', ...)" in str(info.value)


def test_directory_out_takes_one_path() -> None:
    with pytest.raises(AnnotationError, match="one directory path"):
        DirectoryOut(["a/", "b/"], loaders.JSON())


def test_directory_out_defaults_to_cache() -> None:
    assert DirectoryOut("results/", loaders.JSON()).cache is True


def test_incremental_out_needs_a_loader_with_empty() -> None:
    marker = IncrementalOut("cache.json", loaders.JSON())
    assert marker.cache is True
    with pytest.raises(AnnotationError, match=r"needs a Loader with empty\(\)") as info:
        IncrementalOut("model.pkl", loaders.Pickle())
    assert "'model.pkl'" in str(info.value)
    assert "JSON()" in str(info.value)


@pytest.mark.parametrize(
    "loader",
    [loaders.Pickle(), loaders.PathOnly(), loaders.MatplotlibFigure(), defs_loaders.NoEmpty()],
    ids=repr,
)
def test_incremental_out_rejects_loaders_without_empty(loader: Any) -> None:
    with pytest.raises(AnnotationError, match="IncrementalOut"):
        IncrementalOut("state.bin", loader)


def test_incremental_out_accepts_a_custom_loader_with_empty() -> None:
    assert IncrementalOut("shout.txt", defs_loaders.Upper()).loader == defs_loaders.Upper()


def test_incremental_out_rejects_a_read_only_loader() -> None:
    with pytest.raises(AnnotationError, match="not a Writer"):
        IncrementalOut("lines.txt", defs_loaders.LinesReader())


def test_incremental_out_takes_one_path() -> None:
    with pytest.raises(AnnotationError, match="one path, not a list"):
        IncrementalOut(["a.json", "b.json"], loaders.JSON())


@pytest.mark.parametrize("cls", [Out, Plot, DirectoryOut, IncrementalOut])
def test_outputs_without_loader_say_loader_is_required(cls: Any) -> None:
    with pytest.raises(AnnotationError, match="loader is required") as info:
        cls("file.json/" if cls is DirectoryOut else "file.json")
    assert "file.json" in str(info.value)
    assert "JSON()" in str(info.value)


@pytest.mark.parametrize("cls", [Dep, PlaceholderDep])
def test_deps_without_loader_say_loader_is_required(cls: Any) -> None:
    with pytest.raises(AnnotationError, match="loader is required"):
        cls("data.csv") if cls is Dep else cls()


def test_dep_rejects_a_write_only_loader() -> None:
    with pytest.raises(AnnotationError, match="not a Reader") as info:
        Dep("plot.png", loaders.MatplotlibFigure())
    assert "'plot.png'" in str(info.value)


def test_out_rejects_a_read_only_loader() -> None:
    with pytest.raises(AnnotationError, match="not a Writer"):
        Out("lines.txt", defs_loaders.LinesReader())


def test_loader_class_instead_of_instance_is_rejected() -> None:
    with pytest.raises(AnnotationError, match="not a Writer"):
        Out("data.csv", loaders.CSV)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["", [], (), ["a.csv", ""], [["a.csv"]], 3, None])
def test_bad_paths_are_rejected(path: Any) -> None:
    with pytest.raises(AnnotationError):
        Dep(path, loaders.CSV())


def test_marker_errors_are_stage_definition_errors_and_type_errors() -> None:
    with pytest.raises(StageDefinitionError):
        Out("x.json")
    with pytest.raises(TypeError):
        Out("x.json")


def test_markers_compare_by_value() -> None:
    assert Out("a.csv", loaders.CSV()) == Out("a.csv", loaders.CSV())
    assert Out("a.csv", loaders.CSV()) != Out("a.csv", loaders.CSV(sep=";"))
    assert Out("a.csv", loaders.CSV()) != Out("a.csv", loaders.CSV(), cache=False)


@pytest.mark.parametrize("marker", [Out, Plot, Metric])
def test_a_file_output_path_ending_in_a_slash_points_to_directory_out(marker: Any) -> None:
    path = "reports/" if marker is not Metric else ["a.json", "reports/"]
    with pytest.raises(AnnotationError) as info:
        marker(path, loaders.JSON())
    message = str(info.value)
    assert "'reports/' ends with '/'" in message
    assert "DirectoryOut('reports/', ...)" in message
