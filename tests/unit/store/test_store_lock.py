"""Lock files are deterministic JSON that round-trips, and a corrupt one says how to fix it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pivot.errors import LockFileError, PivotError
from pivot.store import hashing
from pivot.store.lock import (
    SCHEMA_VERSION,
    DepEntry,
    LockEntry,
    OutEntry,
    decode_lock,
    encode_lock,
    lock_path,
    read_lock,
    write_lock,
)

H1 = hashing.hash_bytes(b"1")
H2 = hashing.hash_bytes(b"2")
H3 = hashing.hash_bytes(b"3")


def _entry() -> LockEntry:
    return LockEntry(
        stage="train@v2",
        code={"train": H2, "helpers.clean": H1},
        params={"lr": 0.01, "epochs": 3, "layers": [64, 32], "name": "résumé"},
        deps=(DepEntry("data/b.csv", H2), DepEntry("data/a.csv", H1)),
        outs=(
            OutEntry("model.pkl", H3, cache=True, is_directory=False),
            OutEntry("metrics.json", H1, cache=False, is_directory=False),
            OutEntry("shards", H2, cache=True, is_directory=True),
        ),
    )


def test_encode_lock_is_sorted_indented_json_with_trailing_newline() -> None:
    text = encode_lock(_entry())
    assert text.endswith("}\n")
    assert not text.endswith("\n\n")
    document = json.loads(text)
    assert text == json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert document["schema_version"] == SCHEMA_VERSION == 1
    assert document["stage"] == "train@v2"
    assert [dep["path"] for dep in document["deps"]] == ["data/a.csv", "data/b.csv"]
    assert [out["path"] for out in document["outs"]] == ["metrics.json", "model.pkl", "shards"]
    assert document["outs"][2] == {
        "path": "shards",
        "hash": H2,
        "cache": True,
        "is_directory": True,
    }
    assert '"name": "résumé"' in text


def test_entry_order_does_not_change_the_text() -> None:
    entry = _entry()
    shuffled = LockEntry(
        stage=entry.stage,
        code=dict(reversed(list(entry.code.items()))),
        params=dict(reversed(list(entry.params.items()))),
        deps=tuple(reversed(entry.deps)),
        outs=tuple(reversed(entry.outs)),
    )
    assert shuffled == entry
    assert encode_lock(shuffled) == encode_lock(entry)
    assert list(entry.code) == ["helpers.clean", "train"]


def test_entries_are_frozen() -> None:
    entry = _entry()
    with pytest.raises(AttributeError):
        entry.stage = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        entry.deps[0].hash = H3  # type: ignore[misc]


def test_lock_path(tmp_path: Path) -> None:
    assert lock_path(tmp_path, "train@v2") == tmp_path / "stages" / "train@v2.lock"
    for bad in ["", ".", "..", "a/b", "a\\b", "nul\0"]:
        with pytest.raises(LockFileError, match="rename the stage"):
            lock_path(tmp_path, bad)


def test_write_then_read(tmp_path: Path) -> None:
    path = lock_path(tmp_path / ".pivot", "train@v2")
    write_lock(path, _entry())
    assert read_lock(path) == _entry()
    assert os.listdir(path.parent) == ["train@v2.lock"]
    assert path.read_text(encoding="utf-8") == encode_lock(_entry())


def test_read_missing_lock_is_none(tmp_path: Path) -> None:
    assert read_lock(tmp_path / "stages" / "never.lock") is None


_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
)
_json_values = st.recursive(
    _json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
_hashes = st.binary(max_size=8).map(hashing.hash_bytes)
_paths = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
    min_size=1,
    max_size=12,
)
_stage_names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\\\0"),
    min_size=1,
    max_size=12,
).filter(lambda name: name not in (".", ".."))

_entries = st.builds(
    LockEntry,
    stage=_stage_names,
    code=st.dictionaries(st.text(max_size=10), _hashes, max_size=4),
    params=st.dictionaries(st.text(max_size=8), _json_values, max_size=4),
    deps=st.lists(st.builds(DepEntry, path=_paths, hash=_hashes), max_size=4).map(tuple),
    outs=st.lists(
        st.builds(
            OutEntry, path=_paths, hash=_hashes, cache=st.booleans(), is_directory=st.booleans()
        ),
        max_size=4,
    ).map(tuple),
)


@settings(max_examples=150, deadline=None)
@given(entry=_entries)
def test_encode_decode_round_trip(entry: LockEntry) -> None:
    text = encode_lock(entry)
    decoded = decode_lock(text, Path("x.lock"))
    assert decoded == entry
    assert encode_lock(decoded) == text


_any_params = st.dictionaries(
    st.text(max_size=8),
    st.recursive(
        _json_scalars | st.floats() | st.tuples(st.integers()) | st.booleans().map(str),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=5), children, max_size=3)
            | st.dictionaries(st.integers(), children, max_size=2)
        ),
        max_leaves=8,
    ),
    max_size=4,
)


@settings(max_examples=200, deadline=None)
@given(entry=_entries, params=_any_params, observed=st.lists(_paths, max_size=3))
def test_encode_lock_is_byte_identical_to_the_stdlib_indented_json(
    entry: LockEntry, params: dict[str, Any], observed: list[str]
) -> None:
    """The lock writer's own indented JSON (faster than the stdlib's pure-Python one) writes
    exactly what `json.dumps(sort_keys=True, indent=2, ensure_ascii=False)` would, for any
    params value, NaN and non-string keys included, and an `observed` list only when there
    is one."""
    entry = LockEntry(entry.stage, entry.code, params, entry.deps, entry.outs, tuple(observed))
    document = {
        "schema_version": SCHEMA_VERSION,
        "stage": entry.stage,
        "code": dict(entry.code),
        "params": params,
        "deps": [{"path": d.path, "hash": d.hash} for d in entry.deps],
        "outs": [
            {"path": o.path, "hash": o.hash, "cache": o.cache, "is_directory": o.is_directory}
            for o in entry.outs
        ],
    }
    if entry.observed:
        document["observed"] = list(entry.observed)
    expected = json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert encode_lock(entry) == expected


@settings(max_examples=30, deadline=None)
@given(entry=_entries)
def test_write_read_round_trip(tmp_path_factory: pytest.TempPathFactory, entry: LockEntry) -> None:
    path = lock_path(tmp_path_factory.mktemp("lock"), entry.stage)
    write_lock(path, entry)
    assert read_lock(path) == entry


def _document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(encode_lock(_entry()))
    for key, value in changes.items():
        if value is _DELETE:
            del document[key]
        else:
            document[key] = value
    return document


_DELETE = object()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "not a JSON object"),
        (json.dumps(_document(stage=_DELETE)), "'stage' is missing"),
        (json.dumps(_document(deps=_DELETE)), "'deps' is missing"),
        (json.dumps(_document(outs={"a": 1})), "'outs' should be a list"),
        (json.dumps(_document(code={"f": 3})), "'code' entry 'f' is not a string"),
        (json.dumps(_document(deps=[{"path": "a"}])), "'hash' is missing"),
        (json.dumps(_document(deps=[{"path": "a", "hash": "abc"}])), "not a content hash"),
        (json.dumps(_document(deps=["a"])), "'deps' item is not an object"),
        (
            json.dumps(
                _document(outs=[{"path": "m", "hash": H1, "cache": "yes", "is_directory": False}])
            ),
            "'cache' should be a bool",
        ),
        (
            json.dumps(_document(schema_version=2)),
            "schema version 2, but this Pivot reads version 1",
        ),
        (json.dumps(_document(schema_version=_DELETE)), "schema version None"),
    ],
)
def test_corrupt_lock_raises_a_clear_error(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "stages" / "train.lock"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LockFileError) as caught:
        read_lock(path)
    message = str(caught.value)
    assert problem in message
    assert str(path) in message
    assert "delete it, or run `pivot repro` to rewrite it" in message
    assert isinstance(caught.value, PivotError)


def test_non_utf8_or_unreadable_lock_raises(tmp_path: Path) -> None:
    path = tmp_path / "bad.lock"
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(LockFileError, match="not UTF-8"):
        read_lock(path)
    directory = tmp_path / "dir.lock"
    directory.mkdir()
    with pytest.raises(LockFileError, match="cannot be read"):
        read_lock(directory)
