"""A run's key never changes between Pivot versions (run caches and remotes keep entries under
it): the same inputs give the same key, whatever their order, and the key is what hashing the
compact, key-sorted JSON of the inputs gives."""

from __future__ import annotations

import base64
import json
from types import MappingProxyType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pivot.store import hashing, run_cache
from pivot.store.lock import OutEntry

_CODE = {"stage:m.train": "cd" * 16, "func:m.f": "ab" * 16}
_PARAMS = {"lr": 0.5, "layers": [3, {"b": 1, "a": "é"}]}
_DEPS = {"data/b.csv": "1" * 64, "data/a.csv": "2" * 64}


def test_a_run_key_is_the_one_earlier_versions_wrote() -> None:
    key = run_cache.run_key("train", _CODE, _PARAMS, _DEPS)
    assert key == "3da39ca0f1440fd4353e03e7a5a85fceb84229b515e2a37934bc85241fe1124d"
    reordered = run_cache.run_key(
        "train",
        MappingProxyType(dict(reversed(_CODE.items()))),
        _PARAMS,
        dict(reversed(_DEPS.items())),
    )
    assert reordered == key


_text = st.text(max_size=8)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_text, children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=100, deadline=None)
@given(
    stage=_text,
    code=st.dictionaries(_text, _text, max_size=4),
    params=st.dictionaries(_text, _json, max_size=4),
    deps=st.dictionaries(_text, _text, max_size=4),
)
def test_a_run_key_hashes_the_sorted_compact_json_of_the_inputs(
    stage: str, code: dict[str, str], params: dict[str, Any], deps: dict[str, str]
) -> None:
    document = {"stage": stage, "code": code, "params": params, "deps": deps, "version": 1}
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert run_cache.run_key(stage, code, params, deps) == hashing.hash_bytes(text.encode())


_outs = st.lists(
    st.builds(
        OutEntry,
        path=st.text(min_size=1, max_size=8),
        hash=st.text(max_size=8),
        cache=st.booleans(),
        is_directory=st.booleans(),
    ),
    max_size=4,
    unique_by=lambda out: out.path,
)


@settings(max_examples=100, deadline=None)
@given(outs=_outs, data=st.data())
def test_a_run_cache_entry_is_the_sorted_compact_json_of_its_outputs(
    outs: list[OutEntry], data: st.DataObject
) -> None:
    """Entries are content-addressed (their hash names them in packs and on remotes): the
    bytes must stay those of the JSON they always were."""
    inline = {out.path: data.draw(st.binary(max_size=8)) for out in outs if not out.cache}
    items = []
    for out in sorted(outs, key=lambda o: o.path):
        item: dict[str, object] = {"path": out.path, "hash": out.hash, "cache": out.cache}
        item["is_directory"] = out.is_directory
        if not out.cache:
            item["content"] = base64.b64encode(inline[out.path]).decode("ascii")
        items.append(item)
    document = {"outs": items, "version": 1}
    expected = json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")
    assert run_cache.outs_to_bytes(outs, inline) == expected
