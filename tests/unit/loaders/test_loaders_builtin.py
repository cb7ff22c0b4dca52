"""Built-in loaders: base classes, options, round trips, and which ones have `empty()`."""

from __future__ import annotations

import copy
import dataclasses
import json
import pathlib
import pickle
from typing import Any

import pandas
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pivot import loaders
from pivot.errors import LoaderError
from pivot.loaders import (
    CSV,
    JSON,
    JSONL,
    YAML,
    Loader,
    MatplotlibFigure,
    PathOnly,
    Pickle,
    Reader,
    Text,
    Writer,
)

ALL_BUILTINS: list[Any] = [
    CSV(),
    JSON(),
    JSONL(),
    YAML(),
    Text(),
    Pickle(),
    PathOnly(),
    MatplotlibFigure(),
]

# The seed's table (001 "Built-in Loaders"): which loaders support empty().
WITH_EMPTY: list[tuple[Any, Any]] = [
    (JSON(), {}),
    (JSONL(), []),
    (YAML(), {}),
    (Text(), ""),
]
WITHOUT_EMPTY: list[Any] = [Pickle(), PathOnly()]


@pytest.mark.parametrize("loader", ALL_BUILTINS, ids=repr)
def test_builtins_are_frozen_picklable_dataclasses(loader: Any) -> None:
    assert dataclasses.is_dataclass(loader)
    assert pickle.loads(pickle.dumps(loader)) == loader
    assert copy.deepcopy(loader) == loader
    assert hash(loader) == hash(type(loader)())


@pytest.mark.parametrize("loader", ALL_BUILTINS[:-1], ids=repr)
def test_bidirectional_builtins_are_loaders(loader: Any) -> None:
    assert isinstance(loader, Loader)
    assert isinstance(loader, Reader)
    assert isinstance(loader, Writer)


def test_matplotlib_figure_is_write_only() -> None:
    figure = MatplotlibFigure()
    assert isinstance(figure, Writer)
    assert not isinstance(figure, Reader)
    assert not isinstance(figure, Loader)
    assert not hasattr(figure, "load")
    assert not loaders.supports_empty(figure)


def test_base_classes_are_abstract() -> None:
    with pytest.raises(TypeError):
        Reader()  # type: ignore[abstract]
    with pytest.raises(TypeError):
        Writer()  # type: ignore[abstract]
    with pytest.raises(TypeError):
        Loader()  # type: ignore[abstract]


@pytest.mark.parametrize(("loader", "expected"), WITH_EMPTY, ids=repr)
def test_empty_where_the_seed_table_says_yes(loader: Any, expected: Any) -> None:
    assert loaders.supports_empty(loader)
    assert loader.empty() == expected
    assert loader.empty() is not loader.empty() or expected == ""  # a fresh value each call


def test_csv_empty_is_an_empty_dataframe() -> None:
    assert loaders.supports_empty(CSV())
    empty = CSV().empty()
    assert isinstance(empty, pandas.DataFrame)
    assert empty.empty


@pytest.mark.parametrize("loader", WITHOUT_EMPTY, ids=repr)
def test_no_empty_where_the_seed_table_says_no(loader: Any) -> None:
    assert not loaders.supports_empty(loader)
    with pytest.raises(NotImplementedError, match=r"no empty\(\)"):
        loader.empty()


def test_json_and_yaml_empty_factory() -> None:
    assert JSON(empty_factory=list).empty() == []
    assert YAML(empty_factory=list).empty() == []
    first = JSON().empty()
    first["mutated"] = True
    assert JSON().empty() == {}


def test_documented_defaults() -> None:
    assert JSON().indent == 2
    assert JSON().empty_factory is dict
    assert YAML().empty_factory is dict
    assert (CSV().index_col, CSV().sep, CSV().dtype) == (None, ",", None)
    assert Pickle().protocol == pickle.HIGHEST_PROTOCOL
    figure = MatplotlibFigure()
    assert (figure.dpi, figure.bbox_inches, figure.transparent) == (150, None, False)


# --- round trips -----------------------------------------------------------------------------


