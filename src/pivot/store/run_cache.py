"""The run cache (`.pivot/cache/runs/`): (stage, code, params, dep hashes) -> the outputs a
successful run made. (`store.runs` is something else: the history of `repro` runs.)

An entry lives at `runs/<key[:2]>/<key[2:]>/<entry hash>` where `key` hashes the run's inputs and
`entry hash` is the BLAKE3 of the entry's bytes, so entries are content-addressed like blobs
(written once, verified on transfer, never conflicting between machines). Imports nothing of
Pivot's but `pivot.errors` and the store itself.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pivot import fs
from pivot.store import hashing
from pivot.store.lock import LockEntry, OutEntry

__all__ = [
    "RUNS_DIR",
    "entry_keys",
    "inline_from_bytes",
    "lookup",
    "outs_from_bytes",
    "outs_to_bytes",
    "run_key",
    "run_key_of",
    "save",
]

RUNS_DIR = "runs"
_VERSION = 1


def run_key(
    stage: str, code: Mapping[str, str], params: Mapping[str, Any], deps: Mapping[str, str]
) -> str:
    """The hash naming a run's inputs: stage, code manifest, params and each dep's hash."""
    document = {
        "stage": stage,
        "code": dict(sorted(code.items())),
        "params": params,
        "deps": dict(sorted(deps.items())),
        "version": _VERSION,
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashing.hash_bytes(text.encode("ascii"))


def run_key_of(entry: LockEntry) -> str:
    """The run key of the run a lock entry records."""
    return run_key(entry.stage, entry.code, entry.params, {d.path: d.hash for d in entry.deps})


def outs_to_bytes(outs: Sequence[OutEntry], inline: Mapping[str, bytes]) -> bytes:
    """An entry: every output, with the content of the uncached files inline (`inline`: path ->
    bytes), since the cache's `files/` keeps only what is declared cached."""
    items = []
    for out in sorted(outs, key=lambda o: o.path):
        item: dict[str, object] = {"path": out.path, "hash": out.hash, "cache": out.cache}
        item["is_directory"] = out.is_directory
        if not out.cache:
            item["content"] = base64.b64encode(inline[out.path]).decode("ascii")
        items.append(item)
    document = {"outs": items, "version": _VERSION}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


def inline_from_bytes(data: bytes) -> dict[str, bytes]:
    """The uncached outputs' content an entry holds (path -> bytes), each checked against its
    recorded hash; ValueError if one does not match."""
    found = {}
    for item in json.loads(data)["outs"]:
        if "content" in item:
            content = base64.b64decode(item["content"], validate=True)
            if hashing.hash_bytes(content) != item["hash"]:
                raise ValueError(f"run-cache content of '{item['path']}' does not match its hash")
            found[str(item["path"])] = content
    return found


def outs_from_bytes(data: bytes) -> tuple[OutEntry, ...]:
    """Parse an entry; ValueError saying what is wrong (paths are checked like annotation paths)."""
    try:
        document = json.loads(data)
        items = document["outs"] if document.get("version") == _VERSION else None
    except (ValueError, AttributeError, KeyError, TypeError):
        items = None
    if not isinstance(items, list):
        raise ValueError("not a version 1 run-cache entry")
    outs = []
    for item in items:
        if not isinstance(item, dict):
            raise ValueError(f"run-cache output {item!r} is not an object")
        path, digest = item.get("path"), item.get("hash")
        if not isinstance(path, str) or not _is_project_path(path):
            raise ValueError(f"run-cache output path {path!r} is not a project-relative path")
        if not hashing.is_valid_hash(digest):
            raise ValueError(f"run-cache output '{path}' has an invalid hash {digest!r}")
        cache = item.get("cache", True) is not False
        if not cache and ("content" not in item or item.get("is_directory")):
            raise ValueError(f"run-cache output '{path}' is uncached but has no content")
        outs.append(OutEntry(path, str(digest), cache, bool(item.get("is_directory"))))
    return tuple(outs)


def _is_project_path(path: str) -> bool:
    parts = path.rstrip("/").split("/")
    return (
        bool(path)
        and not path.startswith("/")
        and "\\" not in path
        and "\0" not in path
        and all(part not in ("", ".", "..") for part in parts)
    )


def _key_dir(cache_root: Path, key: str) -> Path:
    return Path(cache_root) / RUNS_DIR / key[:2] / key[2:]


def save(cache_root: Path, key: str, outs: Sequence[OutEntry], inline: Mapping[str, bytes]) -> str:
    """Record that the run `key` produced `outs` (`inline`: the uncached files' content);
    returns the entry's object key."""
    data = outs_to_bytes(outs, inline)
    digest = hashing.hash_bytes(data)
    path = _key_dir(cache_root, key) / digest
    if not path.is_file():
        fs.atomic_write_bytes(path, data)
        fs.make_readonly(path)
    return f"{RUNS_DIR}/{key[:2]}/{key[2:]}/{digest}"


def lookup(cache_root: Path, key: str) -> list[tuple[str, tuple[OutEntry, ...]]]:
    """(entry key, outputs) of every valid entry recorded for run `key`, newest first (damaged
    ones are skipped)."""
    directory = _key_dir(cache_root, key)
    try:
        names = [n for n in os.listdir(directory) if hashing.is_valid_hash(n)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for name in names:
        path = directory / name
        try:
            data = path.read_bytes()
            if hashing.hash_bytes(data) != name:
                continue
            entry = f"{RUNS_DIR}/{key[:2]}/{key[2:]}/{name}"
            found.append((path.stat().st_mtime_ns, entry, outs_from_bytes(data)))
        except (OSError, ValueError):
            continue
    return [(entry, outs) for _, entry, outs in sorted(found, key=lambda item: -item[0])]


def entry_keys(cache_root: Path) -> Iterator[str]:
    """Object keys (`runs/ab/cdef.../<entry hash>`) of every entry in the local run cache."""
    base = Path(cache_root) / RUNS_DIR
    if not base.is_dir():
        return
    for prefix in sorted(os.listdir(base)):
        for rest in sorted(_listdir(base / prefix)):
            for name in sorted(_listdir(base / prefix / rest)):
                if hashing.is_valid_hash(prefix + rest) and hashing.is_valid_hash(name):
                    yield f"{RUNS_DIR}/{prefix}/{rest}/{name}"


def _listdir(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except (NotADirectoryError, FileNotFoundError):
        return []
