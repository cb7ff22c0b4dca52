"""Source files read by a fingerprint: their memoised stats, their parsed syntax, import closures.

Imports nothing of ours but the sibling `origin` and `syntax` modules.
"""

from __future__ import annotations

import collections
import linecache
import os
import sys
import time
import types
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Protocol, TypeVar

from pivot.fingerprint import facts as facts_module
from pivot.fingerprint.facts import FunctionFacts, ModuleFacts, SurfaceFacts
from pivot.fingerprint.observe import import_reads
from pivot.fingerprint.origin import Origins, module_file
from pivot.fingerprint.syntax import ImportRef, ModuleSyntax, parse_module, statement_parts

__all__ = [
    "MISSING_STAT",
    "FactsStore",
    "SourceStats",
    "Sources",
    "absolute_import",
    "process_start_ns",
]

MISSING_STAT = (-1, -1)
_T = TypeVar("_T")
# A file whose mtime is this close to the moment its code was loaded may be rewritten within the
# same timestamp tick: a manifest read from it is used, but not cached.
_RACY_NS = 100_000_000
_RACY_WHOLE_SECOND_NS = 2_000_000_000
# A file this small is read whole (its facts) when what importing it uses is asked first.
_SMALL = 50_000


class SourceStats:
    """The memo of one run: `os.stat` (mtime_ns, size) per source file, taken once.

    Make one per run (one plan) and pass it to every fingerprint call of that run; on a cache
    miss it also keeps the run's parsed sources and reached nodes (`shared`). `loaded_ns` is a
    `time.time_ns()` taken before the user's code was imported (default: this process's start
    time); a file modified after it is not settled, so a manifest read from it is not cached.
    """

    __slots__ = ("_interactive", "_loaded_ns", "_settled", "_stats", "shared")

    def __init__(self, *, loaded_ns: int | None = None) -> None:
        self._stats: dict[str, tuple[int, int]] = {}
        self._settled: dict[str, bool] = {}
        self._interactive: set[str] = set()
        self._loaded_ns = loaded_ns
        self.shared: dict[str, object] = {}

    @property
    def loaded_ns(self) -> int:
        if self._loaded_ns is None:
            self._loaded_ns = process_start_ns()
        return self._loaded_ns

    def get(self, path: str) -> tuple[int, int]:
        found = self._stats.get(path)
        if found is None:
            try:
                result = os.stat(path)
            except OSError:
                found = MISSING_STAT
            else:
                found = (result.st_mtime_ns, result.st_size)
            self._stats[path] = found
        return found

    def mark_interactive(self, path: str) -> None:
        """`path` names a notebook or IPython cell (source in `linecache`, no file to stat)."""
        self._interactive.add(path)
        self._settled.pop(path, None)

    def is_settled(self, path: str) -> bool:
        """Whether the file was last written well before its code was loaded (safe to cache);
        never for an interactive cell, which has no stat to tell an edit by."""
        known = self._settled.get(path)
        if known is None:
            known = self._settled[path] = self._is_settled(path)
        return known

    def _is_settled(self, path: str) -> bool:
        if path in self._interactive:
            return False
        mtime_ns, _size = self.get(path)
        if mtime_ns < 0:
            return True
        whole_second = mtime_ns % 1_000_000_000 == 0
        margin = _RACY_WHOLE_SECOND_NS if whole_second else _RACY_NS
        return mtime_ns < self.loaded_ns - margin


def _is_cell(name: str) -> bool:
    """A `linecache` entry of IPython (`<ipython-input-...>`) or a Jupyter kernel (a `.py` name
    that is not a file on disk)."""
    if name.startswith("<ipython-input-"):
        return True
    return name.endswith(".py") and os.path.isabs(name) and not os.path.exists(name)


def _source_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        lines = linecache.getlines(path)
        if not lines:
            raise
        return "".join(lines).encode("utf-8")


def process_start_ns() -> int:
    """Wall-clock start of this process (Linux /proc), else now."""
    now = time.time_ns()
    try:
        with open("/proc/self/stat", "rb") as handle:
            fields = handle.read().rpartition(b")")[2].split()
        ticks = int(fields[19])
        since_boot_ns = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    except (OSError, ValueError, IndexError, AttributeError):
        return now
    started_since_boot_ns = ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    # ticks are coarse (10 ms at most): round the start down by one more tick's worth
    return now - (since_boot_ns - started_since_boot_ns) - 10_000_000


