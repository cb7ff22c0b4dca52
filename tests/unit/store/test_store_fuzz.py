"""Hypothesis fuzzing of what Pivot reads from files others can edit: lock files, directory
manifests, the project config. Whatever the input, the answer is a value or a clear PivotError
(never another exception), and a lock that is accepted names only safe project paths."""

from __future__ import annotations

import contextlib
import json
import posixpath
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pivot import plan, project
from pivot.errors import CacheCorruptError, ConfigError, LockFileError
from pivot.store import hashing, lock
from pivot.store.cache import Cache

FUZZ = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

HASH = "a" * 64
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
path_parts = st.sampled_from(["..", ".", "", ".pivot", "data", "out", "a b", "é", "x.txt", "~"])
hostile_paths = st.lists(path_parts, min_size=1, max_size=4).map("/".join) | st.text(
    alphabet=string.printable, max_size=12
)


def _entry(path: str, *, digest: str = HASH, is_directory: bool = False) -> dict[str, Any]:
    return {"path": path, "hash": digest, "cache": True, "is_directory": is_directory}


def _document(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "schema_version": lock.SCHEMA_VERSION,
        "stage": "s",
        "code": {},
        "params": {},
        "deps": [],
        "outs": [],
    }
    document.update(overrides)
    return document


@FUZZ
@given(st.text(max_size=300))
def test_any_text_is_a_lock_entry_or_a_lock_file_error(text: str) -> None:
    with contextlib.suppress(LockFileError):
        lock.decode_lock(text, Path("fuzz.lock"))


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["schema_version", "stage", "code", "params", "deps", "outs", "extra"]),
        json_values,
    )
)
def test_any_json_document_is_a_lock_entry_or_a_lock_file_error(changes: dict[str, Any]) -> None:
    with contextlib.suppress(LockFileError):
        lock.decode_lock(json.dumps(_document(**changes)), Path("fuzz.lock"))


@FUZZ
@given(
    st.lists(
        st.dictionaries(st.sampled_from(["path", "hash", "cache", "is_directory"]), json_values)
    )
)
def test_any_entry_items_are_a_lock_entry_or_a_lock_file_error(items: list[dict[str, Any]]) -> None:
    for field in ("deps", "outs"):
        with contextlib.suppress(LockFileError):
            lock.decode_lock(json.dumps(_document(**{field: items})), Path("fuzz.lock"))


@pytest.fixture
def stage_spec(tmp_path: Path) -> Any:
    """A real stage spec of a small project (its lock path is under tmp_path)."""
    from pivot import api

    root = tmp_path / "proj"
    root.mkdir()
    api.init(root)
    (root / "raw.txt").write_text("raw")
    (root / "pipeline.py").write_text(
        "from typing import Annotated\n"
        "from pivot import loaders\n"
        "from pivot.outputs import Dep, DirectoryOut\n"
        "from pivot.pipeline import Pipeline\n\n"
        "def make(raw: Annotated[str, Dep('raw.txt', loaders.Text())]) -> "
        "Annotated[dict[str, str], DirectoryOut('out/', loaders.Text())]:\n"
        "    return {}\n\n"
        "pipeline = Pipeline('fuzz')\n"
        "pipeline.register(make)\n"
    )
    with api.open_context(root) as ctx:
        return ctx, ctx.graph.stages["make"]


@FUZZ
@given(hostile_paths, st.booleans(), st.sampled_from(["deps", "outs"]))
def test_an_accepted_lock_names_only_safe_project_paths(
    stage_spec: Any, path: str, is_directory: bool, field: str
) -> None:
    ctx, spec = stage_spec
    proj = ctx.project
    item = _entry(path, is_directory=is_directory)
    if field == "deps":
        item = {"path": path, "hash": HASH}
    proj.lock_file(spec.name, spec.state_dir).write_text(json.dumps(_document(**{field: [item]})))
    try:
        entry = plan.read_previous(ctx, spec)
    except LockFileError:
        return
    assert entry is not None
    for recorded in [dep.path for dep in entry.deps] + [out.path for out in entry.outs]:
        assert not recorded.startswith("/") and not posixpath.isabs(recorded)
        assert ".." not in recorded.split("/") and recorded.split("/")[0] != ".pivot"
        assert posixpath.normpath(recorded) + ("/" if recorded.endswith("/") else "") == recorded


@FUZZ
@given(st.binary(max_size=200) | json_values.map(lambda value: json.dumps(value).encode()))
def test_any_manifest_bytes_are_a_manifest_or_a_cache_error(tmp_path: Path, data: bytes) -> None:
    cache = Cache(tmp_path / "cache")
    digest = cache.add_bytes(data)
    try:
        manifest = cache.load_manifest(digest)
    except CacheCorruptError:
        return
    for relative, _digest in manifest:
        assert ".." not in relative.split("/") and not relative.startswith("/")


@FUZZ
@given(st.text(max_size=200) | json_values.map(json.dumps))
def test_any_config_text_is_a_config_or_a_config_error(tmp_path: Path, text: str) -> None:
    root = tmp_path / "cfg"
    (root / ".pivot").mkdir(parents=True, exist_ok=True)
    (root / ".pivot" / "config.yaml").write_text(text)
    try:
        found = project.load_project(root)
    except ConfigError:
        return
    assert found.config.jobs is None or found.config.jobs >= 1


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["cache", "jobs", "fingerprint", "remotes", "default_remote", "bogus"]),
        json_values | st.dictionaries(st.sampled_from(["link", "packages", "url"]), json_values),
    )
)
def test_any_config_mapping_is_a_config_or_a_config_error(
    tmp_path: Path, settings_: dict[str, Any]
) -> None:
    import yaml

    root = tmp_path / "cfgmap"
    (root / ".pivot").mkdir(parents=True, exist_ok=True)
    (root / ".pivot" / "config.yaml").write_text(yaml.safe_dump(settings_))
    with contextlib.suppress(ConfigError):
        project.load_project(root)


def test_manifest_hash_of_fuzzed_bytes_is_checked() -> None:
    """The fuzzed blobs above are stored under their true hash; a manifest under another name
    is refused as corrupt (set aside), never parsed."""
    data = hashing.manifest_to_bytes(hashing.DirectoryManifest(()))
    assert hashing.manifest_from_bytes(data) == hashing.DirectoryManifest(())
