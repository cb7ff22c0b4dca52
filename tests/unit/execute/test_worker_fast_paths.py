"""The worker's cheaper paths give what the plain ones gave: whole-file reads, small outputs
stored in the cache, paths an observed run opens (however they are spelled), a profiler reused
from one observation to the next, and a module imported inside an observed run still seen by
its own reads."""

from __future__ import annotations

import importlib
import itertools
import os
import stat
from pathlib import Path

import pytest

from pivot import fs
from pivot.fingerprint import observe, observing
from pivot.store import cache as cache_module
from pivot.store.cache import Cache
from pivot.store.hashing import hash_bytes
from tests.unit.fingerprint.conftest import imported_from, write_files


@pytest.mark.parametrize("size", [0, 1, 4096, (1 << 20) + 3])
def test_read_bytes_is_the_whole_file(tmp_path: Path, size: int) -> None:
    target = tmp_path / "f.bin"
    data = os.urandom(size)
    target.write_bytes(data)

    assert fs.read_bytes(target) == data == fs.read_bytes(str(target))


def test_read_bytes_reads_a_file_whose_size_is_not_known_ahead() -> None:
    assert fs.read_bytes("/proc/self/status").startswith(b"Name:")


def test_read_bytes_of_a_directory_or_a_missing_file_raises_as_path_read_bytes(
    tmp_path: Path,
) -> None:
    with pytest.raises(IsADirectoryError):
        fs.read_bytes(tmp_path)
    with pytest.raises(FileNotFoundError):
        fs.read_bytes(tmp_path / "missing")


@pytest.mark.parametrize("size", [0, 10, cache_module._READ_WHOLE_BELOW - 1])
def test_a_small_output_is_stored_as_read_with_the_blob_mode(tmp_path: Path, size: int) -> None:
    cache = Cache(tmp_path / "cache")
    output = tmp_path / "out.bin"
    data = os.urandom(size)
    output.write_bytes(data)

    digest = cache.store_file(str(output))

    blob = cache.blob_path(digest)
    assert digest == hash_bytes(data)
    assert blob.read_bytes() == data
    assert stat.S_IMODE(os.stat(blob).st_mode) == 0o444
    assert [name for name in os.listdir(blob.parent) if name != blob.name] == []  # no temp left


def test_an_output_at_the_read_limit_is_streamed_into_the_cache(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    output = tmp_path / "big.bin"
    data = os.urandom(cache_module._READ_WHOLE_BELOW)
    output.write_bytes(data)

    assert cache.blob_path(cache.store_file(output)).read_bytes() == data


def test_an_absolute_path_taken_as_it_is_is_one_abspath_leaves_alone() -> None:
    pieces = ["/", ".", "a", "..", "//"]
    for size in range(1, 7):
        for parts in itertools.product(pieces, repeat=size):
            path = "".join(parts)
            if observe._normal(path):
                assert os.path.abspath(path) == path, path


def test_paths_opened_in_an_observed_run_are_recorded_normalised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "in.txt").write_text("x")
    monkeypatch.chdir(tmp_path / "data")
    with observing(str(tmp_path)) as seen:
        for spelling in (
            f"{tmp_path}/data/../data/in.txt",
            f"{tmp_path}//data/./in.txt",
            "in.txt",
            os.fsencode(f"{tmp_path}/data/in.txt"),
        ):
            with open(spelling, "rb") as handle:
                handle.read()
        with open(f"{tmp_path}/data/../out.txt", "w") as handle:
            handle.write("y")
        outside = os.open(f"{tmp_path}/../{tmp_path.name}-elsewhere.txt", os.O_CREAT | os.O_WRONLY)
        os.close(outside)

    assert seen[0].reads == ("data/in.txt",)
    assert seen[0].writes == ("out.txt",)


def test_observations_one_after_another_each_see_their_own_code(tmp_path: Path) -> None:
    def first() -> int:
        return 1

    def second() -> int:
        return 2

    seen = []
    for function in (first, second, first):
        with observing(str(tmp_path)) as observed:
            function()
        seen.append(observed[0].code)

    assert seen[0] == seen[2] != ()  # the same code seen again by a later observation
    assert seen[1] != ()


def test_a_module_imported_by_an_observed_run_has_its_reads_attributed_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_files(
        tmp_path,
        {
            "data/conf.txt": "3",
            "fastlate/__init__.py": "",
            "fastlate/mod.py": """
                with open("data/conf.txt") as handle:
                    N = int(handle.read())
            """,
        },
    )
    monkeypatch.chdir(tmp_path)
    with imported_from(tmp_path), observing(str(tmp_path)) as seen:
        module = importlib.import_module("fastlate.mod")

    assert module.N == 3
    assert seen[0].reads == ()  # an import's read belongs to the module, not the run
    assert module.__file__ is not None
    assert observe.import_reads(module.__file__) == (str(tmp_path / "data/conf.txt"),)
