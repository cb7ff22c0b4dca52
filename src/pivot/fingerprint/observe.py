"""What a stage really does while it runs: the user code it enters and the files it opens.

`observing()` wraps a stage's run in the worker. It records each user code object the run
enters, once (`sys.monitoring` on 3.12+, where a code object's event is disabled after its first
hit; a profile hook on 3.11), and every file inside the project opened through Python (an audit
hook on `open`), telling import-time reads of user modules apart from the stage's own. The same
audit hook, started with `watch_imports()` before the user's pipeline is imported, records the
data files each user module reads at import time (`import_reads()`), which then join that
module's code identity. Audit hooks cannot be removed, so the one hook of a process reads the
active recorder from `_ACTIVE` (the only process-wide state here, by necessity).
Imports nothing of ours but the sibling `origin` module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import threading
import types
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pivot.fingerprint.origin import Origins, module_file

__all__ = [
    "Observation",
    "absolute",
    "code_reference",
    "import_reads",
    "observing",
    "paused",
    "tapping",
    "watch_imports",
]

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_UNNAMED = getattr(os, "O_TMPFILE", 0)  # opens a directory to make a file with no name in it
_WRITE_MODES = frozenset("wax+")
_SKIPPED_SUFFIXES = (".py", ".pyc", ".pyw", ".pth", ".so")
_SKIPPED_DIRS = (".pivot", ".git", "__pycache__")


@dataclasses.dataclass(eq=False)  # told apart by identity (`_ACTIVE.remove`)
class _Recorder:
    """Files opened inside `root` while active; `import_time` maps a user module file to the
    data files its module-level code read."""

    root: str
    origins: Origins
    reads: dict[str, None] = dataclasses.field(default_factory=dict)
    writes: dict[str, None] = dataclasses.field(default_factory=dict)
    import_time: dict[str, dict[str, None]] = dataclasses.field(default_factory=dict)  # absolute
    outermost: types.FrameType | None = None  # the frame that started recording (None: all)

    def opened(self, path: object, mode: object, flags: object) -> None:
        if _UNNAMED and type(flags) is int and flags & _UNNAMED == _UNNAMED:
            return  # an unnamed file (`fs.atomic_write_bytes`): it opens no file by its name
        if type(path) is str:  # the common case, without a Python-level call
            text = path
        elif isinstance(path, int):
            return
        else:
            try:
                text = os.fsdecode(path)  # type: ignore[arg-type]
            except TypeError:
                return
        full = absolute(text)
        if not full.startswith(self.root + os.sep) or full.endswith(_SKIPPED_SUFFIXES):
            return
        relative = full[len(self.root) + 1 :].replace(os.sep, "/")  # inside root, normalised
        if relative.split("/", 1)[0] in _SKIPPED_DIRS or "/__pycache__/" in relative:
            return
        importer = self._importing_module()
        if importer is not None:
            self.import_time.setdefault(importer, {})[full] = None
            return
        writing = (isinstance(mode, str) and not _WRITE_MODES.isdisjoint(mode)) or (
            mode is None and isinstance(flags, int) and bool(flags & _WRITE_FLAGS)
        )
        (self.writes if writing else self.reads)[relative] = None

    def _importing_module(self) -> str | None:
        """The file of the user module being imported whose module-level code is running."""
        frame: types.FrameType | None = sys._getframe(3)
        while frame is not None and frame is not self.outermost:
            code = frame.f_code
            if code.co_name == "<module>":
                spec = frame.f_globals.get("__spec__")
                path = os.path.abspath(code.co_filename)
                if getattr(spec, "_initializing", False) and self.origins.is_user_file(path):
                    return path
            frame = frame.f_back
        return None


def absolute(path: str) -> str:
    """`os.path.abspath(path)`, without its calls when `path` is already absolute and normal."""
    return path if _normal(path) else os.path.abspath(path)


def _normal(path: str) -> bool:
    """Whether `path` is absolute and `os.path.abspath` would leave it as it is."""
    return (
        path[:1] == os.sep
        and path[-1:] != os.sep
        and "//" not in path
        and "/./" not in path
        and "/../" not in path
        and not path.endswith(("/.", "/.."))
    )


_ACTIVE: list[_Recorder] = []  # the recorders the process's audit hook feeds (innermost last)
_HOOKED: list[bool] = []


_TAPS: list[Callable[[str, tuple[Any, ...]], None]] = []  # see `tapping`


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _TAPS:
        for tap in _TAPS:
            tap(event, args)
    if event != "open" or not _ACTIVE:
        return
    try:
        for recorder in _ACTIVE:
            recorder.opened(*args[:3])
    except Exception:  # an audit hook must never break the user's open()
        return


def _install_hook() -> None:
    if not _HOOKED:
        sys.addaudithook(_audit)
        _HOOKED.append(True)


@contextlib.contextmanager
def _recording(recorder: _Recorder) -> Iterator[_Recorder]:
    _install_hook()
    _ACTIVE.append(recorder)
    try:
        yield recorder
    finally:
        _ACTIVE.remove(recorder)


@contextlib.contextmanager
def tapping(tap: Callable[[str, tuple[Any, ...]], None]) -> Iterator[None]:
    """Call `tap(event, args)` for every audit event of the process while the block runs, from
    the process's one audit hook (`pivot.noop` records what a no-op decision read this way).
    `tap` must not raise."""
    _install_hook()
    _TAPS.append(tap)
    try:
        yield
    finally:
        _TAPS.remove(tap)


# --- import-time reads in the planning process -------------------------------------------------

_IMPORT_READS: dict[str, dict[str, None]] = {}  # user module file -> project files it read


@contextlib.contextmanager
def watch_imports(root: str) -> Iterator[None]:
    """Record the project files user modules read at import time while the body runs."""
    recorder = _Recorder(os.path.abspath(root), Origins())
    with _recording(recorder):
        yield
    for module_path, files in recorder.import_time.items():
        _IMPORT_READS.setdefault(module_path, {}).update(files)


def import_reads(module_path: str) -> tuple[str, ...]:
    """Project files (absolute paths) that the user module in `module_path` read at import
    time, as recorded by `watch_imports` or `observing`."""
    return tuple(_IMPORT_READS.get(module_path, ()))


# --- what a stage run enters -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Observation:
    """What one stage run did: user code it entered (`code:<module>:<qualname>`, sorted), and
    project files it read and wrote outside of imports, and files user modules imported during
    the run read (`file:<path>`); paths are POSIX, relative to the root."""

    code: tuple[str, ...]
    reads: tuple[str, ...]
    writes: tuple[str, ...]


_USER_FILES: dict[str, bool] = {}  # a cache: code file name as compiled -> is it user code


class _Entered:
    """Collects the user code objects entered, each once."""

    def __init__(self, origins: Origins) -> None:
        self.origins = origins
        self.codes: dict[int, types.CodeType] = {}  # by id: hashing a code object is not cheap
        self.files = _USER_FILES if origins is _origins() else {}

    def enter(self, code: types.CodeType) -> None:
        filename = code.co_filename  # library code (most of what runs) is told apart first
        user = self.files.get(filename)
        if user is None:
            user = self.files[filename] = self.origins.is_user_file(os.path.abspath(filename))
        if user:
            self.codes[id(code)] = code

    def enter_all(self, codes: Iterable[object]) -> None:
        """`enter` each code object of `codes` (the C profiler's entries: also names of
        built-ins, skipped), in one loop: a Python call each would cost more than the check."""
        files, kept = self.files, self.codes
        for code in codes:
            if type(code) is not types.CodeType:
                continue
            user = files.get(code.co_filename)
            if user is None:
                self.enter(code)
            elif user:
                kept[id(code)] = code


@contextlib.contextmanager
def observing(root: str, origins: Origins | None = None) -> Iterator[list[Observation]]:
    """Observe the body; the yielded list holds the `Observation` once the body is done."""
    origins = origins or _origins()
    entered = _Entered(origins)
    # the with statement's frame: the frames below it are the caller's, never an import's
    recorder = _Recorder(os.path.abspath(root), origins, outermost=sys._getframe(2))
    result: list[Observation] = []
    _install_hook()
    _ACTIVE.append(recorder)  # `_recording`, without a context manager of its own
    try:
        with _entering(entered):
            yield result
    finally:
        _ACTIVE.remove(recorder)
        recorder.outermost = None
    imported: set[str] = set()
    for module_path, files in recorder.import_time.items():
        _IMPORT_READS.setdefault(module_path, {}).update(files)
        imported |= {f"file:{_relative(path, recorder.root)}" for path in files}
    result.append(
        Observation(
            code=tuple(sorted({*_references(entered.codes.values()), *imported})),
            reads=tuple(sorted(recorder.reads)),
            writes=tuple(sorted(recorder.writes)),
        )
    )


def _relative(path: str, root: str) -> str:
    return os.path.relpath(path, root).replace(os.sep, "/")


_MODULE_OF_FILE: dict[str, str] = {}  # a cache: source file -> module name (sys.modules scans)


def _module_names(files: set[str]) -> dict[str, str]:
    """Module name of each file, scanning sys.modules only when a file is not known yet."""
    if not files <= _MODULE_OF_FILE.keys():
        _MODULE_OF_FILE.clear()
        for name, module in list(sys.modules.items()):
            path = module_file(module) if isinstance(module, types.ModuleType) else None
            if path is not None:
                _MODULE_OF_FILE.setdefault(path, name)
    return {f: _MODULE_OF_FILE[f] for f in files if f in _MODULE_OF_FILE}


def _references(entered: Iterable[types.CodeType]) -> tuple[str, ...]:
    codes = tuple(entered)
    files = {code.co_filename: absolute(code.co_filename) for code in codes}
    by_file = _module_names(set(files.values()))
    found: set[str] = set()
    for code in codes:
        module_name = by_file.get(files[code.co_filename])
        if module_name is not None:
            found.add(code_reference(module_name, code.co_qualname))
    with_code = {ref.split(":")[1] for ref in found if ref.startswith("code:")}
    # a module imported during the run counts by its code entered, when any was
    return tuple(sorted(r for r in found if not (r.startswith("module:") and r[7:] in with_code)))


def code_reference(module_name: str, qualname: str) -> str:
    """`code:<module>:<qualname>` of a definition; code nested in a function counts as it, and
    module-level code (an import during the run) as `module:<module>`."""
    if qualname == "<module>":
        return f"module:{module_name}"
    outer = qualname.split(".<locals>.", 1)[0]
    if outer.startswith("<"):  # a module-level lambda or comprehension: the module runs it
        return f"module:{module_name}"
    return f"code:{module_name}:{outer}"


_ORIGINS: list[Origins] = []


def _origins() -> Origins:
    """One classifier per process: whether a file is user code depends only on where it is."""
    if not _ORIGINS:
        _ORIGINS.append(Origins())
    return _ORIGINS[0]


# --- the hooks ---------------------------------------------------------------------------------

_TOOL_IDS = (
    3,
    4,
)  # sys.monitoring ids no standard tool claims (debugger 0, coverage 1, profiler 2)


def _entering(entered: _Entered) -> contextlib.AbstractContextManager[None]:
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is None:
        return _profiling(entered)
    tool = next((t for t in _TOOL_IDS if monitoring.get_tool(t) is None), None)
    if tool is None:  # another tool holds both ids: fall back to the profile hook
        return _profiling(entered)
    return _monitoring(entered, monitoring, tool)


@contextlib.contextmanager
def _monitoring(entered: _Entered, monitoring: Any, tool: int) -> Iterator[None]:
    """Python 3.12+: `sys.monitoring`, each code object's start event disabled once seen."""
    disable = monitoring.DISABLE
    enter = entered.enter

    def started(code: types.CodeType, offset: int) -> object:
        enter(code)
        return disable

    start = monitoring.events.PY_START
    monitoring.use_tool_id(tool, "pivot")
    _HOOKS.append(
        (lambda: monitoring.set_events(tool, 0), lambda: monitoring.set_events(tool, start))
    )
    try:
        monitoring.register_callback(tool, start, started)
        monitoring.set_events(tool, start)
        monitoring.restart_events()  # code disabled by an earlier stage of this process fires again
        yield
    finally:
        _HOOKS.pop()
        monitoring.set_events(tool, 0)
        monitoring.register_callback(tool, monitoring.events.PY_START, None)
        monitoring.free_tool_id(tool)


