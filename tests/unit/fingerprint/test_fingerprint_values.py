"""The canonical text of values: equal for equal values, whatever the insertion order of sets."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pivot.fingerprint.values import Unhashable, encode_value

atoms = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=300)
)
hashable = st.recursive(
    atoms, lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=4), max_leaves=20
)
values = st.recursive(
    hashable,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=5), inner, max_size=4)
        | st.sets(hashable, max_size=4)
    ),
    max_leaves=30,
)


def encode(value: object) -> str:
    return encode_value(value, lambda obj: None)


def rebuilt(value: object) -> object:
    """An equal copy whose sets were filled in the reverse order."""
    if isinstance(value, (set, frozenset)):
        return type(value)(rebuilt(v) for v in reversed(list(value)))
    if isinstance(value, list):
        return [rebuilt(v) for v in value]
    if isinstance(value, tuple):
        return tuple(rebuilt(v) for v in value)
    if isinstance(value, dict):
        return {k: rebuilt(v) for k, v in value.items()}
    return value


@given(values)
def test_equal_values_have_equal_text(value):
    assert encode(value) == encode(rebuilt(value))


@given(values, values)
def test_equal_text_means_equal_values_of_equal_types(one, other):
    if encode(one) == encode(other):
        assert one == other
        assert type(one) is type(other)


def test_numbers_of_different_types_differ():
    assert len({encode(1), encode(1.0), encode(True), encode("1")}) == 4


def test_a_cycle_is_written_as_a_reference():
    cyclic: list[object] = [1]
    cyclic.append(cyclic)

    assert encode(cyclic) == "L[i1,cycle(0)]"


def test_an_unhashable_part_is_raised_with_its_path_or_reported():
    value = {"ok": 1, "lock": [threading.Lock()]}
    with pytest.raises(Unhashable) as raised:
        encode(value)
    assert raised.value.where == "['lock'][0]"

    reported: list[Unhashable] = []
    text = encode_value(value, lambda obj: None, reported.append)
    assert "unhashable:_thread.lock" in text
    assert [r.where for r in reported] == ["['lock'][0]"]
