"""Hashing throughput: Pivot's hash_file/hash_files against raw reads and hashlib.md5.

Data: one large file (1 GiB by default) and many small files (10,000 by default). Each method
is timed warm (page cache full) and cold (`posix_fadvise(DONTNEED)` on every file first, after
an fsync at creation so the pages are clean and can be dropped). Raw read is the physical
limit; md5 is DVC's choice. Imports Pivot only inside `measure_hashing`, and copes without it.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from report import Measurement

__all__ = ["measure_hashing"]

_CHUNK = 1 << 20
_BLOCK = 16 << 20


def _write_large(path: Path, size: int) -> None:
    block = os.urandom(_BLOCK)
    with path.open("wb") as handle:
        written = 0
        while written < size:
            part = block[: min(_BLOCK, size - written)]
            handle.write(part)
            written += len(part)
        handle.flush()
        os.fsync(handle.fileno())


def _write_small(root: Path, count: int) -> list[Path]:
    paths = []
    seed = os.urandom(8192)
    for index in range(count):
        path = root / f"d{index % 100:02d}" / f"f{index:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        size = 512 + (index * 7919) % 7680  # 0.5 KiB .. 8 KiB, spread evenly
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, seed[:size] + index.to_bytes(4, "little"))
            os.fsync(fd)
        finally:
            os.close(fd)
        paths.append(path)
    return paths


def _drop_cache(paths: Sequence[Path]) -> None:
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _raw_read(paths: Sequence[Path]) -> None:
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    for path in paths:
        with path.open("rb", buffering=0) as handle:
            while handle.readinto(view):
                pass


def _md5(paths: Sequence[Path]) -> None:
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    for path in paths:
        digest = hashlib.md5(usedforsecurity=False)
        with path.open("rb", buffering=0) as handle:
            while count := handle.readinto(view):
                digest.update(view[:count])
        digest.hexdigest()


def _time(
    action: Callable[[], object], paths: Sequence[Path], cold: bool, repeats: int
) -> tuple[float, ...]:
    samples = []
    for _ in range(repeats):
        if cold:
            _drop_cache(paths)
        else:
            _raw_read(paths)  # make sure the pages are in memory
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return tuple(samples)


def _pivot_methods(paths: Sequence[Path]) -> dict[str, Callable[[], object]]:
    try:
        from pivot.store.hashing import hash_file, hash_files
    except ImportError as error:
        print(f"hashing: Pivot's hashing is not importable ({error}); skipped", file=sys.stderr)
        return {}
    if len(paths) == 1:
        return {"pivot hash_file": lambda: hash_file(paths[0])}
    return {
        "pivot hash_files": lambda: hash_files(list(paths)),
        "pivot hash_files jobs=1": lambda: hash_files(list(paths), jobs=1),
    }


def _measure_set(label: str, paths: Sequence[Path], repeats: int, cold: bool) -> list[Measurement]:
    methods: dict[str, Callable[[], object]] = {"raw read": lambda: _raw_read(paths)}
    methods.update(_pivot_methods(paths))
    methods["hashlib.md5"] = lambda: _md5(paths)
    size = sum(path.stat().st_size for path in paths)
    temperature = "cold" if cold else "warm"
    results = []
    for name, action in methods.items():
        print(f"hashing: {label}, {name} {temperature}", file=sys.stderr)
        samples = _time(action, paths, cold, repeats)
        results.append(
            Measurement(
                "hashing", label, f"{name} {temperature}", 0, samples,
                size_bytes=size, files=len(paths),
            )
        )  # fmt: skip
    return results


def measure_hashing(
    workdir: Path, large_bytes: int, small_files: int, repeats: int
) -> list[Measurement]:
    """Create the data under `workdir` and time every method warm and cold on both sets."""
    large = workdir / "large.bin"
    _write_large(large, large_bytes)
    small = _write_small(workdir / "small", small_files)
    large_label = (
        f"{large_bytes / (1 << 30):g} GiB file"
        if large_bytes >= 1 << 30
        else f"{large_bytes / (1 << 20):.0f} MiB file"
    )
    small_label = f"{small_files:,} small files"
    results = []
    for cold in (True, False):
        results += _measure_set(large_label, [large], repeats, cold)
    for cold in (True, False):
        results += _measure_set(small_label, small, repeats, cold)
    return results
