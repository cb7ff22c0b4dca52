"""expand_return_value: the whole return value is validated before any file would be written."""

from __future__ import annotations

import posixpath
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pivot.errors import OutputValidationError
from pivot.returns import OutputWrite, expand_return_value
from pivot.spec import OutKind, StageSpec, extract_spec
from tests.fixtures import defs_stages

REPORT = extract_spec(defs_stages.report, name="report")
SINGLE = extract_spec(defs_stages.single_text, name="single")
SINGLE_LIST = extract_spec(defs_stages.single_list_out, name="single_list")
SINGLE_TUPLE = extract_spec(defs_stages.single_tuple_out, name="single_tuple")
DIRECTORY = extract_spec(defs_stages.single_directory, name="directory")
NOTHING = extract_spec(defs_stages.no_outputs, name="nothing")


def _valid_report(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "summary": {"rows": 2},
        "pages": ["page 1", "page 2"],
        "pair": ("left", "right"),
        "tasks": {"task_a.json": {"accuracy": 0.95}, "sub/task_b.json": {"accuracy": 0.87}},
    }
    value.update(changes)
    return value


def _paths(writes: tuple[OutputWrite, ...]) -> list[str]:
    return [write.path for write in writes]


def _error(spec: StageSpec, value: Any) -> str:
    with pytest.raises(OutputValidationError) as info:
        expand_return_value(spec, value)
    message = str(info.value)
    assert f"stage '{spec.name}' returned an invalid value" in message
    assert message.endswith("Nothing was written")
    return message


# --- valid values -----------------------------------------------------------------------------


def test_typed_dict_value_expands_to_one_write_per_file() -> None:
    writes = expand_return_value(REPORT, _valid_report())
    assert _paths(writes) == [
        "report/summary.json",
        "report/p1.txt",
        "report/p2.txt",
        "report/l.txt",
        "report/r.txt",
        "report/tasks/task_a.json",
        "report/tasks/sub/task_b.json",
    ]
    values = [write.value for write in writes]
    assert values == [
        {"rows": 2},
        "page 1",
        "page 2",
        "left",
        "right",
        {"accuracy": 0.95},
        {"accuracy": 0.87},
    ]
    assert [write.out.name for write in writes] == [
        "summary",
        "pages",
        "pages",
        "pair",
        "pair",
        "tasks",
        "tasks",
    ]


def test_single_output_value_is_not_wrapped() -> None:
    (write,) = expand_return_value(SINGLE, "text")
    assert (write.path, write.value, write.out.name) == ("out.txt", "text", "return")


def test_single_output_may_return_a_dict_value() -> None:
    metric = extract_spec(defs_stages.single_metric, name="metric")
    (write,) = expand_return_value(metric, {"accuracy": 1.0})
    assert write.value == {"accuracy": 1.0}


def test_multi_path_accepts_list_or_tuple() -> None:
    assert _paths(expand_return_value(SINGLE_LIST, ("a", "b"))) == ["a.txt", "b.txt"]
    assert _paths(expand_return_value(SINGLE_TUPLE, ["x", "y"])) == ["x.txt", "y.txt"]


def test_no_outputs_means_no_writes() -> None:
    assert expand_return_value(NOTHING, None) == ()


def test_directory_keys_are_normalised() -> None:
    writes = expand_return_value(DIRECTORY, {"./a.txt": "a", "sub\\b.txt": "b", "c/./d.txt": "d"})
    assert _paths(writes) == ["reports/a.txt", "reports/sub/b.txt", "reports/c/d.txt"]
    assert all(write.out.kind is OutKind.DIRECTORY for write in writes)


# --- invalid values ---------------------------------------------------------------------------


def test_missing_key() -> None:
    value = _valid_report()
    del value["pages"]
    message = _error(REPORT, value)
    assert "missing key(s) ['pages']" in message
    assert "return every field of the TypedDict" in message


def test_extra_key() -> None:
    message = _error(REPORT, _valid_report(extra=1))
    assert "unexpected key(s) ['extra']" in message
    assert "'summary'" in message


