"""Flattening, metric file parsing and diffs (pivot.results.values)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pivot.results.values import (
    change_of,
    diff_tables,
    flatten,
    format_value,
    parse_metric_file,
)


def test_flatten_nested_mappings_and_lists() -> None:
    assert flatten({"a": {"b": 1, "c": [2, {"d": 3}]}, "e": "x"}) == {
        "a.b": 1,
        "a.c.0": 2,
        "a.c.1.d": 3,
        "e": "x",
    }


keys = st.text(alphabet="abcxyz", min_size=1, max_size=4)
leaves = st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=3), st.booleans())
documents = st.recursive(
    leaves, lambda inner: st.dictionaries(keys, inner, max_size=4), max_leaves=12
)


@given(st.dictionaries(keys, documents, min_size=1, max_size=4))
def test_flatten_keeps_every_leaf(document: dict[str, Any]) -> None:
    def leaves_of(value: Any) -> list[Any]:
        if isinstance(value, dict):
            return [leaf for item in value.values() for leaf in leaves_of(item)]
        return [value]

    flat = flatten(document)
    assert sorted(map(repr, flat.values())) == sorted(map(repr, leaves_of(document)))


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        ("m.json", json.dumps({"acc": 0.9, "f1": {"a": 1}}), {"acc": 0.9, "f1.a": 1}),
        ("m.yaml", "acc: 0.9\nloss: 2\n", {"acc": 0.9, "loss": 2}),
        ("m.csv", "acc,loss\n0.9,2\n", {"acc": 0.9, "loss": 2}),
        (
            "m.tsv",
            "acc\tname\n0.5\tx\n0.7\ty\n",
            {"0.acc": 0.5, "0.name": "x", "1.acc": 0.7, "1.name": "y"},
        ),
    ],
)
def test_parse_metric_file_by_extension(path: str, text: str, expected: dict[str, Any]) -> None:
    assert parse_metric_file(path, text.encode()) == expected


def test_parse_metric_file_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        parse_metric_file("m.json", b"{not json")


def test_change_only_between_numbers() -> None:
    assert change_of(1, 3) == 2
    assert change_of(0.1, 0.3) == pytest.approx(0.2)
    assert change_of(None, 3) is None and change_of("a", 1) is None and change_of(True, 2) is None


def test_diff_tables_lists_changed_added_and_removed_keys() -> None:
    old = {"m.json": {"acc": 0.5, "same": 1, "gone": 2}, "old.json": None}
    new = {"m.json": {"acc": 0.75, "same": 1, "new": 3}, "old.json": None}
    changes = diff_tables(old, new, include_unchanged=False)
    assert [(c.key, c.old, c.new, c.change) for c in changes] == [
        ("acc", 0.5, 0.75, 0.25),
        ("gone", 2, None, None),
        ("new", None, 3, None),
    ]
    assert len(diff_tables(old, new, include_unchanged=True)) == 4


def test_a_bool_that_became_an_int_is_a_change() -> None:
    assert diff_tables({"s": {"k": True}}, {"s": {"k": 1}}, include_unchanged=False)


def test_format_value() -> None:
    assert format_value(None) == "—"
    assert format_value(0.123456789, 3) == "0.123"
    assert format_value(0.1, signed=True) == "+0.1" and format_value(-2, signed=True) == "-2"
    assert format_value(False) == "false" and format_value([1, 2]) == "[1, 2]"