_PROFILERS: list[Any] = []  # idle C profilers, kept for the next observation

_HOOKS: list[tuple[Callable[[], object], Callable[[], object]]] = []
"""(pause, resume) of the code hook of each observation running, innermost last."""


class _Paused:
    """`paused()`, a class (a worker enters it around most outputs of most stages)."""

    __slots__ = ()

    def __enter__(self) -> None:
        if _HOOKS:
            _HOOKS[-1][0]()

    def __exit__(self, *exc: object) -> None:
        if _HOOKS:
            _HOOKS[-1][1]()


_PAUSED = _Paused()


def paused() -> contextlib.AbstractContextManager[None]:
    """Leave the body out of the running observation's code hook (files it opens are still
    recorded): for Pivot's own code that calls no user code, e.g. a built-in loader writing a
    `str`. Under Python 3.11's profile hook every Python call runs 2-3 times slower."""
    return _PAUSED


@contextlib.contextmanager
def _profiling(entered: _Entered) -> Iterator[None]:
    """Python 3.11: the C profiler on this thread (no Python call per event), a profile hook on
    threads started meanwhile; the code objects they saw called are entered."""
    import _lsprof  # the C half of cProfile: stdlib, imported only where it is used

    enter = entered.enter

    def profile(frame: types.FrameType, event: str, arg: object) -> None:
        if event == "call":
            enter(frame.f_code)

    previous = sys.getprofile()
    profiler = _PROFILERS.pop() if _PROFILERS else _lsprof.Profiler(builtins=False, subcalls=False)
    threading.setprofile(profile)
    _HOOKS.append((profiler.disable, profiler.enable))
    profiler.enable()
    try:
        yield
    finally:
        _HOOKS.pop()
        profiler.disable()
        threading.setprofile(None)  # type: ignore[arg-type]
        sys.setprofile(previous)
        entered.enter_all(entry.code for entry in profiler.getstats())
        profiler.clear()
        _PROFILERS.append(profiler)  # made once per process (nested observations: one each)