def test_json_round_trip_and_indent(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "data.json"
    data = {"b": [1, 2.5, None, True], "a": {"nested": "é"}}
    JSON().save(data, path)
    assert JSON().load(path) == data
    text = path.read_text(encoding="utf-8")
    assert '\n  "b": [' in text
    assert "é" in text
    JSON(indent=None).save(data, path)
    assert "\n" not in path.read_text(encoding="utf-8").rstrip("\n")


def test_json_saves_any_json_value(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "value.json"
    for value in [[1, 2], "text", 3, 0.5, True, None]:
        JSON().save(value, path)
        assert JSON().load(path) == value


def test_jsonl_round_trip_one_line_per_row(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "rows.jsonl"
    rows = [{"a": 1}, {"b": [1, 2]}, "text"]
    JSONL().save(rows, path)
    assert path.read_text(encoding="utf-8").splitlines() == [json.dumps(row) for row in rows]
    assert JSONL().load(path) == rows


def test_jsonl_skips_blank_lines(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n  \n{"b": 2}\n', encoding="utf-8")
    assert JSONL().load(path) == [{"a": 1}, {"b": 2}]


def test_yaml_round_trip_keeps_key_order(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "data.yaml"
    data = {"zeta": 1, "alpha": ["x", "yes", "no"], "mid": {"é": None}}
    YAML().save(data, path)
    assert YAML().load(path) == data
    assert path.read_text(encoding="utf-8").index("zeta") < path.read_text().index("alpha")


def test_yaml_refuses_arbitrary_python_objects(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("!!python/object/apply:os.system ['true']\n", encoding="utf-8")
    with pytest.raises(Exception, match="python/object"):
        YAML().load(path)


def test_text_round_trip_keeps_newlines_exactly(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "notes.txt"
    text = "héllo\r\nworld\rend\n"
    Text().save(text, path)
    assert path.read_bytes() == text.encode("utf-8")
    assert Text().load(path) == text


def test_pickle_round_trip_and_protocol(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "model.pkl"
    value = {"weights": [0.1, 0.2], "bias": complex(1, 2)}
    Pickle().save(value, path)
    assert Pickle().load(path) == value
    Pickle(protocol=2).save(value, path)
    assert path.read_bytes()[:2] == b"\x80\x02"


def test_path_only_load_returns_the_path(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "anything.bin"
    assert PathOnly().load(path) == path


def test_path_only_save_checks_the_stage_wrote_the_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "plots" / "roc.png"
    with pytest.raises(LoaderError, match="does not exist") as info:
        PathOnly().save(path, path)
    assert "roc.png" in str(info.value)
    path.parent.mkdir()
    path.write_bytes(b"written by the stage")
    PathOnly().save(path, path)
    assert path.read_bytes() == b"written by the stage"


def test_csv_round_trip_without_index(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "data.csv"
    frame = pandas.DataFrame({"name": ["a", "b"], "score": [0.5, 0.75], "n": [1, 2]})
    CSV().save(frame, path)
    assert path.read_text().splitlines()[0] == "name,score,n"
    pandas.testing.assert_frame_equal(CSV().load(path), frame)


def test_csv_index_col_sep_and_dtype(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "data.tsv"
    frame = pandas.DataFrame({"v": [1, 2]}, index=pandas.Index(["x", "y"], name="key"))
    loader = CSV(index_col="key", sep="\t", dtype={"v": "float64"})
    loader.save(frame, path)
    assert path.read_text().splitlines() == ["key\tv", "x\t1", "y\t2"]
    loaded = loader.load(path)
    assert list(loaded.index) == ["x", "y"]
    assert loaded["v"].dtype == "float64"


@pytest.mark.parametrize("name", ["data.csv.gz", "data.csv.bz2", "data.csv.xz", "data.csv.zip"])
def test_csv_compressed_paths_round_trip(tmp_path: pathlib.Path, name: str) -> None:
    path = tmp_path / name
    frame = pandas.DataFrame({"a": [1, 2, 3]})
    CSV().save(frame, path)
    assert not path.read_bytes().startswith(b"a\n")  # really compressed
    pandas.testing.assert_frame_equal(CSV().load(path), frame)


@pytest.mark.parametrize(
    "loader",
    [JSON(), JSONL(), YAML(), Text(), Pickle(), CSV()],
    ids=repr,
)
def test_save_creates_parent_directories(tmp_path: pathlib.Path, loader: Any) -> None:
    path = tmp_path / "deep" / "er" / "file.out"
    value = (
        pandas.DataFrame({"a": [1]})
        if isinstance(loader, CSV)
        else ([] if isinstance(loader, JSONL) else "x")
    )
    loader.save(value, path)
    assert path.exists()


# --- invariants ------------------------------------------------------------------------------

_scalars = st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False)
_json_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)
_fixture_ok = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_fixture_ok
@given(value=_json_values)
def test_json_round_trips_any_json_value(tmp_path: pathlib.Path, value: Any) -> None:
    path = tmp_path / "v.json"
    JSON().save(value, path)
    assert JSON().load(path) == value


@_fixture_ok
@given(rows=st.lists(_json_values, max_size=5))
def test_jsonl_round_trips_any_rows(tmp_path: pathlib.Path, rows: list[Any]) -> None:
    path = tmp_path / "v.jsonl"
    JSONL().save(rows, path)
    assert JSONL().load(path) == rows


@_fixture_ok
@given(value=_json_values)
def test_yaml_round_trips_any_json_like_value(tmp_path: pathlib.Path, value: Any) -> None:
    path = tmp_path / "v.yaml"
    YAML().save(value, path)
    assert YAML().load(path) == value


@_fixture_ok
@given(text=st.text())
def test_text_round_trips_any_string(tmp_path: pathlib.Path, text: str) -> None:
    path = tmp_path / "v.txt"
    Text().save(text, path)
    assert Text().load(path) == text
