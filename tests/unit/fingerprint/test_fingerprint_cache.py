"""Cached manifests: used while every source file is unchanged, recomputed as soon as one changes."""

from __future__ import annotations

import dataclasses
import os
import sys
import textwrap
import time

import pytest

from pivot.fingerprint import SourceStats, StageRequest, fingerprint_stage, fingerprint_stages
from pivot.fingerprint.cache import cache_key
from tests.unit.fingerprint.conftest import DictCache, rewrite, settled

pytestmark = pytest.mark.usefixtures("no_bytecode")

PROJECT = {
    "pipeline.py": """
        import config
        from helpers import scale


        def stage(x):
            return scale(x) + config.OFFSET


        def other(x):
            return x
    """,
    "helpers.py": """
        from config import FACTOR


        def scale(x):
            return x * FACTOR
    """,
    "config/__init__.py": """
        from config.base import BASE

        OFFSET = 1
        FACTOR = BASE * 2
    """,
    "config/base.py": """
        BASE = 10
    """,
}


@pytest.fixture
def project(projects):
    directory = projects.new_directory()
    projects.write(directory, PROJECT)
    return directory


def test_a_cached_manifest_is_used_while_sources_are_unchanged(projects, project):
    cache = DictCache()
    first = projects.fingerprint_in(project, cache=cache, stats=settled())
    second = projects.fingerprint_in(project, cache=cache, stats=settled())

    assert cache.puts == 1
    assert second == first
    assert {os.path.basename(p) for p, _, _ in first.sources} == {
        "pipeline.py",
        "helpers.py",
        "__init__.py",
        "base.py",
    }


@pytest.mark.parametrize(
    ("relative", "old", "new", "entry"),
    [
        ("pipeline.py", "+ config.OFFSET", "- config.OFFSET", "stage:pipeline.stage"),
        ("helpers.py", "x * FACTOR", "x * FACTOR * 2", "func:helpers.scale"),
        ("config/__init__.py", "OFFSET = 1", "OFFSET = 2", "const:config.OFFSET"),
        ("config/base.py", "BASE = 10", "BASE = 11", "const:helpers.FACTOR"),
    ],
    ids=[
        "stage file",
        "helper file",
        "package init with data only",
        "module a constant is computed from",
    ],
)
def test_any_source_file_changing_invalidates_the_cached_manifest(
    projects, project, relative, old, new, entry
):
    cache = DictCache()
    before = projects.fingerprint_in(project, cache=cache, stats=settled())
    rewrite(project, relative, old, new)

    after = projects.fingerprint_in(project, cache=cache, stats=settled())

    assert projects.changed(before, after) == {entry}
    assert cache.puts == 2


def test_a_manifest_from_files_written_just_before_loading_is_not_cached(projects, project):
    cache = DictCache()
    racy = SourceStats(loaded_ns=time.time_ns())

    projects.fingerprint_in(project, cache=cache, stats=racy)

    assert cache.puts == 0


def test_a_different_extra_value_is_another_cache_entry(projects, project):
    cache = DictCache()
    text = textwrap.dedent(PROJECT["pipeline.py"]) + "\nSMALL = (1,)\nLARGE = (2,)\n"
    projects.write(project, {"pipeline.py": text})

    small = projects.fingerprint_in(
        project, cache=cache, stats=settled(), extra={"e": "pipeline:SMALL"}
    )
    large = projects.fingerprint_in(
        project, cache=cache, stats=settled(), extra={"e": "pipeline:LARGE"}
    )

    assert small.manifest["e"] != large.manifest["e"]
    assert cache.puts == 2


def test_a_damaged_cache_value_is_recomputed(projects, project):
    cache = DictCache()
    first = projects.fingerprint_in(project, cache=cache, stats=settled())
    cache.data = {key: b"garbage" for key in cache.data}

    assert projects.fingerprint_in(project, cache=cache, stats=settled()) == first


def test_a_batch_gives_what_single_calls_give_and_shares_stats(projects, project):
    sys.path.insert(0, str(project))
    try:
        import pipeline  # type: ignore[import-not-found]

        stats = settled()
        requests = [StageRequest("a", pipeline.stage), StageRequest("b", pipeline.other)]
        batch = fingerprint_stages(requests, stats=stats)
        single = fingerprint_stage(pipeline.stage, stage_name="a")
    finally:
        sys.path.remove(str(project))
        for name in ("pipeline", "helpers", "config", "config.base"):
            sys.modules.pop(name, None)

    assert batch["a"] == single
    assert set(batch["b"].manifest) == {"stage:pipeline.other"}


def test_a_copy_at_another_path_never_gets_the_original_manifest(projects, project):
    cache = DictCache()
    original = projects.fingerprint_in(project, cache=cache, stats=settled())
    copy = projects.new_directory()
    projects.write(copy, projects.edit(PROJECT, "helpers.py", "x * FACTOR", "x * FACTOR + 1"))

    copied = projects.fingerprint_in(copy, cache=cache, stats=settled())

    assert projects.changed(original, copied) == {"func:helpers.scale"}


@dataclasses.dataclass(frozen=True)
class _Setting:
    value: object


def _stage_for_keys() -> None:
    return None


def test_the_cache_key_memo_reuses_texts_only_for_identical_plain_values() -> None:
    """A batch reuses the text of a simple loader-like value; values that compare equal but
    differ (1, True, 1.0) never share one, and a memo never changes a key."""
    memo: dict[object, str] = {}
    values = [_Setting(1), _Setting(True), _Setting(1.0), _Setting("1"), _Setting(1)]
    with_memo = [
        cache_key(_stage_for_keys, {"loader": v}, include_packages=False, root=None, memo=memo)
        for v in values
    ]
    without = [
        cache_key(_stage_for_keys, {"loader": v}, include_packages=False, root=None) for v in values
    ]
    assert with_memo == without
    assert len(set(with_memo[:4])) == 4
    assert with_memo[4] == with_memo[0]
    assert len(memo) == 3  # 1.0 is not a plain atom: encoded every time, never kept
