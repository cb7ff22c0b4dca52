"""Recording what a "nothing to do" decision of the whole pipeline depended on, as a snapshot
(`store.snapshot`) that lets the next plain `pivot repro` / `pivot status` answer without
importing `pipeline.py`.

A `Recorder` watches two spans of a command. While the user's pipeline is imported
(`importing`): every file opened for reading and every directory listed (the process's audit
hook, `fingerprint.observe.tapping`), every path `os.stat`/`os.lstat` looked at (existence checks
too), every environment variable read, then every module file in `sys.modules` and the
directories imports searched; an event it cannot record there (a subprocess, a socket, sqlite,
ctypes, a thread, a file written, ...) means no snapshot. While the plan is made (`planning`):
each path stat'ed (the stat the state db paired with a hash is the one recorded), each file
read (lock files) and each directory listed. A path seen with two signatures, or changed so
recently that a later edit could keep its signature, means no snapshot either.
Imports of Pivot: plan, fingerprint (observe), store (snapshot); never execute, api or cli.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import sys
import time
from collections.abc import Iterator, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import pivot
from pivot.fingerprint import observe
from pivot.plan import Plan
from pivot.store import snapshot
from pivot.store.snapshot import Signature, Snapshot

__all__ = ["Recorder", "write"]

RACY_NS = 100_000_000
"""A path changed less than this before the recording started (or after) is "racy": a later
edit within the same clock tick could leave its signature as it is, so no snapshot is written
(file times come from a coarse clock; the next no-op writes one)."""
COARSE_RACY_NS = 2_000_000_000
"""The same for a time in whole seconds: a file system that keeps only seconds (FAT keeps two)."""

_ALLOWED_AT_IMPORT = frozenset(
    {
        "import",
        "exec",
        "compile",
        "marshal.loads",
        "marshal.load",
        "marshal.dumps",
        "code.__new__",
        "function.__new__",
        "object.__getattr__",
        "object.__setattr__",
        "object.__delattr__",
        "builtins.id",
        "sys._getframe",
        "sys._getframemodulename",
        "sys.addaudithook",
        "sys.excepthook",
        "sys.unraisablehook",
        "sys._current_frames",
        "sys._current_exceptions",
        "pickle.find_class",
        "array.__new__",
        "gc.get_objects",
        "gc.get_referrers",
        "gc.get_referents",
        "os.putenv",
        "os.unsetenv",
        "glob.glob",
        "glob.glob/2",
        "pathlib.Path.glob",
        "pathlib.Path.rglob",
    }
)
"""Audit events import-time code may raise and still leave a snapshot: what they do cannot
change the decision, or is recorded by other events ("open", listings, `os.mkdir`)."""

_LISTINGS = frozenset({"os.listdir", "os.scandir"})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_VIRTUAL = ("/proc/", "/sys/", "/dev/")  # read by Pivot itself (fingerprinting: /proc/self/stat)
_BYTECODE_EVENTS = frozenset({"os.rename", "os.remove"})  # importlib's atomic .pyc write


class _Environ(MutableMapping[str, str]):
    """`os.environ` while the pipeline is imported: the same mapping, noting what is read.
    Modules that bound it (`from os import environ`) keep a working mapping afterwards."""

    def __init__(self, real: MutableMapping[str, str], recorder: Recorder) -> None:
        self._real = real
        self._recorder: Recorder | None = recorder
        self._written: set[str] = set()

    def stop(self) -> None:
        self._recorder = None

    def _read(self, key: str) -> None:
        recorder = self._recorder
        if recorder is not None and key not in self._written and key not in recorder.environ:
            recorder.environ[key] = self._real.get(key)

    def __getitem__(self, key: str) -> str:
        self._read(key)
        return self._real[key]

    def __setitem__(self, key: str, value: str) -> None:
        if self._recorder is not None and key not in self._recorder.environ:
            self._written.add(key)  # read back later, it is the code's own value
        self._real[key] = value

    def __delitem__(self, key: str) -> None:
        if self._recorder is not None and key not in self._recorder.environ:
            self._written.add(key)
        del self._real[key]

    def _all(self) -> None:
        if self._recorder is not None:
            self._recorder.whole_environ = True

    def __iter__(self) -> Iterator[str]:
        self._all()
        return iter(self._real)

    def __len__(self) -> int:
        self._all()
        return len(self._real)

    def copy(self) -> dict[str, str]:
        self._all()
        return dict(self._real)

    def __repr__(self) -> str:
        return repr(self._real)


class _Stream:
    """`sys.stdout` / `sys.stderr` while the pipeline is imported: the same stream, noting that
    something was printed (a fast no-op would not print it). Writers kept afterwards (a logging
    handler made at import) keep a working stream."""

    def __init__(self, real: Any, recorder: Recorder) -> None:
        self._real = real
        self._recorder: Recorder | None = recorder

    def stop(self) -> None:
        self._recorder = None

    def write(self, text: str) -> int:
        if text and self._recorder is not None:
            self._recorder.refuse("the pipeline's import printed (a no-op would not print it)")
        return int(self._real.write(text))

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class Recorder:
    """The inputs of one command's decision; `snapshot()` once it decided nothing to do."""

    def __init__(self, command: str, root: Path) -> None:
        self.command = command
        self.root = str(root)
        self.sys_path = snapshot.search_path()  # as the command started (before the project's)
        self.started = time.time_ns()
        self.stats: dict[str, Signature] = {}
        self.lstats: dict[str, Signature] = {}
        self.listings: dict[str, Signature] = {}
        self.environ: dict[str, str | None] = {}
        self.whole_environ = False
        self.refused: str | None = None
        self._environ_at_start: dict[str, str] = {}
        self._made: list[str] = []
        self._strict = False

    def refuse(self, why: str) -> None:
        if self.refused is None:
            self.refused = why

    # --- what is seen -------------------------------------------------------------------------

    def _absolute(self, path: object) -> str | None:
        if isinstance(path, str):
            text = path
        elif isinstance(path, (bytes, os.PathLike)):
            try:
                text = os.fsdecode(path)
            except TypeError:
                return None
        else:
            return None
        return observe.absolute(text)

    def _note(self, table: dict[str, Signature], path: str, found: Signature) -> None:
        known = table.setdefault(path, found)
        if known != found:
            self.refuse(f"'{path}' changed while Pivot read it")

    def note_path(self, path: str, *, listed: bool = False) -> None:
        """Record `path`'s signature now (None when it does not exist); `listed`: a directory
        whose entries were (or could be) listed."""
        sign = snapshot.listing if listed else snapshot.signature
        try:
            found = sign(os.stat(path))
        except OSError:
            found = None
        self._note(self.listings if listed else self.stats, path, found)

    def _audit(self, event: str, args: tuple[Any, ...]) -> None:
        try:
            if event == "open":
                self._opened(*args[:3])
            elif event in _LISTINGS:
                listed = self._absolute(args[0] if args and args[0] is not None else ".")
                if listed is not None:
                    self.note_path(listed, listed=True)
                elif self._strict:  # a directory listed by its file descriptor (os.fwalk)
                    self.refuse("the pipeline's import listed a directory Pivot cannot name")
            elif not self._strict:
                return
            elif event == "os.mkdir":
                made = self._absolute(args[0])
                if made is None:
                    self.refuse("import-time code made a directory Pivot cannot name")
                elif not _bytecode(made):
                    self._made.append(made)
            elif event == "ctypes.dlopen" and args[:1] == (None,):
                return  # `import ctypes` opens the process itself (numpy does): no new code
            elif event in _BYTECODE_EVENTS and all(
                isinstance(arg, str) and _bytecode(arg) for arg in args[:2] if arg is not None
            ):
                return
            elif event not in _ALLOWED_AT_IMPORT:
                self.refuse(f"the pipeline's import raised audit event '{event}'")
        except Exception as error:  # an audit hook must never break the user's code
            self.refuse(f"recording failed: {error!r}")

    def _opened(self, path: object, mode: object, flags: object) -> None:
        full = self._absolute(path)
        if full is None:
            return  # a file descriptor: its path was recorded when it was opened
        writing = (isinstance(mode, str) and not set("wax+").isdisjoint(mode)) or (
            mode is None and isinstance(flags, int) and bool(flags & _WRITE_FLAGS)
        )
        if _bytecode(full):
            return  # Python's bytecode: the source file is what is recorded
        if full.startswith(_VIRTUAL) and full != os.devnull:
            if self._strict:  # the kernel's state: no signature says it is the same
                self.refuse(f"the pipeline's import read '{full}'")
            return
        if writing:
            if self._strict:
                self.refuse(f"the pipeline's import wrote '{full}'")
            return
        self.note_path(full)

    # --- the spans ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _watching(self, *, strict: bool) -> Iterator[None]:
        real_stat, real_lstat = os.stat, os.lstat
        note, sign = self._note, snapshot.signature
        live = [True]  # a module that did `from os import stat` keeps a plain stat afterwards

        def stat(path: Any, *, dir_fd: Any = None, follow_symlinks: bool = True) -> Any:
            if not live[0]:
                return real_stat(path, dir_fd=dir_fd, follow_symlinks=follow_symlinks)
            full = self._absolute(path) if dir_fd is None else None
            if full is None and self._strict and not isinstance(path, int):
                self.refuse("the pipeline's import looked at a path relative to a directory fd")
            table = self.stats if follow_symlinks else self.lstats
            try:
                st = real_stat(path, dir_fd=dir_fd, follow_symlinks=follow_symlinks)
            except OSError:
                if full is not None:
                    note(table, full, None)
                raise
            if full is not None:
                note(table, full, sign(st))
            return st

        def lstat(path: Any, *, dir_fd: Any = None) -> Any:
            return stat(path, dir_fd=dir_fd, follow_symlinks=False)

        self._strict = strict
        os.stat, os.lstat = stat, lstat  # type: ignore[assignment]
        try:
            with observe.tapping(self._audit):
                yield
        finally:
            os.stat, os.lstat = real_stat, real_lstat
            live[0] = False
            self._strict = False

    @contextlib.contextmanager
    def importing(self) -> Iterator[None]:
        """Record the pipeline's import (see the module's docstring)."""
        pivot_dir = os.path.join(self.root, ".pivot")
        for name in ("config.yaml", "config.local.yaml"):  # read before the import
            self.note_path(os.path.join(pivot_dir, name))
        real = os.environ
        self._environ_at_start = dict(real)
        threads = _thread._count()
        recording = _Environ(real, self)
        streams = sys.stdout, sys.stderr
        printed = [_Stream(stream, self) for stream in streams]
        os.environ = recording  # type: ignore[assignment]  # noqa: B003 (a wrapper)
        sys.stdout, sys.stderr = printed  # type: ignore[assignment]
        try:
            with self._watching(strict=True):
                yield
        finally:
            os.environ = real  # noqa: B003 (the real mapping back)
            if sys.stdout is printed[0]:  # (unless the import replaced them)
                sys.stdout = streams[0]
            if sys.stderr is printed[1]:
                sys.stderr = streams[1]
            recording.stop()
            for stream in printed:
                stream.stop()
        if _thread._count() > threads:  # (threads raise no audit event when they start)
            self.refuse("the pipeline's import started a thread, which may go on reading")
        self._note_modules()
        for entry in self.sys_path:
            self.note_path(entry, listed=True)

    @contextlib.contextmanager
    def planning(self) -> Iterator[None]:
        """Record what the planner reads (see the module's docstring)."""
        with self._watching(strict=False):
            yield

    def _note_modules(self) -> None:
        """Each module file in `sys.modules`, the directory it was found in, and each package's
        search path: a new module there could change what an import finds."""
        directories: set[str] = set()
        for module in list(sys.modules.values()):
            filename = getattr(module, "__file__", None)
            if isinstance(filename, str):
                full = os.path.abspath(filename)
                if full not in self.stats:
                    self.note_path(full)
                directories.add(os.path.dirname(full))
            search = getattr(module, "__path__", None)
            if search is not None:
                with contextlib.suppress(TypeError):
                    directories.update(os.path.abspath(entry) for entry in search)
        for directory in directories:
            if directory not in self.listings:
                self.note_path(directory, listed=True)

    # --- the snapshot -----------------------------------------------------------------------------

    def snapshot(
        self, decided: Plan, extra: Sequence[str] = (), exists: Sequence[str] = ()
    ) -> Snapshot | None:
        """The snapshot of `decided` (nothing to do), or None when it cannot be trusted; the
        `extra` paths (files the command itself keeps, e.g. `.gitignore`) are recorded too, and
        whether each of `exists` exists."""
        if not decided.nothing_to_do:
            return None
        self._note_modules()  # what the command imported since (Pivot's own modules)
        for made in self._made:
            self.note_path(made)
        for path in extra:
            self.note_path(path)
        if self.refused is not None:
            return None
        for table in (self.stats, self.lstats, self.listings):
            for path, found in table.items():
                if found is None or found[2] < 0:
                    continue
                coarse = found[2] % 1_000_000_000 == 0
                if found[2] >= self.started - (COARSE_RACY_NS if coarse else RACY_NS):
                    self.refuse(f"'{path}' changed too recently to be trusted")
                    return None
        return Snapshot(
            command=self.command,
            root=self.root,
            interpreter=snapshot.interpreter(),
            version=pivot.__version__,
            sys_path=self.sys_path,
            environ=self.environ,
            environ_digest=(
                snapshot.environment_digest(self._environ_at_start) if self.whole_environ else None
            ),
            stats=self.stats,
            lstats=self.lstats,
            listings=self.listings,
            exists={path: os.path.exists(path) for path in exists},
            stages=tuple(step.stage for step in decided.steps),
            packages={s.stage: dict(s.packages) for s in decided.steps if s.packages},
            warnings=decided.warnings,
        )


def _bytecode(path: str) -> bool:
    return f"{os.sep}__pycache__{os.sep}" in path or f"{os.sep}.pivot{os.sep}pycache" in path


def write(
    pivot_dir: Path,
    recorder: Recorder | None,
    decided: Plan,
    extra: Sequence[str] = (),
    exists: Sequence[str] = (),
) -> None:
    """Save the snapshot of `decided` when `recorder` can vouch for it (see `Recorder`)."""
    if recorder is None:
        return
    found = recorder.snapshot(decided, extra, exists)
    if os.environ.get("PIVOT_NOOP_DEBUG"):
        why = recorder.refused or ("written" if found else "the plan had something to do")
        print(f"pivot: no-op snapshot of {recorder.command}: {why}", file=sys.stderr)
    if found is not None:
        with contextlib.suppress(OSError):  # only a cache: the command already succeeded
            snapshot.save(pivot_dir, found)
