"""A lock file is decoded by a one-pass check of what Pivot writes; anything out of the ordinary
goes to the field-by-field check, so both always agree on what a lock says or why it is bad."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from pivot.errors import LockFileError
from pivot.store import hashing, lock
from pivot.store.lock import decode_lock, encode_lock
from tests.unit.store.test_store_lock import _entries, _entry

H1 = hashing.hash_bytes(b"1")


def _both(document: Any) -> tuple[object, object]:
    """(what the one-pass check says: an entry or None; what the field-by-field check says:
    an entry or its error message)."""
    try:
        checked: object = lock._checked(document, "x.lock")
    except LockFileError as error:
        checked = str(error)
    return lock._well_formed(document), checked


@settings(max_examples=100, deadline=None)
@given(entry=_entries)
def test_a_lock_as_pivot_writes_it_is_read_in_one_pass(entry: lock.LockEntry) -> None:
    document = json.loads(encode_lock(entry))
    fast, checked = _both(document)
    assert fast == checked == entry


def _variant(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(encode_lock(_entry()))
    document.update(changes)
    return document


_OUT = {"path": "m", "hash": H1, "cache": True, "is_directory": False}

ODD = [
    [],
    "text",
    _variant(schema_version=2),
    _variant(schema_version=True),  # == 1 in Python: the field-by-field check decides
    _variant(schema_version=1.0),
    _variant(stage=3),
    _variant(code=[]),
    _variant(code={"f": 3}),
    _variant(params=[]),
    _variant(deps={}),
    _variant(deps=[["a", H1]]),
    _variant(deps=[{"path": 3, "hash": H1}]),
    _variant(deps=[{"path": "a", "hash": H1.upper()}]),
    _variant(deps=[{"path": "a", "hash": H1 + "\n"}]),
    _variant(deps=[{"path": "a", "hash": H1[:-1]}]),
    _variant(deps=[{"path": "a"}]),
    _variant(deps=[{"path": "a", "hash": H1, "extra": 1}]),
    _variant(outs=[{**_OUT, "cache": 1}]),
    _variant(outs=[{**_OUT, "is_directory": None}]),
    _variant(outs=[{key: value for key, value in _OUT.items() if key != "cache"}]),
    _variant(outs=["m"]),
    _variant(observed="f"),
    _variant(observed=["f", 3]),
    _variant(observed=["b", "a", "a"]),
    _variant(extra_field=1),
    {key: value for key, value in _variant().items() if key != "params"},
]


@pytest.mark.parametrize("document", ODD)
def test_an_odd_lock_is_read_as_the_field_by_field_check_reads_it(document: Any) -> None:
    fast, checked = _both(document)
    assert fast is None or fast == checked
    text = json.dumps(document)
    try:
        decoded: object = decode_lock(text, "x.lock")
    except LockFileError as error:
        decoded = str(error)
    assert decoded == checked


def test_a_lock_larger_than_one_read_is_read_whole(tmp_path: Path) -> None:
    entry = _entry()
    big = lock.LockEntry(
        entry.stage, entry.code, {"rows": ["x" * 100] * 2000}, entry.deps, entry.outs
    )
    path = tmp_path / "stages" / "big.lock"
    lock.write_lock(path, big)
    assert path.stat().st_size > 3 * 65536
    assert lock.read_lock(path) == big
    exact = tmp_path / "exact.lock"
    text = encode_lock(entry)
    exact.write_text(text + " " * (65536 - len(text.encode())), encoding="utf-8")
    assert exact.stat().st_size == 65536  # a read that fills the buffer exactly, then the end
    assert lock.read_lock(exact) == entry
