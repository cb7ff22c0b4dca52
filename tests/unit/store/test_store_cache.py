"""The cache holds read-only blobs that restores can never change, and says so when one is missing."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pivot.errors import CacheCorruptError, StoreError
from pivot.store import hashing
from pivot.store.cache import DEFAULT_LINK_MODES, Cache
from pivot.store.hashing import DirectoryManifest
from pivot.store.state import FileHasher


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / ".pivot" / "cache")


def _add(cache: Cache, path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    digest = hashing.hash_bytes(data)
    cache.add_file(path, digest)
    return digest


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _reflink_supported(directory: Path) -> bool:
    """Probe FICLONE on this filesystem directly (independent of the code under test)."""
    import fcntl

    source, clone = directory / ".probe_source", directory / ".probe_clone"
    source.write_bytes(b"probe")
    try:
        with open(source, "rb") as src, open(clone, "wb") as dst:
            fcntl.ioctl(dst.fileno(), 0x40049409, src.fileno())
        return True
    except OSError:
        return False
    finally:
        source.unlink()
        clone.unlink(missing_ok=True)


def test_blob_path_layout(cache: Cache) -> None:
    digest = hashing.hash_bytes(b"x")
    assert cache.blob_path(digest) == cache.files_dir / digest[:2] / digest[2:]
    assert cache.files_dir.is_absolute()
    with pytest.raises(ValueError, match="not a content hash"):
        cache.blob_path("../../etc/passwd")


def test_unknown_link_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown link modes"):
        Cache(tmp_path, ("reflink", "teleport"))
    with pytest.raises(ValueError, match="unknown link modes"):
        Cache(tmp_path, ())
    assert Cache(tmp_path).link_modes == DEFAULT_LINK_MODES == ("reflink", "copy")


def test_add_file_stores_a_read_only_copy(cache: Cache, tmp_path: Path) -> None:
    workspace = tmp_path / "data.csv"
    digest = _add(cache, workspace, b"a,b\n1,2\n")
    blob = cache.blob_path(digest)
    assert cache.has(digest)
    assert blob.read_bytes() == b"a,b\n1,2\n"
    assert _mode(blob) == 0o444
    assert blob.stat().st_ino != workspace.stat().st_ino
    assert _mode(workspace) & stat.S_IWUSR
    assert os.listdir(blob.parent) == [blob.name]


def test_add_file_never_touches_an_existing_blob(cache: Cache, tmp_path: Path) -> None:
    digest = _add(cache, tmp_path / "a", b"content")
    blob = cache.blob_path(digest)
    before = blob.stat()
    impostor = tmp_path / "b"
    impostor.write_bytes(b"other content")
    cache.add_file(impostor, digest)
    after = blob.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert blob.read_bytes() == b"content"


def test_add_bytes_and_read_bytes(cache: Cache) -> None:
    digest = cache.add_bytes(b"payload")
    assert digest == hashing.hash_bytes(b"payload")
    assert cache.read_bytes(digest) == b"payload"
    assert _mode(cache.blob_path(digest)) == 0o444
    assert cache.add_bytes(b"payload") == digest


def test_add_bytes_replaces_a_blob_that_does_not_hash_right(cache: Cache) -> None:
    digest = cache.add_bytes(b"payload")
    blob = cache.blob_path(digest)
    os.chmod(blob, 0o644)
    blob.write_bytes(b"bit rot")
    assert cache.add_bytes(b"payload") == digest
    assert blob.read_bytes() == b"payload" and _mode(blob) == 0o444


def test_read_bytes_of_missing_blob(cache: Cache) -> None:
    digest = hashing.hash_bytes(b"never stored")
    assert not cache.has(digest)
    with pytest.raises(CacheCorruptError, match=digest):
        cache.read_bytes(digest)


@pytest.mark.parametrize(
    "modes",
    [("reflink", "copy"), ("copy",), ("reflink",), ("hardlink", "copy"), ("symlink", "copy")],
)
def test_restore_file_with_each_link_mode(tmp_path: Path, modes: tuple[str, ...]) -> None:
    cache = Cache(tmp_path / "cache", modes)
    digest = _add(cache, tmp_path / "src.bin", b"restored content")
    dest = tmp_path / "work" / "deep" / "out.bin"
    cache.restore_file(digest, dest)
    assert dest.read_bytes() == b"restored content"
    assert os.listdir(dest.parent) == ["out.bin"]
    blob = cache.blob_path(digest)
    if modes[0] == "hardlink":
        assert dest.stat().st_ino == blob.stat().st_ino
    elif modes[0] == "symlink":
        assert dest.is_symlink()
        assert Path(os.readlink(dest)) == blob
    else:
        assert not dest.is_symlink()
        assert dest.stat().st_ino != blob.stat().st_ino
        dest.write_bytes(b"user edits the workspace file")
    assert _mode(blob) == 0o444
    assert cache.verify(digest)


def test_reflink_unsupported_falls_back_to_copy(tmp_path: Path) -> None:
    if _reflink_supported(tmp_path):
        pytest.skip("this filesystem supports reflinks; the fallback path is not reachable")
    cache = Cache(tmp_path / "cache", ("reflink", "copy"))
    digest = _add(cache, tmp_path / "src", b"x" * 10_000)
    for index in range(3):
        dest = tmp_path / f"out{index}"
        cache.restore_file(digest, dest)
        assert dest.read_bytes() == b"x" * 10_000
    assert sorted(os.listdir(tmp_path)) == ["cache", "out0", "out1", "out2", "src"]


def test_restore_replaces_existing_file_and_directory(cache: Cache, tmp_path: Path) -> None:
    digest = _add(cache, tmp_path / "src", b"new")
    as_file = tmp_path / "as_file"
    as_file.write_bytes(b"old")
    cache.restore_file(digest, as_file)
    assert as_file.read_bytes() == b"new"
    as_dir = tmp_path / "as_dir"
    (as_dir / "inner").mkdir(parents=True)
    cache.restore_file(digest, as_dir)
    assert as_dir.read_bytes() == b"new"


@pytest.mark.parametrize("modes", [("hardlink",), ("symlink",), ("reflink", "copy")])
def test_writable_restore_is_a_private_copy(tmp_path: Path, modes: tuple[str, ...]) -> None:
    cache = Cache(tmp_path / "cache", modes)
    digest = _add(cache, tmp_path / "src", b"state v1")
    dest = tmp_path / "state.json"
    cache.restore_file(digest, dest, writable=True)
    assert not dest.is_symlink()
    assert dest.stat().st_ino != cache.blob_path(digest).stat().st_ino
    assert _mode(dest) & stat.S_IWUSR
    with open(dest, "ab") as handle:
        handle.write(b" + appended")
    assert dest.read_bytes() == b"state v1 + appended"
    assert cache.read_bytes(digest) == b"state v1"
    assert cache.verify(digest)


def test_restore_missing_blob_names_hash_and_dest(cache: Cache, tmp_path: Path) -> None:
    digest = hashing.hash_bytes(b"gone")
    dest = tmp_path / "model.pkl"
    with pytest.raises(CacheCorruptError) as caught:
        cache.restore_file(digest, dest)
    message = str(caught.value)
    assert digest in message
    assert str(dest) in message
    assert "pivot pull" in message
    assert not dest.exists()


def test_verify_detects_a_tampered_blob(cache: Cache, tmp_path: Path) -> None:
    digest = _add(cache, tmp_path / "src", b"pristine")
    assert cache.verify(digest)
    blob = cache.blob_path(digest)
    os.chmod(blob, 0o644)
    blob.write_bytes(b"tampered")
    assert not cache.verify(digest)
    assert not cache.verify(hashing.hash_bytes(b"absent"))


def _make_tree(root: Path, files: dict[str, bytes]) -> tuple[str, DirectoryManifest]:
    for relative, data in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
    return FileHasher(None).hash_directory(root)


def test_add_and_restore_directory(cache: Cache, tmp_path: Path) -> None:
    files = {f"part{index % 4}/shard{index:02d}.json": b"%d" % index for index in range(40)}
    files["top.txt"] = b"top"
    digest, manifest = _make_tree(tmp_path / "produced", files)
    assert cache.add_directory(tmp_path / "produced", manifest) == digest
    assert cache.load_manifest(digest) == manifest
    assert all(cache.has(file_digest) for _relative, file_digest in manifest)

    dest = tmp_path / "restored"
    cache.restore_directory(digest, dest)
    assert FileHasher(None).hash_directory(dest) == (digest, manifest)


def test_restore_directory_removes_stale_entries(cache: Cache, tmp_path: Path) -> None:
    digest, manifest = _make_tree(
        tmp_path / "produced", {"keep.txt": b"k", "sub/keep2.txt": b"k2", "a/b": b"ab"}
    )
    cache.add_directory(tmp_path / "produced", manifest)
    dest = tmp_path / "dest"
    _make_tree(
        dest,
        {
            "keep.txt": b"edited",
            "stale.txt": b"s",
            "sub/stale.txt": b"s",
            "sub/keep2.txt": b"k2",
            "gone/deeper/f": b"g",
            "a": b"file where a directory must go",
        },
    )
    (dest / ".keep.txt.0123456789abcdef.tmp").write_bytes(b"abandoned temp")
    (dest / "sub" / "dirlink").symlink_to(tmp_path / "produced", target_is_directory=True)
    cache.restore_directory(digest, dest)
    assert sorted(relative for relative, _path in hashing.list_files(dest)) == [
        "a/b",
        "keep.txt",
        "sub/keep2.txt",
    ]
    assert sorted(os.listdir(dest)) == ["a", "keep.txt", "sub"]
    assert (dest / "keep.txt").read_bytes() == b"k"
    assert (tmp_path / "produced" / "keep.txt").read_bytes() == b"k"


def test_restore_directory_over_a_file(cache: Cache, tmp_path: Path) -> None:
    digest, manifest = _make_tree(tmp_path / "produced", {"x": b"1"})
    cache.add_directory(tmp_path / "produced", manifest)
    dest = tmp_path / "was_a_file"
    dest.write_bytes(b"file")
    cache.restore_directory(digest, dest)
    assert (dest / "x").read_bytes() == b"1"


def test_empty_directory_round_trips(cache: Cache, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    digest, manifest = FileHasher(None).hash_directory(tmp_path / "empty")
    assert cache.add_directory(tmp_path / "empty", manifest) == digest
    cache.restore_directory(digest, tmp_path / "restored")
    assert os.listdir(tmp_path / "restored") == []


def test_load_manifest_missing_or_garbled(cache: Cache) -> None:
    missing = hashing.hash_bytes(b"no manifest")
    with pytest.raises(CacheCorruptError, match=missing):
        cache.load_manifest(missing)
    not_a_manifest = cache.add_bytes(b"just some file content")
    with pytest.raises(CacheCorruptError, match="garbled"):
        cache.load_manifest(not_a_manifest)
    real = cache.add_bytes(hashing.manifest_to_bytes(DirectoryManifest(())))
    blob = cache.blob_path(real)
    os.chmod(blob, 0o644)
    blob.write_bytes(b'{"files":{},"manifest_version":1} ')
    with pytest.raises(CacheCorruptError, match="does not hash to its name"):
        cache.load_manifest(real)


def test_restore_directory_with_missing_file_blob(cache: Cache, tmp_path: Path) -> None:
    digest, manifest = _make_tree(tmp_path / "produced", {"f": b"data"})
    cache.add_bytes(hashing.manifest_to_bytes(manifest))
    with pytest.raises(CacheCorruptError, match=manifest.entries[0][1]):
        cache.restore_directory(digest, tmp_path / "dest")


def test_add_file_of_a_missing_file_is_a_store_error(cache: Cache, tmp_path: Path) -> None:
    digest = hashing.hash_bytes(b"whatever")
    with pytest.raises(StoreError, match=r"cannot store .*missing\.csv"):
        cache.add_file(tmp_path / "missing.csv", digest)
    assert not cache.has(digest)
    assert os.listdir(cache.blob_path(digest).parent) == []


@pytest.mark.parametrize("size", [0, 24, 1024 * 1024 - 1, 1024 * 1024 + 5])
def test_store_file_hashes_and_stores_a_read_only_copy(
    cache: Cache, tmp_path: Path, size: int
) -> None:
    data = os.urandom(size)
    (tmp_path / "out.bin").write_bytes(data)

    digest = cache.store_file(tmp_path / "out.bin")

    assert digest == hashing.hash_bytes(data)
    blob = cache.blob_path(digest)
    assert blob.read_bytes() == data and _mode(blob) == 0o444
    assert not blob.samefile(tmp_path / "out.bin")
    assert [p.name for p in blob.parent.iterdir()] == [blob.name]  # no temp file left


def test_store_file_replaces_a_corrupt_blob_and_keeps_a_good_one(
    cache: Cache, tmp_path: Path
) -> None:
    (tmp_path / "out.txt").write_bytes(b"good content")
    digest = cache.store_file(tmp_path / "out.txt")
    blob = cache.blob_path(digest)
    os.chmod(blob, 0o644)
    blob.write_bytes(b"rotten")

    assert cache.store_file(tmp_path / "out.txt") == digest
    assert blob.read_bytes() == b"good content"
    kept = blob.stat().st_ino
    assert cache.store_file(tmp_path / "out.txt") == digest
    assert blob.stat().st_ino == kept  # an intact blob is never rewritten
