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
After a `repro` that ran every stage it had to, the plan is made again (`replanning`), so that
the first no-op after a run is fast too: what that plan sees replaces what the first plan saw
(the run changed outputs and locks), never what the import saw, except a directory imports
searched to which the run only added (or from which it only removed) the files it writes, none
of them a name an import looked for in vain. A stage the run left alone, with no upstream stage
that acted, keeps its first step, and what the first plan saw stands but for what the run may
have changed (the files of the stages that acted, Pivot's own but lock files: `Forget`).
Imports of Pivot: plan, fingerprint (observe), store (snapshot); never execute, api or cli.
"""

from __future__ import annotations

import _thread
import contextlib
import dataclasses
import functools
import os
import sys
import time
import types
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import pivot
from pivot.fingerprint import observe
from pivot.plan import Plan
from pivot.store import snapshot
from pivot.store.snapshot import Signature, Snapshot

__all__ = ["Forget", "Recorder", "write"]

RACY_NS = 100_000_000
"""A path changed less than this before the recording started (or after) is "racy": a later
edit within the same clock tick could leave its signature as it is, so no snapshot is written
(file times come from a coarse clock; the next no-op writes one)."""
SETTLE_SHARE = 0.02
"""After a run, `repro` may wait for what it wrote to settle (RACY_NS) before recording it for a
snapshot, as long as the waits cost at most this share of the run (else the next no-op records
one)."""
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
        self._before_plan: tuple[dict[str, Signature], ...] | None = None  # import's, graph's
        self._names: dict[str, frozenset[str]] = {}  # project directories imports searched
        self._missed: set[str] = set()  # names imports looked for and did not find
        self._listed_by_code: set[str] = set()  # directories code listed at import
        self._listing = False  # listing a directory itself (`_searched`): not an event to record
        self._again: dict[tuple[int, str], int] | None = None  # replanning: when each was seen
        self._wait_left = 0  # replanning: how long (ns) it may still wait for paths to settle
        self._first_plan: dict[str, Signature] = {}  # replanning: the stats the first plan saw
        self._stat = os.stat  # the real one (`_watching` replaces `os.stat` for its span)

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

    def _settled(self, take: Callable[[], os.stat_result]) -> tuple[os.stat_result, int]:
        """(`take()`, the time just before it was taken). In a plan made again, a path changed
        too recently to be trusted is stat'ed again once it has settled, while the waits fit
        what the command allowed (`replanning`)."""
        seen = time.time_ns()
        st = take()
        if self._again is not None and st.st_mtime_ns % 1_000_000_000:
            wait = st.st_mtime_ns + RACY_NS - seen
            if 0 < wait <= self._wait_left:
                self._wait_left -= wait
                time.sleep(wait / 1e9)
                seen = time.time_ns()
                st = take()
        return st, seen

    def _note(
        self, table: dict[str, Signature], path: str, found: Signature, seen: int = 0
    ) -> None:
        again = self._again
        if again is not None and (key := (id(table), path)) not in again:
            again[key] = seen
            known = table.setdefault(path, found)
            if known == found:
                return
            if table is self.listings and self._searched_only(path):
                table[path] = found  # what the run changed there is judged at the span's end
            else:  # seen by the import or while the graph was built
                self.refuse(f"'{path}', which the pipeline's definition read, changed")
            return
        known = table.setdefault(path, found)
        if known != found:
            self.refuse(f"'{path}' changed while Pivot read it")

    def note_path(self, path: str, *, listed: bool = False) -> None:
        """Record `path`'s signature now (None when it does not exist); `listed`: a directory
        whose entries were (or could be) listed."""
        sign = snapshot.listing if listed else snapshot.signature
        # a file is stat'ed past a watching span's `os.stat`, which would record it a second
        # time (a listed directory goes through it: it is recorded as a stat too)
        stat = os.stat if listed else self._stat
        try:
            st, seen = self._settled(lambda: stat(path))
            found = sign(st)
        except OSError:
            found, seen = None, 0
        self._note(self.listings if listed else self.stats, path, found, seen)

    def _searched(self, path: str) -> None:
        """Record a project directory imports search, with its names. Importing writes
        bytecode (`__pycache__`) there, after which Python lists it again: a change of that
        name alone is not one to refuse a snapshot for."""
        self._listing = True
        try:
            names, found = _names_now(path)
        finally:
            self._listing = False
        before, known = self._names.get(path), self.listings.get(path)
        if before is None or known is None or found == known:
            self._note(self.listings, path, found)
        elif names is not None and (names ^ before) <= {"__pycache__"}:
            self.listings[path] = found
        else:
            self.refuse(f"'{path}' changed while Pivot read it")
        if names is not None:
            self._names[path] = names

    def _audit(self, event: str, args: tuple[Any, ...]) -> None:
        try:
            if event == "open":
                self._opened(*args[:3])
            elif event in _LISTINGS:
                listed = self._absolute(args[0] if args and args[0] is not None else ".")
                if self._listing:
                    return
                if listed is not None:
                    by_imports = _by_import_system()
                    if not by_imports and self._strict:
                        self._listed_by_code.add(listed)
                    if by_imports and self._strict and _inside(listed, self.root):
                        self._searched(listed)
                    else:
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
        self._stat = real_stat
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
                st, seen = self._settled(
                    lambda: real_stat(path, dir_fd=dir_fd, follow_symlinks=follow_symlinks)
                )
            except OSError:
                if full is not None:
                    note(table, full, None)
                raise
            if full is not None:
                note(table, full, sign(st), seen)
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
        misses = _Misses(self._missed)
        sys.meta_path.append(misses)
        try:
            with self._watching(strict=True):
                yield
        finally:
            with contextlib.suppress(ValueError):
                sys.meta_path.remove(misses)
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
        for path, found in list(self.listings.items()):  # (as bytecode may have left them)
            if found is not None and _inside(path, self.root) and path not in self._listed_by_code:
                self._searched(path)

    @contextlib.contextmanager
    def planning(self) -> Iterator[None]:
        """Record what the planner reads (see the module's docstring)."""
        self._before_plan = tuple(dict(table) for table in self._tables())
        with self._watching(strict=False):
            yield

    @contextlib.contextmanager
    def replanning(
        self, written: Sequence[str], wait: float, forget: Forget | None = None
    ) -> Iterator[None]:
        """Record the plan made again after the command ran stages (`written`: the absolute
        paths the run may have written: outputs, Pivot's own files). What the first plan saw is
        forgotten, or, when the plan made again takes some of the first plan's steps as they
        are, only what `forget` says the run may have changed; each path seen from now on (in
        this span and by `snapshot`) is recorded as it is then, and must have settled by the
        time it was seen, not by the command's start: the run just wrote some, so up to `wait`
        seconds in all go to waiting for them."""
        kept = self._before_plan if self._before_plan is not None else self._tables()
        self._first_plan = self.stats
        first = self._tables()
        self.stats, self.lstats, self.listings = (
            {**forget.kept(plan), **before} if forget is not None else dict(before)
            for before, plan in zip(kept, first)
        )
        self._again = {}
        self._wait_left = int(wait * 1e9)
        with self._watching(strict=False):
            yield
        self._settle_searched(written)

    def unchanged(self, path: str) -> bool:
        """Record file `path` in the plan made again, and say whether it is as the first plan
        read it (what was read from it then holds)."""
        full = self._absolute(path)
        if full is None:
            return False
        self.note_path(full)
        return self.still(full)

    def still(self, path: str) -> bool:
        """Whether file `path` (absolute and normal, as the recorder names paths) is recorded
        in the plan made again as the first plan saw it, forgotten by neither `replanning` nor
        a new look: what that plan read or hashed from it holds for the snapshot, which checks
        it as it was then (no new stat needed)."""
        found = self.stats.get(path)
        return found is not None and found == self._first_plan.get(path)

    def holds(self, path: str, signature: Signature) -> bool:
        """Record file `path` in the plan made again, and say whether it has `signature`: the
        stat of a file the run wrote, whose content is known (see `plan.WrittenLock`). It is
        recorded as any path is (settled, else no snapshot), so the next no-op checks it."""
        full = self._absolute(path)
        if full is None:
            return False
        self.note_path(full)
        return signature is not None and self.stats.get(full) == signature

    def note_sources(self, sources: Iterable[tuple[str, int, int]]) -> None:
        """Record the source files of fingerprints the plan made again reused, which must be as
        they were read ((path, mtime_ns, size) each): the code planned from is in memory."""
        seen: set[str] = set()
        for path, mtime_ns, size in sources:
            if path in seen:
                continue
            seen.add(path)
            self.note_path(path)
            found = self.stats.get(path)
            if found is None or found[1:] != (size, mtime_ns):
                self.refuse(f"'{path}' changed since the stages' code was fingerprinted")

    def _settle_searched(self, written: Sequence[str]) -> None:
        """List anew the project's directories imports searched: recorded as they are now when
        the names the run added or removed are all `written`, none is a name an import looked
        for or one Python imports unasked, and none names an installed distribution (a
        listing's names are what a module search depends on, so one taken now, settled,
        replaces the import's)."""
        assert self._again is not None
        for path, before in self._names.items():
            if not self._searched_only(path):
                continue  # what code found there may differ: the snapshot will not hold
            try:
                _, seen = self._settled(functools.partial(os.stat, path))  # (waits if needed)
            except OSError:
                seen = 0
            names, now = _names_now(path)
            prefix = path.rstrip(os.sep) + os.sep
            made = {p[len(prefix) :].split(os.sep, 1)[0] for p in written if p.startswith(prefix)}
            changed = (names ^ before) if names is not None else None
            if (
                changed is None
                or not changed <= made
                or any(name.split(".", 1)[0] in self._missed | _SPECIAL for name in changed)
                or any(name.endswith(_METADATA_NAMES) for name in changed)
            ):
                self.refuse(f"'{path}', a directory imports searched, changed in the run")
                return
            self._again[(id(self.listings), path)] = seen
            self.listings[path] = now

    def _searched_only(self, path: str) -> bool:
        """Whether directory `path` is one of the project's that imports searched and no code
        listed while the pipeline was imported."""
        return path in self._names and path not in self._listed_by_code

    def _tables(self) -> tuple[dict[str, Signature], ...]:
        return self.stats, self.lstats, self.listings

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
        self,
        decided: Plan,
        extra: Sequence[str] = (),
        exists: Sequence[str] = (),
        command: str | None = None,
    ) -> Snapshot | None:
        """The snapshot of `decided` (nothing to do), or None when it cannot be trusted; the
        `extra` paths (files the command itself keeps, e.g. `.gitignore`) are recorded too, and
        whether each of `exists` exists. `command`: the command it answers, when not the
        recorder's (`repro` plans what `status` would after its run, too)."""
        if not decided.nothing_to_do:
            return None
        self._note_modules()  # what the command imported since (Pivot's own modules)
        for made in self._made:
            self.note_path(made)
        for path in extra:
            self.note_path(path)
        if self.refused is not None:
            return None
        seen_at = self._again or {}
        # no path changed before `settled` is racy (most were not changed recently)
        settled = min([self.started, *seen_at.values()]) - max(COARSE_RACY_NS, RACY_NS)
        for table in self._tables():
            key = id(table)
            for path, found in table.items():
                if found is None or found[2] < settled:  # (a directory's is -1)
                    continue
                coarse = found[2] % 1_000_000_000 == 0
                since = seen_at.get((key, path), self.started)
                if found[2] >= since - (COARSE_RACY_NS if coarse else RACY_NS):
                    self.refuse(f"'{path}' changed too recently to be trusted")
                    return None
        return Snapshot(
            command=command or self.command,
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


@dataclasses.dataclass(frozen=True)
class Forget:
    """What a plan made again after a run forgets of what the first plan saw (the rest stands:
    keeping a signature only adds a check): the `paths`, and those below the `below`
    directories except below `except_below` (each ends with a separator)."""

    paths: frozenset[str]
    below: tuple[str, ...]
    except_below: tuple[str, ...] = ()

    def kept(self, table: dict[str, Signature]) -> dict[str, Signature]:
        """The entries of `table` not forgotten."""
        below, except_below = self.below, self.except_below
        kept = dict(table)
        for path in self.paths & kept.keys():
            del kept[path]
        for path in [p for p in kept if p.startswith(below) and not p.startswith(except_below)]:
            del kept[path]
        return kept


class _Misses:
    """The last finder on `sys.meta_path` while the pipeline is imported: the names of the
    imports no other finder found (a module by that name appearing later matters)."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        self.names.add(fullname.rpartition(".")[2])


_OWN_CODE = frozenset({__file__, observe.__file__})


_METADATA_CODE = (
    os.path.join("importlib", "metadata", "__init__.py"),
    os.path.join("importlib_metadata", "__init__.py"),
)
_METADATA_NAMES = (".dist-info", ".egg-info")
_SPECIAL = frozenset({"__init__", "sitecustomize", "usercustomize"})  # (imported unasked)


def _by_import_system() -> bool:
    """Whether the directory being listed is listed by Python's import system: a module search,
    or a search for installed distributions (`importlib.metadata`: entry points, versions),
    not by code that could act on anything it finds there."""
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename in _OWN_CODE:
        frame = frame.f_back
    if frame is None:
        return False
    filename = frame.f_code.co_filename
    return filename.startswith("<frozen importlib") or filename.endswith(_METADATA_CODE)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _names_now(path: str) -> tuple[frozenset[str] | None, Signature]:
    """(the names in directory `path`, its signature); no names when it changed meanwhile."""
    try:
        found = snapshot.listing(os.stat(path))
        names = frozenset(os.listdir(path))
        after = snapshot.listing(os.stat(path))
    except OSError:
        return None, None
    return (names if after == found else None), found


def _bytecode(path: str) -> bool:
    return f"{os.sep}__pycache__{os.sep}" in path or f"{os.sep}.pivot{os.sep}pycache" in path


def write(
    pivot_dir: Path,
    recorder: Recorder | None,
    decided: Plan,
    extra: Sequence[str] = (),
    exists: Sequence[str] = (),
    command: str | None = None,
) -> None:
    """Save the snapshot of `decided` when `recorder` can vouch for it (see `Recorder`)."""
    if recorder is None:
        return
    found = recorder.snapshot(decided, extra, exists, command)
    if os.environ.get("PIVOT_NOOP_DEBUG"):
        why = recorder.refused or ("written" if found else "the plan had something to do")
        print(f"pivot: no-op snapshot of {command or recorder.command}: {why}", file=sys.stderr)
    if found is not None:
        with contextlib.suppress(OSError):  # only a cache: the command already succeeded
            snapshot.save(pivot_dir, found)
