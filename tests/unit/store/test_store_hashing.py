"""Hashes are BLAKE3 hex, deterministic, and the same however a file is read."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pivot.store import hashing
from pivot.store.hashing import DirectoryManifest

EMPTY_BLAKE3 = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"

_segment = st.text(
    alphabet=st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=8,
).filter(lambda part: part not in (".", ".."))
_relative_paths = st.lists(_segment, min_size=1, max_size=3).map("/".join)
_hashes = st.binary(min_size=1, max_size=16).map(hashing.hash_bytes)


def test_hash_bytes_is_blake3_hex() -> None:
    assert hashing.hash_bytes(b"") == EMPTY_BLAKE3
    digest = hashing.hash_bytes(b"abc")
    assert digest == blake3.blake3(b"abc").hexdigest()
    assert hashing.is_valid_hash(digest)
    assert len(digest) == hashing.HASH_LENGTH


@pytest.mark.parametrize(
    "value",
    ["", "A" * 64, "g" * 64, "a" * 63, "a" * 65, None, 12, EMPTY_BLAKE3.upper(), "a" * 64 + "\n"],
)
def test_is_valid_hash_rejects(value: object) -> None:
    assert not hashing.is_valid_hash(value)


@settings(max_examples=50, deadline=None)
@given(data=st.binary(max_size=4096))
def test_hash_is_deterministic_and_file_equals_bytes(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    target = tmp_path_factory.mktemp("hash") / "f"
    target.write_bytes(data)
    assert hashing.hash_bytes(data) == hashing.hash_bytes(bytes(data))
    assert hashing.hash_file(target) == hashing.hash_bytes(data)


@pytest.mark.parametrize("size", [0, 1, 1024 * 1024 - 1, 1024 * 1024, 3 * 1024 * 1024 + 7])
def test_hash_file_streams_any_size(tmp_path: Path, size: int) -> None:
    data = random.Random(size).randbytes(size)
    target = tmp_path / "f"
    target.write_bytes(data)
    assert hashing.hash_file(target) == hashing.hash_bytes(data)


def test_hash_file_large_file_uses_mmap_path_with_same_result(tmp_path: Path) -> None:
    size = hashing.MMAP_THRESHOLD + 12345
    target = tmp_path / "sparse.bin"
    with open(target, "wb") as handle:  # sparse: cheap to create, reads as zeros
        handle.truncate(size - 3)
        handle.seek(size - 3)
        handle.write(b"end")
    expected = blake3.blake3()
    chunk = bytes(1024 * 1024)
    remaining = size - 3
    while remaining:
        step = min(remaining, len(chunk))
        expected.update(chunk[:step])
        remaining -= step
    expected.update(b"end")
    assert hashing.hash_file(target) == expected.hexdigest()


def test_hash_files_matches_hash_file_in_input_order(tmp_path: Path) -> None:
    paths = []
    for index in range(40):
        path = tmp_path / f"f{index:02d}"
        path.write_bytes(str(index).encode() * index)
        paths.append(path)
    paths.reverse()
    result = hashing.hash_files([*paths, paths[0]], jobs=4)
    assert list(result) == paths
    assert result == {path: hashing.hash_file(path) for path in paths}
    assert hashing.hash_files([]) == {}
    assert hashing.hash_files(paths[:3], jobs=1) == {p: result[p] for p in paths[:3]}


def test_hash_file_missing_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        hashing.hash_file(tmp_path / "nope")


def test_list_files_is_sorted_relative_posix_and_skips_temp_files(tmp_path: Path) -> None:
    (tmp_path / "b" / "c").mkdir(parents=True)
    (tmp_path / "b" / "c" / "deep.txt").write_text("1")
    (tmp_path / "a.txt").write_text("2")
    (tmp_path / "b" / "z.txt").write_text("3")
    (tmp_path / "b" / ".z.txt.0123456789abcdef.tmp").write_text("partial")
    (tmp_path / ".hidden").write_text("4")
    (tmp_path / "empty_dir").mkdir()
    listed = hashing.list_files(tmp_path)
    assert [relative for relative, _path in listed] == [
        ".hidden",
        "a.txt",
        "b/c/deep.txt",
        "b/z.txt",
    ]
    assert all(path == tmp_path / relative for relative, path in listed)


def test_list_files_follows_symlinks_but_not_loops(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "f").write_text("x")
    (root / "sub" / "loop").symlink_to(root, target_is_directory=True)
    (root / "link_f").symlink_to(root / "sub" / "f")
    (root / "broken").symlink_to(tmp_path / "missing")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "g").write_text("y")
    (root / "ext").symlink_to(outside, target_is_directory=True)
    relatives = [relative for relative, _path in hashing.list_files(root)]
    assert relatives == ["ext/g", "link_f", "sub/f"]


def test_manifest_rejects_unsorted_duplicate_and_unsafe_entries() -> None:
    digest = hashing.hash_bytes(b"x")
    with pytest.raises(ValueError, match="sorted"):
        DirectoryManifest((("b", digest), ("a", digest)))
    with pytest.raises(ValueError, match="sorted"):
        DirectoryManifest((("a", digest), ("a", digest)))
    for bad in ["", "/abs", "a/../b", "./a", "a//b", "a/", "nul\0"]:
        with pytest.raises(ValueError, match="relative"):
            DirectoryManifest(((bad, digest),))
    with pytest.raises(ValueError, match="invalid hash"):
        DirectoryManifest((("a", "nothex"),))


def test_manifest_bytes_are_canonical_json() -> None:
    digest = hashing.hash_bytes(b"x")
    manifest = DirectoryManifest.from_mapping({"b/é.txt": digest, "a": digest})
    data = hashing.manifest_to_bytes(manifest)
    assert data == (
        b'{"files":{"a":"' + digest.encode() + b'","b/\\u00e9.txt":"' + digest.encode() + b'"},'
        b'"manifest_version":1}'
    )
    assert hashing.manifest_hash(manifest) == hashing.hash_bytes(data)
    assert len(manifest) == 2
    assert list(manifest) == [("a", digest), ("b/é.txt", digest)]
    assert manifest.as_dict() == {"a": digest, "b/é.txt": digest}


@settings(max_examples=60, deadline=None)
@given(files=st.dictionaries(_relative_paths, _hashes, max_size=12), seed=st.integers())
def test_manifest_is_deterministic_and_round_trips(files: dict[str, str], seed: int) -> None:
    items = list(files.items())
    random.Random(seed).shuffle(items)
    shuffled = DirectoryManifest.from_mapping(dict(items))
    manifest = DirectoryManifest.from_mapping(files)
    assert shuffled == manifest
    assert hashing.manifest_to_bytes(shuffled) == hashing.manifest_to_bytes(manifest)
    assert hashing.manifest_hash(shuffled) == hashing.manifest_hash(manifest)
    assert hashing.manifest_from_bytes(hashing.manifest_to_bytes(manifest)) == manifest


def test_manifest_hash_changes_with_content() -> None:
    one = DirectoryManifest.from_mapping({"a": hashing.hash_bytes(b"1")})
    two = DirectoryManifest.from_mapping({"a": hashing.hash_bytes(b"2")})
    renamed = DirectoryManifest.from_mapping({"b": hashing.hash_bytes(b"1")})
    assert len({hashing.manifest_hash(m) for m in (one, two, renamed)}) == 3


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"files": {}}',
        b'{"files": [], "manifest_version": 1}',
        json.dumps({"files": {"../x": EMPTY_BLAKE3}, "manifest_version": 1}).encode(),
        json.dumps({"files": {"x": "zz"}, "manifest_version": 1}).encode(),
    ],
)
def test_manifest_from_bytes_rejects_garbage(data: bytes) -> None:
    with pytest.raises(ValueError):
        hashing.manifest_from_bytes(data)


def test_hash_file_reads_through_symlink(tmp_path: Path) -> None:
    target = tmp_path / "t"
    target.write_bytes(b"content")
    link = tmp_path / "l"
    os.symlink(target, link)
    assert hashing.hash_file(link) == hashing.hash_bytes(b"content")


@pytest.mark.parametrize(
    "size", [0, 5, hashing._BUFFER_SIZE - 1, hashing._BUFFER_SIZE, 3 * hashing._BUFFER_SIZE + 7]
)
def test_copy_hashing_copies_exactly_and_returns_the_hash_of_the_bytes(
    tmp_path: Path, size: int
) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    (tmp_path / "source").write_bytes(data)

    with open(tmp_path / "copy", "wb") as dest:
        digest = hashing.copy_hashing(tmp_path / "source", dest)

    assert (tmp_path / "copy").read_bytes() == data
    assert digest == hashing.hash_bytes(data) == hashing.hash_file(tmp_path / "source")
