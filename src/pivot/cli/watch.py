"""`pivot repro --watch`: run, then re-run what is affected each time watched files change.

Watched: the stages' dependencies, Python sources, `pivot.yaml`, `params.yaml`,
`.pivot/config.yaml`, `.pivotignore` and tracked files (`*.pvt`). Never: outputs (Pivot writes
them), `.pivotignore`d paths, `.git/`, the rest of `.pivot/`. A broken pipeline or a failed stage is reported and watching goes on
with the last good scope. After a Python source changes, worker processes are started afresh so
none runs code imported before the edit. watchfiles is imported only here.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from pivot import api, project
from pivot.errors import PivotError
from pivot.execute.events import EventSink, FilesChanged, PipelineError, WatchReady

__all__ = ["Relevance", "watch"]

ALWAYS = frozenset(
    {".pivot/config.yaml", ".pivot/config.local.yaml", ".pivotignore", "pivot.yaml", "params.yaml"}
)
TRIGGER_SUFFIXES = (".py", ".pvt")
STEP_MS = 25  # how often the watcher looks at what the OS reported
IDLE_MS = 50  # it hands back an empty batch this often when nothing changes


@dataclasses.dataclass(frozen=True)
class Relevance:
    """Decides whether a changed path (project-relative, POSIX) should trigger a run."""

    scope: api.WatchScope
    ignored: Callable[[str], bool] | None

    @staticmethod
    def _under(path: str, roots: frozenset[str]) -> bool:
        return path in roots or any(path.startswith(root.rstrip("/") + "/") for root in roots)

    def __call__(self, path: str) -> bool:
        if path in ALWAYS:
            return True
        if path.startswith((".git/", ".pivot/")) or "/__pycache__/" in f"/{path}":
            return False
        if self.ignored is not None and self.ignored(path):
            return False
        if self._under(path, self.scope.outputs):
            return False
        return path.endswith(TRIGGER_SUFFIXES) or self._under(path, self.scope.deps)


def _relevance(root: Path, previous: Relevance | None) -> Relevance | None:
    """The scope of the pipeline as it is now; the last good one if it does not load (the run
    before this has reported why)."""
    try:
        scope = api.watch_scope(root)
    except PivotError:
        return previous
    return Relevance(scope, project.ignore_matcher(root))


def _changed(root: Path, changes: Iterable[tuple[Any, str]]) -> tuple[str, ...]:
    paths = set()
    for _, path in changes:
        try:
            paths.add(Path(path).relative_to(root).as_posix())
        except ValueError:
            continue
    return tuple(sorted(paths))


def _settled(
    changes: Iterator[set[tuple[Any, str]]], debounce_ms: int
) -> Iterator[set[tuple[Any, str]]]:
    """Groups of relevant changes, each handed on once none came for `debounce_ms`."""
    pending: set[tuple[Any, str]] = set()
    last = 0.0
    for batch in changes:
        now = time.monotonic()
        if batch:
            pending |= batch
            last = now
        if pending and (now - last) * 1000 >= debounce_ms:
            yield pending
            pending = set()


def _run(run: Callable[[bool], bool], emit: EventSink, fresh_workers: bool) -> bool | None:
    """One run; a project error (broken pipeline.py, cycle, ...) is reported, not raised."""
    try:
        return run(fresh_workers)
    except PivotError as error:
        emit(PipelineError(str(error)))
        return None


def watch(
    root: Path,
    run: Callable[[bool], bool],
    emit: EventSink,
    *,
    debounce_ms: int,
    stop: threading.Event | None = None,
) -> None:
    """Run (`run(fresh_workers)`), then wait for relevant changes and run again, until Ctrl-C
    (KeyboardInterrupt propagates) or `stop` is set."""
    import watchfiles

    relevance: Relevance | None = None

    def wanted(change: Any, path: str) -> bool:
        relative = _changed(root, [(change, path)])
        if not relative:
            return False
        if relevance is None:  # no good pipeline yet: a source or config edit may fix it
            return relative[0].endswith(".py") or relative[0] in ALWAYS
        return relevance(relative[0])

    changes = watchfiles.watch(
        root,
        watch_filter=wanted,
        step=STEP_MS,
        debounce=1600,
        stop_event=stop,
        rust_timeout=IDLE_MS,
        yield_on_timeout=True,
        raise_interrupt=True,
    )
    next(changes, None)  # the watcher starts now: an edit made during the first run counts
    _run(run, emit, False)
    relevance = _relevance(root, None)
    emit(WatchReady((".",)))
    code_edited = False  # since the last run that got to execute (warm workers may be stale)
    for batch in _settled(changes, debounce_ms):
        paths = _changed(root, batch)
        emit(FilesChanged(paths))
        code_edited = code_edited or any(path.endswith(".py") for path in paths)
        if _run(run, emit, code_edited) is not None:
            code_edited = False
        relevance = _relevance(root, relevance)
        emit(WatchReady((".",)))