class Sources:
    """Parsed user modules, their facts and their import closures, memoised for one run.

    With a `store` (the manifest cache), each file's facts are kept between runs by its
    (mtime_ns, size): a file that did not change is not parsed again (see `facts`). Parsed
    trees (about 80 bytes a byte of source) are kept only for the most recently used files,
    up to `TREE_BUDGET` bytes of source; facts are small and kept for the run.
    """

    TREE_BUDGET = 1_000_000

    def __init__(
        self, stats: SourceStats, origins: Origins, store: FactsStore | None = None
    ) -> None:
        self.stats = stats
        self.origins = origins
        self.store = store
        self._trees: collections.OrderedDict[str, tuple[ModuleSyntax, int]] = (
            collections.OrderedDict()
        )
        self._tree_bytes = 0
        self._unparsable: set[str] = set()
        self._facts: dict[str, ModuleFacts | None] = {}
        self._changed: set[str] = set()  # files whose facts were read from their syntax
        self._uses: dict[str, tuple[SurfaceFacts, ...] | None] = {}
        self._whole: set[str] = set()  # files whose import uses are read from their facts
        self._uses_changed: set[str] = set()  # files whose uses alone were read from syntax
        self._edges: dict[str, tuple[str, ...]] = {}
        self._closures: dict[str, frozenset[str]] = {}
        self._modules: dict[str, ModuleType] = {}  # file -> the module loaded from it
        self._modules_seen = 0  # len(sys.modules) when `_modules` was last filled from it

    def syntax(self, path: str) -> ModuleSyntax | None:
        """The parsed file (stat taken before reading), or None if unreadable.

        Code typed into IPython or a notebook has no file: its source comes from the cell cache
        in `linecache`, and a manifest read from it is never cached (see `SourceStats`).
        """
        known = self._trees.get(path)
        if known is not None:
            self._trees.move_to_end(path)
            return known[0]
        if path in self._unparsable:
            return None
        if self.stats.get(path) == MISSING_STAT and linecache.getlines(path):
            self.stats.mark_interactive(path)
        try:
            source = _source_bytes(path)
            parsed: ModuleSyntax | None = parse_module(source, path)
        except Exception:  # unreadable, not Python, too deeply nested...: no source to use
            parsed = None
        if parsed is None:
            self._unparsable.add(path)
            return None
        self._trees[path] = (parsed, len(source))
        self._tree_bytes += len(source)
        while self._tree_bytes > self.TREE_BUDGET and len(self._trees) > 1:
            _path, (_tree, size) = self._trees.popitem(last=False)
            self._tree_bytes -= size
        return parsed

    def facts(self, path: str) -> ModuleFacts | None:
        """The file's facts: stored ones while its (mtime_ns, size) is unchanged, else read
        from its syntax; None if it cannot be parsed."""
        if path not in self._facts:
            self._facts[path] = self._read(
                path, _facts_key, facts_module.unpack, self._module_facts, self._changed
            )
        return self._facts[path]

    def import_uses(self, path: str) -> tuple[SurfaceFacts, ...] | None:
        """What importing the file uses (`facts.import_uses`): from its facts when they were
        read from its syntax this run, else stored ones while its (mtime_ns, size) is unchanged
        (stored facts unpack each definition only when it is read), else from its facts if
        known or if the file is small or read whole this run (`read_whole`), else read from
        its syntax alone; None if it cannot be parsed."""
        if path not in self._uses:
            known = self._facts.get(path)
            self._uses[path] = (
                facts_module.import_uses(known)
                if known is not None and path in self._changed
                else self._read(
                    path,
                    _uses_key,
                    facts_module.unpack_uses,
                    self._uses_read,
                    self._uses_changed,
                )
            )
        return self._uses[path]

    def _uses_read(self, path: str) -> tuple[SurfaceFacts, ...] | None:
        known = self._facts.get(path)
        if known is None and (path in self._whole or self.stats.get(path)[1] <= _SMALL):
            known = self.facts(path)  # a walk may read them: the file is parsed once
        return facts_module.import_uses(known) if known is not None else self._module_uses(path)

    def read_whole(self, paths: Iterable[str]) -> None:
        """Files this run reads whole (the walks read their facts): when what importing one
        uses must be read from its syntax, its facts are read instead, parsing it once."""
        self._whole.update(paths)

    def _read(
        self,
        path: str,
        key: Callable[[str], str],
        unpack: Callable[[bytes, tuple[int, int]], _T | None],
        compute: Callable[[str], _T | None],
        changed: set[str],
    ) -> _T | None:
        """What `compute` reads from the file: stored (under `key`) while the file's
        (mtime_ns, size) is unchanged, else computed (and `path` added to `changed`)."""
        stat = self.stats.get(path)
        if self.store is not None and stat != MISSING_STAT:
            data = self.store.get(key(path))
            found = unpack(data, stat) if data is not None else None
            if found is not None:
                return found
        found = compute(path)
        if found is not None:
            changed.add(path)
        return found

    def _module_facts(self, path: str) -> ModuleFacts | None:
        parsed = self.syntax(path)
        return facts_module.module_facts(parsed) if parsed is not None else None

    def _module_uses(self, path: str) -> tuple[SurfaceFacts, ...] | None:
        """`import_uses` from the source alone, its tree not kept: a large pipeline module
        (100,000 registration lines) is parsed a part at a time."""
        if self.stats.get(path) == MISSING_STAT and linecache.getlines(path):
            self.stats.mark_interactive(path)
        try:
            parts = statement_parts(_source_bytes(path), path)
            return facts_module.module_uses(s for part in parts for s in part)
        except Exception:  # unreadable, not Python, too deeply nested...: no source to use
            return None

    def function_facts(
        self, path: str, func_code: types.CodeType, *, stage: bool
    ) -> FunctionFacts | None:
        """The facts of the function compiled from `func_code` (as a stage: its hints count),
        None when its file has no such definition (or cannot be parsed)."""
        module = self.facts(path)
        return facts_module.function_facts(module, func_code, stage=stage) if module else None

    def save(self) -> None:
        """Store the facts read from files' syntax during the run, of the files written well
        before it started."""
        if self.store is None:
            return
        for path in sorted(self._changed | self._uses_changed):
            found = self._facts.get(path) if path in self._changed else None
            uses = facts_module.import_uses(found) if found is not None else self._uses.get(path)
            stat = self.stats.get(path)
            if stat == MISSING_STAT or not self.stats.is_settled(path):
                continue
            if found is not None:
                self.store.put(_facts_key(path), facts_module.pack(found, stat))
            if uses is not None:  # what a quiet check reads: kept apart, it is much smaller
                self.store.put(_uses_key(path), facts_module.pack_uses(uses, stat))
        self._changed.clear()
        self._uses_changed.clear()

    def cell_defining(self, qualname: str) -> str | None:
        """The latest notebook or IPython cell (in `linecache`) defining `qualname` at its top
        level: where a class of an interactive `__main__`, which has no file, comes from."""
        for name in reversed(list(linecache.cache)):
            if not _is_cell(name):
                continue
            parsed = self.syntax(name)
            if parsed is not None and qualname in parsed.definitions:
                return name
        return None

    def closure(self, module_name: str) -> frozenset[str]:
        """Files of the user modules `module_name` imports, transitively, with parent packages.

        A value read from a module may have been computed from any of them at import time.
        """
        known = self._closures.get(module_name)
        if known is not None:
            return known
        files: set[str] = set()
        seen: set[str] = set()
        pending = [module_name]
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            seen.add(name)
            module = sys.modules.get(name)
            if not isinstance(module, ModuleType) or not self.origins.is_user_module(module):
                continue
            path = module_file(module)
            if path is not None:
                files.add(path)
                self._modules[path] = module
                files.update(import_reads(path))  # data files its module-level code read
            pending.extend(self._imported_by(name, module, path))
        result = self._closures[module_name] = frozenset(files)
        return result

    def user_module_of(self, path: str) -> ModuleType | None:
        """The user module loaded from file `path`, if one is."""
        module = self.module_of(path)
        return module if module is not None and self.origins.is_user_module(module) else None

    def module_of(self, path: str) -> ModuleType | None:
        """The module loaded from file `path`, if one is."""
        found = self._modules.get(path)
        if found is None and self._modules_seen != len(sys.modules):
            self._modules_seen = len(sys.modules)
            for module in list(sys.modules.values()):
                if isinstance(module, ModuleType):
                    where = module_file(module)
                    if where is not None:
                        self._modules.setdefault(where, module)
            found = self._modules.get(path)
        return found

    def _imported_by(self, name: str, module: ModuleType, path: str | None) -> tuple[str, ...]:
        known = self._edges.get(name)
        if known is not None:
            return known
        found: list[str] = []
        parent = name.rpartition(".")[0]
        if parent:
            found.append(parent)
        known_facts = self.facts(path) if path is not None else None
        package = _package_of(module)
        for ref in known_facts.imports if known_facts is not None else ():
            found.extend(_imported_names(ref, package))
        result = self._edges[name] = tuple(n for n in dict.fromkeys(found) if n in sys.modules)
        return result


class FactsStore(Protocol):
    """Where files' facts are kept between runs (the manifest cache is one)."""

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, value: bytes) -> None: ...


def _facts_key(path: str) -> str:
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    return f"facts/{facts_module.FORMAT}/{version}|{path}"


def _uses_key(path: str) -> str:
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    return f"facts/uses/{facts_module.FORMAT}/{version}|{path}"


def _package_of(module: ModuleType) -> str:
    package = getattr(module, "__package__", None)
    if isinstance(package, str):
        return package
    name = str(getattr(module, "__name__", ""))
    return name if hasattr(module, "__path__") else name.rpartition(".")[0]


def absolute_import(module: str, level: int, package: str) -> str | None:
    """`from {'.' * level}{module} import ...` seen from `package`, as an absolute module name."""
    if level == 0:
        return module
    parts = package.split(".") if package else []
    if level - 1 > len(parts) or not parts:
        return None
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _imported_names(ref: ImportRef, package: str) -> list[str]:
    base = absolute_import(ref.module, ref.level, package)
    if not base:
        return []
    prefixes = base.split(".")
    names = [".".join(prefixes[: i + 1]) for i in range(len(prefixes))]
    names += [f"{base}.{attr}" for attr in ref.names]
    return names
