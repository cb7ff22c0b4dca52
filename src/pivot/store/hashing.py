"""BLAKE3 content hashes of bytes, files and directory trees; imports nothing of Pivot's but
`pivot.fs`.

A hash is 64 lowercase hex characters. A directory is identified by its `DirectoryManifest`
(sorted relative POSIX path -> file hash) and the hash of the manifest's canonical JSON bytes.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeGuard

import blake3

from pivot.fs import is_temp_name

__all__ = [
    "HASH_LENGTH",
    "MMAP_THRESHOLD",
    "DirectoryManifest",
    "copy_hashing",
    "hash_bytes",
    "hash_file",
    "hash_files",
    "is_valid_hash",
    "list_files",
    "manifest_from_bytes",
    "manifest_hash",
    "manifest_to_bytes",
]

HASH_LENGTH = 64
MMAP_THRESHOLD = 64 * 1024 * 1024
"""Files at least this big are hashed with memory mapping on all cores."""

_BUFFER_SIZE = 1024 * 1024
_FILES_PER_THREAD = 4
_MANIFEST_VERSION = 1
_HASH_MATCH = re.compile(r"[0-9a-f]{64}").fullmatch


def is_valid_hash(value: object) -> TypeGuard[str]:
    """True when `value` is a hash as Pivot writes them: exactly 64 lowercase hex characters
    (`fullmatch`: a trailing newline does not pass; it runs for every hash a no-op reads)."""
    return type(value) is str and _HASH_MATCH(value) is not None


def hash_bytes(data: bytes) -> str:
    """BLAKE3 hex digest of `data`."""
    return str(blake3.blake3(data).hexdigest())


def hash_file(path: Path) -> str:
    """BLAKE3 hex digest of a file's content, streamed; big files use mmap and every core."""
    with open(path, "rb", buffering=0) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size >= MMAP_THRESHOLD:
            return _hash_large_file(path)
        if size < _BUFFER_SIZE:
            return hash_bytes(handle.readall())
        return _hash_stream(handle)


def copy_hashing(source: Path, dest: BinaryIO) -> str:
    """Copy file `source` into the open file `dest` and return the hash of the bytes copied
    (one read serves both: what is written is exactly what was hashed)."""
    with open(source, "rb", buffering=0) as handle:
        if os.fstat(handle.fileno()).st_size < _BUFFER_SIZE:  # most files: one read, no buffer
            data = handle.readall()
            if len(data) < _BUFFER_SIZE:
                dest.write(data)
                return hash_bytes(data)
            hasher = blake3.blake3(data)  # it grew meanwhile: go on in chunks
            dest.write(data)
        else:
            hasher = blake3.blake3()
        buffer = bytearray(_BUFFER_SIZE)
        view = memoryview(buffer)
        while count := handle.readinto(buffer):
            hasher.update(view[:count])
            dest.write(view[:count])
    return str(hasher.hexdigest())


def _hash_stream(handle: io.FileIO) -> str:
    hasher = blake3.blake3()
    buffer = bytearray(_BUFFER_SIZE)
    view = memoryview(buffer)
    while count := handle.readinto(buffer):
        hasher.update(view[:count])
    return str(hasher.hexdigest())


def _hash_large_file(path: Path) -> str:
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    hasher.update_mmap(os.fspath(path))
    return str(hasher.hexdigest())


def hash_files(paths: Iterable[Path], jobs: int | None = None) -> dict[Path, str]:
    """Hash many files, in parallel threads when there are several; keys keep input order."""
    unique = list(dict.fromkeys(paths))
    workers = min(jobs or _default_jobs(), len(unique) // _FILES_PER_THREAD)
    if workers <= 1:
        return {path: hash_file(path) for path in unique}
    from concurrent.futures import ThreadPoolExecutor  # only paid for when used

    chunks = [unique[start::workers] for start in range(workers)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(_hash_chunk, chunks))
    digests = {
        path: digest for chunk, found in zip(chunks, results) for path, digest in zip(chunk, found)
    }
    return {path: digests[path] for path in unique}


def _hash_chunk(paths: list[Path]) -> list[str]:
    return [hash_file(path) for path in paths]


def _default_jobs() -> int:
    """Reads overlap well beyond the core count (I/O waits release the GIL); stdlib's default."""
    return min(32, (os.cpu_count() or 1) + 4)


def list_files(root: Path) -> list[tuple[str, Path]]:
    """Every file under `root` as (relative POSIX path, path), sorted by relative path.

    Symlinks are followed (a symlink loop is not entered twice); temp files of atomic writes,
    broken symlinks and special files are skipped.
    """
    found: list[tuple[str, Path]] = []
    _scan(os.fspath(root), "", found, set())
    found.sort()
    return found


def _scan(
    directory: str, prefix: str, found: list[tuple[str, Path]], ancestors: set[tuple[int, int]]
) -> None:
    st = os.stat(directory)
    key = (st.st_dev, st.st_ino)
    if key in ancestors:
        return
    ancestors.add(key)
    with os.scandir(directory) as entries:
        for entry in entries:
            if is_temp_name(entry.name):
                continue
            relative = prefix + entry.name
            if entry.is_dir():
                _scan(entry.path, relative + "/", found, ancestors)
            elif entry.is_file():
                found.append((relative, Path(entry.path)))
    ancestors.discard(key)


@dataclass(frozen=True)
class DirectoryManifest:
    """The content of a directory: (relative POSIX path, file hash) pairs sorted by path."""

    entries: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        entries = tuple((str(path), str(digest)) for path, digest in self.entries)
        object.__setattr__(self, "entries", entries)
        previous = None
        for path, digest in entries:
            _check_relative_path(path)
            if not is_valid_hash(digest):
                raise ValueError(f"manifest entry '{path}' has an invalid hash {digest!r}")
            if previous is not None and path <= previous:
                raise ValueError(f"manifest entries are not sorted and unique at '{path}'")
            previous = path

    @classmethod
    def from_mapping(cls, files: Mapping[str, str]) -> DirectoryManifest:
        """Build a manifest from relative path -> hash in any order."""
        return cls(tuple(sorted(files.items())))

    def as_dict(self) -> dict[str, str]:
        return dict(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.entries)


def _check_relative_path(path: str) -> None:
    parts = path.split("/")
    if not path or "\0" in path or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"manifest path {path!r} is not a normalised relative POSIX path")


def manifest_to_bytes(manifest: DirectoryManifest) -> bytes:
    """Canonical JSON bytes of a manifest: the same manifest always gives the same bytes."""
    document = {"files": dict(manifest.entries), "manifest_version": _MANIFEST_VERSION}
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return text.encode("ascii")


def manifest_hash(manifest: DirectoryManifest) -> str:
    """The directory's hash: BLAKE3 of `manifest_to_bytes(manifest)`."""
    return hash_bytes(manifest_to_bytes(manifest))


def manifest_from_bytes(data: bytes) -> DirectoryManifest:
    """Parse `manifest_to_bytes` output; raise ValueError saying what is wrong otherwise."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"manifest is not valid JSON ({error})") from None
    if not isinstance(document, dict) or document.get("manifest_version") != _MANIFEST_VERSION:
        raise ValueError(f"manifest is not a version {_MANIFEST_VERSION} directory manifest")
    files = document.get("files")
    if not isinstance(files, dict):
        raise ValueError("manifest has no 'files' object")
    return DirectoryManifest.from_mapping(files)