def test_typed_dict_stage_must_return_a_dict() -> None:
    message = _error(REPORT, ["not", "a", "dict"])
    assert "expected a dict with keys" in message
    assert "list" in message


@pytest.mark.parametrize(
    ("spec", "value", "words"),
    [
        (SINGLE_LIST, ["only one"], "declares 2 paths but got 1 values"),
        (SINGLE_LIST, ["a", "b", "c"], "declares 2 paths but got 3 values"),
        (SINGLE_TUPLE, "xy", "needs a list, got str"),
        (SINGLE_TUPLE, {"x": 1, "y": 2}, "needs a list, got dict"),
    ],
)
def test_wrong_multi_path_values(spec: StageSpec, value: Any, words: str) -> None:
    message = _error(spec, value)
    assert "output 'return'" in message
    assert words in message


def test_wrong_list_length_inside_a_typed_dict() -> None:
    message = _error(REPORT, _valid_report(pair=("only left",)))
    assert "output 'pair' declares 2 paths but got 1 values" in message


@pytest.mark.parametrize(
    ("tasks", "words"),
    [
        ({}, "got an empty dict; return at least one file"),
        (["task_a.json"], "needs a dict of {file name: value}, got list"),
        ({"task_a": {}}, "DirectoryOut key must have extension: 'task_a'"),
        ({"sub/": {}}, "empty name part"),
        ({"a//b.json": {}}, "empty name part"),
        ({"": {}}, "is empty or not a string"),
        ({"/": {}}, "is empty or not a string"),
        ({3: {}}, "is empty or not a string"),
        ({"/etc/passwd.json": {}}, "is an absolute path"),
        ({"C:/x.json": {}}, "is an absolute path"),
        ({"a\x00b.json": {}}, "contains a NUL character"),
        ({"../escape.json": {}}, "contains '..'"),
        ({"a/../../escape.json": {}}, "contains '..'"),
        ({"a\\..\\escape.json": {}}, "contains '..'"),
        ({"a.json": 1, "./a.json": 2}, "'a.json' and './a.json' name the same file"),
        ({"x/a.json": 1, "x\\a.json": 2}, "name the same file"),
        ({"Task.json": 1, "task.json": 2}, "differ only in case"),
    ],
)
def test_invalid_directory_values(tasks: Any, words: str) -> None:
    message = _error(REPORT, _valid_report(tasks=tasks))
    assert "DirectoryOut" in message
    assert "report/tasks/" in message or "keys" in message
    assert words in message


def test_every_key_is_checked_before_anything_is_returned() -> None:
    """A bad value late in the dict fails the whole call: the caller writes nothing."""
    tasks = {f"task_{index}.json": index for index in range(50)}
    tasks["bad"] = 0
    _error(REPORT, _valid_report(tasks=tasks))


def test_missing_keys_are_reported_even_if_other_values_are_valid() -> None:
    message = _error(REPORT, {"summary": {}})
    assert "missing key(s) ['pages', 'pair', 'tasks']" in message


# --- invariants -------------------------------------------------------------------------------

_segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=6)
_key = st.builds(
    lambda parts, name, ext: "/".join([*parts, f"{name}.{ext}"]),
    st.lists(_segment, max_size=2),
    _segment,
    st.sampled_from(["json", "txt", "csv"]),
)


@given(keys=st.lists(_key, min_size=1, max_size=8, unique_by=str.casefold))
def test_valid_directory_keys_write_inside_the_directory(keys: list[str]) -> None:
    writes = expand_return_value(DIRECTORY, {key: key for key in keys})
    assert len(writes) == len(keys)
    for write in writes:
        assert write.path.startswith("reports/")
        assert posixpath.normpath(write.path) == write.path
        assert write.path == "reports/" + write.value


@given(key=st.text(max_size=12))
def test_any_key_is_accepted_only_inside_the_directory(key: str) -> None:
    try:
        (write,) = expand_return_value(DIRECTORY, {key: "x"})
    except OutputValidationError:
        return
    normal = posixpath.normpath(write.path)
    assert normal.startswith("reports/")
    assert ".." not in normal.split("/")
    assert "\x00" not in normal
    assert posixpath.splitext(normal)[1]
