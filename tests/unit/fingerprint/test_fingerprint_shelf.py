"""Stored manifests keep their sources in a row shared by the stages that have the same files:
a manifest is used only with the very sources row it was stored with."""

from __future__ import annotations

import marshal
from pathlib import Path

import pytest

from pivot.fingerprint import Fingerprint, StageRequest, fingerprint_stages
from pivot.fingerprint.cache import Shelf, Stored
from tests.unit.fingerprint.conftest import DictCache, imported_from, resolve, rewrite, settled

pytestmark = pytest.mark.usefixtures("no_bytecode")

PROJECT = {
    "pipeline.py": """
        from helpers import scale


        def first(x):
            return scale(x)


        def second(x):
            return scale(x) + 1
    """,
    "helpers.py": """
        def scale(x):
            return x * 2
    """,
}


def _batch(project: Path, names: list[str], cache: DictCache | None) -> dict[str, Fingerprint]:
    with imported_from(project):
        requests = [StageRequest(name, resolve(f"pipeline:{name}")) for name in names]
        return fingerprint_stages(requests, cache=cache, root=project, stats=settled())


def _sources_rows(cache: DictCache) -> list[str]:
    return [key for key in cache.data if key.startswith("fingerprint-sources/")]


@pytest.fixture
def project(projects):
    directory = projects.new_directory()
    projects.write(directory, PROJECT)
    return directory


def test_stages_with_the_same_files_store_one_sources_row(project):
    cache = DictCache()
    first = _batch(project, ["first", "second"], cache)
    stored = dict(cache.data)

    again = _batch(project, ["first", "second"], cache)

    assert cache.puts == 2
    assert len(_sources_rows(cache)) == 1
    assert again == first
    assert cache.data == stored


def test_a_manifest_whose_sources_row_was_rewritten_since_is_computed_again(project):
    """`second` alone is fingerprinted after an edit of the helper both stages reach: the
    shared sources row now lists the edited file as it is; `first`'s stored manifest, made
    before the edit, must not be validated against it."""
    cache = DictCache()
    before = _batch(project, ["first", "second"], cache)
    rewrite(project, "helpers.py", "x * 2", "x * 3")
    _batch(project, ["second"], cache)

    after = _batch(project, ["first"], cache)["first"]

    assert after.manifest != before["first"].manifest
    assert after == _batch(project, ["first"], None)["first"]
    assert cache.puts == 4
    assert len(_sources_rows(cache)) == 1  # rewritten in place: edits do not pile rows up


def test_a_damaged_sources_row_is_computed_again(project):
    cache = DictCache()
    first = _batch(project, ["first", "second"], cache)
    for key in _sources_rows(cache):
        cache.data[key] = b"garbage"

    assert _batch(project, ["first", "second"], cache) == first
    assert cache.puts == 4


def test_equal_sources_that_marshal_writes_differently_keep_both_manifests():
    """marshal marks objects by their reference counts, so equal sources may be written as
    different bytes: a batch storing two stages whose equal sources are distinct objects must
    not orphan the first one's manifest by rewriting the shared row."""
    source = ("/project/pipeline.py", 1_000, 10)
    first = Stored(
        manifest=(("stage:pipeline.a", "1"),),
        locations=(),
        sources=(source,),
        packages=(),
        warnings=(),
    )
    second = Stored(
        manifest=(("stage:pipeline.b", "2"),),
        locations=(),
        sources=(tuple(list(source)),),  # equal, but another object, referenced once
        packages=(),
        warnings=(),
    )
    assert first.sources == second.sources
    assert marshal.dumps(first.sources) != marshal.dumps(second.sources)
    cache = DictCache()
    shelf = Shelf(cache)
    shelf.write("a", first)
    shelf.write("b", second)

    assert Shelf(cache).read(["a", "b"]) == {"a": first, "b": second}
    assert len(_sources_rows(cache)) == 1
