"""The file system's share of a full run: per stage, Pivot's design makes three atomic writes
(the output, its cache blob, the stage's lock: each a new temp file, a small write, a rename)
where the plain baseline creates one file. This times both on the file system of `DIRECTORY`
(fresh subdirectories), as wall and CPU microseconds per stage.

    python benchmarks/fs_floor.py /tmp/fs-floor [--n 10000]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path


def _atomic_write(path: str, data: bytes) -> None:
    temporary = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(descriptor, data)
    finally:
        os.close(descriptor)
    os.rename(temporary, path)


def _plain(root: Path, n: int) -> None:
    for index in range(n):
        with open(root / "plain" / f"s{index}.txt", "w", encoding="utf-8") as handle:
            handle.write("x" * 40)


def _pivot_like(root: Path, n: int) -> None:
    for index in range(n):
        _atomic_write(str(root / "out" / f"s{index}.txt"), b"x" * 40)
        _atomic_write(str(root / "cache" / f"{index:032x}"), b"x" * 40)
        _atomic_write(str(root / "stages" / f"s{index}.lock"), b"{" + b"x" * 400 + b"}")


def _time(label: str, work: Callable[[], None], n: int) -> None:
    cpu, wall = time.process_time(), time.perf_counter()
    work()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label}: {wall / n * 1e6:.0f} us wall, {cpu / n * 1e6:.0f} us CPU per stage")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="a directory to create (must not exist)")
    parser.add_argument("--n", type=int, default=10_000, help="stages")
    config = parser.parse_args()
    for name in ("plain", "out", "cache", "stages"):
        (config.directory / name).mkdir(parents=True)
    _time("plain baseline: one create", lambda: _plain(config.directory, config.n), config.n)
    _time("Pivot: three atomic writes", lambda: _pivot_like(config.directory, config.n), config.n)


if __name__ == "__main__":
    main()
