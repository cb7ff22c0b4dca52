"""The remote contract: every kind (a directory, S3 on a real SeaweedFS server) behaves the same."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from pivot import fs
from pivot.errors import RemoteError
from pivot.remote import transfer
from pivot.remote.base import Remote, RemoteSettings, open_remote
from pivot.remote.directory import DirectoryRemote
from pivot.store import hashing
from pivot.store.cache import Cache
from tests.servers.seaweedfs import S3Server

KINDS = ["directory", "s3"]


def _s3_remote(
    server: S3Server, bucket: str, prefix: str = "team/project", **extra: object
) -> Remote:
    options = {
        "endpoint": server.endpoint,
        "region": "us-east-1",
        "access_key_id": server.access_key,
        "secret_access_key": server.secret_key,
        "allow_http": True,
        **extra,
    }
    return open_remote(RemoteSettings("t", f"s3://{bucket}/{prefix}", options), Path("/"))  # type: ignore[arg-type]


@pytest.fixture(params=KINDS)
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> Remote:
    if request.param == "directory":
        (tmp_path / "remote").mkdir()
        return DirectoryRemote(tmp_path / "remote")
    server: S3Server = request.getfixturevalue("seaweedfs")
    return _s3_remote(server, server.create_bucket())


def _blob(cache: Cache, data: bytes) -> str:
    return cache.add_bytes(data)


def test_upload_then_list_exists_and_download(remote: Remote, tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(b"some content")
    digest = hashing.hash_file(source)
    key = transfer.blob_key(digest)
    remote.check()
    assert not remote.exists(key)
    assert remote.upload(key, source) is True
    assert remote.exists(key)
    assert dict(remote.list_keys("files/")) == {key: len(b"some content")}
    dest = tmp_path / "downloaded"
    assert remote.download(key, dest) == digest
    assert dest.read_bytes() == b"some content"


def test_upload_never_replaces_an_existing_object(remote: Remote, tmp_path: Path) -> None:
    key = transfer.blob_key("ab" * 32)
    assert remote.upload_bytes(key, b"first") is True
    assert remote.upload_bytes(key, b"second") is False
    other = tmp_path / "other"
    other.write_bytes(b"third")
    assert remote.upload(key, other) is False
    remote.download(key, tmp_path / "got")
    assert (tmp_path / "got").read_bytes() == b"first"


def test_missing_key_downloads_as_file_not_found(remote: Remote, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        remote.download(transfer.blob_key("cd" * 32), tmp_path / "none")
    assert not remote.exists(transfer.blob_key("cd" * 32))


def test_delete_removes_and_tolerates_missing(remote: Remote) -> None:
    key = transfer.blob_key("ef" * 32)
    remote.upload_bytes(key, b"x")
    remote.delete(key)
    remote.delete(key)
    assert not remote.exists(key)
    assert list(remote.list_keys("files/")) == []


@pytest.mark.parametrize("count", [5, 80])
def test_remote_has_agrees_one_by_one_and_by_listing(remote: Remote, count: int) -> None:
    digests = [hashing.hash_bytes(str(i).encode()) for i in range(count)]
    stored = {transfer.blob_key(d) for d in digests[::2]}
    for key in stored:
        remote.upload_bytes(key, b"-")
    asked = [transfer.blob_key(d) for d in digests]
    assert transfer.remote_has(remote, asked) == stored


def _filled_cache(root: Path, count: int) -> tuple[Cache, list[str]]:
    cache = Cache(root)
    digests = [cache.add_bytes(os.urandom(64) + str(i).encode()) for i in range(count)]
    return cache, [transfer.blob_key(d) for d in digests]


def test_push_then_fetch_moves_everything_once(remote: Remote, tmp_path: Path) -> None:
    source, keys = _filled_cache(tmp_path / "a", 60)
    seen: list[transfer.Progress] = []
    pushed = transfer.push(source.root, remote, keys, progress=seen.append)
    assert (len(pushed.moved), len(pushed.present), pushed.ok) == (60, 0, True)
    assert pushed.bytes == sum((source.root / key).stat().st_size for key in keys)
    assert seen[-1] == transfer.Progress(60, 60, pushed.bytes)
    again = transfer.push(source.root, remote, keys)
    assert (len(again.moved), len(again.present)) == (0, 60)

    target = Cache(tmp_path / "b")
    fetched = transfer.fetch(target.root, remote, keys)
    assert (len(fetched.moved), fetched.ok) == (60, True)
    for key in keys:
        assert target.verify(transfer.key_hash(key))
        assert not os.access(target.root / key, os.W_OK) or os.geteuid() == 0
    assert len(transfer.fetch(target.root, remote, keys).present) == 60


def test_fetch_refuses_an_object_whose_content_does_not_match(
    remote: Remote, tmp_path: Path
) -> None:
    good = hashing.hash_bytes(b"the real content")
    key = transfer.blob_key(good)
    remote.upload_bytes(key, b"tampered content")
    missing = transfer.blob_key("12" * 32)
    cache = Cache(tmp_path / "cache")
    result = transfer.fetch(cache.root, remote, [key, missing])
    assert (result.corrupt, result.missing, result.moved) == ((key,), (missing,), ())
    assert not cache.has(good)
    leftovers = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert leftovers == []


def test_push_never_sends_a_corrupt_local_blob(remote: Remote, tmp_path: Path) -> None:
    cache, keys = _filled_cache(tmp_path / "a", 2)
    bad = cache.root / keys[0]
    os.chmod(bad, 0o644)
    bad.write_bytes(b"bit rot")
    result = transfer.push(cache.root, remote, [*keys, transfer.blob_key("34" * 32)])
    assert result.corrupt == (keys[0],)
    assert result.moved == (keys[1],)
    assert result.missing == (transfer.blob_key("34" * 32),)
    assert not remote.exists(keys[0])


def test_run_cache_style_keys_are_verified_by_their_last_part(
    remote: Remote, tmp_path: Path
) -> None:
    entry = b'{"outs": []}'
    key = f"runs/ab/{'cd' * 31}/{hashing.hash_bytes(entry)}"
    local = tmp_path / "a" / key
    local.parent.mkdir(parents=True)
    local.write_bytes(entry)
    assert transfer.push(tmp_path / "a", remote, [key]).moved == (key,)
    assert transfer.fetch(tmp_path / "b", remote, [key]).moved == (key,)
    assert (tmp_path / "b" / key).read_bytes() == entry


def test_listing_skips_nothing_but_temp_names(remote: Remote) -> None:
    key = transfer.blob_key("56" * 32)
    remote.upload_bytes(key, b"x")
    keys = [k for k, _ in remote.list_keys("files/")]
    assert keys == [key]
    assert all(transfer.is_object_key(k) for k in keys)
    assert not transfer.is_object_key("files/../../etc/passwd")
    assert not fs.is_temp_name(key.rsplit("/", 1)[1])


# --- errors each say what to fix ---------------------------------------------------------------


def test_directory_remote_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(RemoteError, match=r"does not exist.*Fix"):
        DirectoryRemote(tmp_path / "nowhere").check()


def _check_error(make: Callable[[], Remote]) -> str:
    with pytest.raises(RemoteError) as caught:
        make().check()
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_s3_missing_bucket(seaweedfs: S3Server) -> None:
    message = _check_error(lambda: _s3_remote(seaweedfs, "no-such-bucket-here"))
    assert "bucket does not exist" in message


def test_s3_bad_credentials(seaweedfs: S3Server, s3_bucket: str) -> None:
    message = _check_error(lambda: _s3_remote(seaweedfs, s3_bucket, secret_access_key="wrong"))
    assert "refused the credentials" in message and "--local" in message


def test_s3_unreachable_endpoint(seaweedfs: S3Server, s3_bucket: str) -> None:
    from tests.servers.seaweedfs import _free_ports

    closed = f"http://127.0.0.1:{_free_ports(1)[0]}"
    message = _check_error(
        lambda: _s3_remote(S3Server(closed, seaweedfs.filer), s3_bucket, endpoint=closed)
    )
    assert "cannot reach" in message and "endpoint" in message
