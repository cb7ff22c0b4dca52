"""`pivot.progress`: a stage reports how far it is; the display shows it, even from a worker.

Inside a running stage the worker names a side file in `PIVOT_PROGRESS_FILE`; updates are written
there atomically (at most ~10 a second) and the main process reads them. Outside a stage the
helper just iterates. Imports nothing of Pivot's.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

__all__ = ["PROGRESS_ENV", "Progress", "progress", "read_progress"]

T = TypeVar("T")

PROGRESS_ENV = "PIVOT_PROGRESS_FILE"
_INTERVAL = 0.1  # seconds between two writes of the side file


class Progress(Generic[T]):
    """Iterates `iterable` (if given) and counts; `update(n)` counts work done by hand.

    Usable as `for row in pivot.progress(rows): ...` or as a context manager
    `with pivot.progress(total=n) as bar: ... bar.update()`, like tqdm.
    """

    def __init__(
        self, iterable: Iterable[T] | None = None, total: int | None = None, desc: str = ""
    ) -> None:
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.iterable = iterable
        self.total = total
        self.desc = desc
        self.done = 0
        self._path = os.environ.get(PROGRESS_ENV)
        self._written = 0.0

    def __iter__(self) -> Iterator[T]:
        if self.iterable is None:
            raise TypeError("pivot.progress() was given no iterable; call update() instead")
        for item in self.iterable:
            yield item
            self.update()
        self._write()

    def __enter__(self) -> Progress[T]:
        self._write()
        return self

    def __exit__(self, *exc: object) -> None:
        self._write()

    def update(self, count: int = 1) -> None:
        self.done += count
        if self._path and time.monotonic() - self._written >= _INTERVAL:
            self._write()

    def _write(self) -> None:
        if not self._path:
            return
        self._written = time.monotonic()
        record = json.dumps({"done": self.done, "total": self.total, "desc": self.desc})
        temporary = f"{self._path}.{os.getpid()}.tmp"
        try:
            with open(temporary, "w", encoding="utf-8") as handle:
                handle.write(record)
            os.replace(temporary, self._path)
        except OSError:  # progress is best effort: it never fails the stage
            self._path = None


def progress(
    iterable: Iterable[T] | None = None, total: int | None = None, desc: str = ""
) -> Progress[T]:
    """Report a stage's progress to Pivot's display: wrap an iterable (or `update()` by hand)."""
    return Progress(iterable, total, desc)


def read_progress(path: str) -> tuple[int, int | None, str] | None:
    """(done, total, description) last written to a progress side file, if any."""
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
        return int(record["done"]), record.get("total"), str(record.get("desc") or "")
    except (OSError, ValueError, KeyError, TypeError):
        return None
