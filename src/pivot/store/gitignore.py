"""The block of the project's root `.gitignore` that lists cached outputs, so `git add -A` never
commits data the cache already holds (uncached outputs such as metrics stay tracked).

Pivot owns only the lines between its two markers and rewrites them when the set of cached
outputs changes; everything else in the file is the user's. Imports of Pivot: the store's
atomic writes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from pivot import fs

__all__ = ["BEGIN", "END", "ignore_line", "update_gitignore"]

BEGIN = "# >>> pivot: cached outputs (managed by Pivot, rewritten as stages change) >>>"
END = "# <<< pivot <<<"
_SPECIAL = re.compile(r"([\\*?\[\]!#])")


def ignore_line(path: str) -> str:
    """A gitignore pattern matching exactly the project-relative `path` (a directory ends
    with '/'), anchored at the root, with gitignore's special characters escaped."""
    text = _SPECIAL.sub(r"\\\1", path) if _SPECIAL.search(path) else path  # (most have none)
    if text.endswith(" "):
        text = text[:-1] + "\\ "
    return "/" + text


def _block(paths: Iterable[str]) -> list[str]:
    lines = sorted({ignore_line(path) for path in paths})
    return [BEGIN, *lines, END] if lines else []


def update_gitignore(root: Path, paths: Iterable[str]) -> bool:
    """Make the managed block of `root/.gitignore` list exactly `paths`; True if it changed.

    Nothing is written when the block is already right (or when there is nothing to list and
    no block).
    """
    path = Path(root) / ".gitignore"
    paths = tuple(paths)
    known = _known_right.get(str(path))
    if known is not None and known == (paths, _signature(path)):
        return False  # this process found (or made) the block right, and the file is as it was
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    lines = text.splitlines()
    if BEGIN in lines and END in lines[lines.index(BEGIN) :]:
        start = lines.index(BEGIN)
        end = lines.index(END, start) + 1
        before, after = lines[:start], lines[end:]
    else:
        before, after = lines, []
    block = _block(paths)
    if before and before[-1] != "" and block:
        block = ["", *block]
    if before and before[-1] == "" and not block and not after:
        before = before[:-1]
    updated = "\n".join(before + block + after)
    updated = updated + "\n" if updated else ""
    if updated != text:
        fs.atomic_write_text(path, updated)
    _known_right[str(path)] = (paths, _signature(path))
    return updated != text


_known_right: dict[str, tuple[tuple[str, ...], tuple[int, int, int] | None]] = {}
"""By `.gitignore` path: the paths its block last listed rightly in this process, with the
file's signature then (a command keeps it up to date after planning and again at its end)."""


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)
