"""Where code comes from: user code (fingerprinted from its source) or library code (named only).

A module is user code when its file is a `.py` file outside the interpreter's stdlib and
site-packages directories, or it is the `__main__` of a notebook or IPython session (cells are
user code); built-ins, extensions and Pivot's own package are library code.
Imports nothing of ours.
"""

from __future__ import annotations

import linecache
import os
import site
import sys
import sysconfig
from types import FunctionType, ModuleType

__all__ = [
    "Distribution",
    "Origins",
    "is_pivot_name",
    "is_pivot_object",
    "module_file",
    "source_path",
    "top_level_name",
]

_LIBRARY_DIR_NAMES = frozenset({"site-packages", "dist-packages"})
_PIVOT_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
_NOT_THIRD_PARTY = frozenset(sys.stdlib_module_names) | frozenset(sys.builtin_module_names)

Distribution = tuple[str, str]  # (distribution name, version)


def is_pivot_name(module_name: str) -> bool:
    return module_name == "pivot" or module_name.startswith("pivot.")


def is_pivot_object(obj: object) -> bool:
    """A Pivot module, class, or instance of a Pivot class (a `Pipeline`)."""
    kind = obj if isinstance(obj, (type, ModuleType)) else type(obj)
    name = getattr(kind, "__module__", None) or getattr(kind, "__name__", "")
    return is_pivot_name(str(name))


def top_level_name(module_name: str) -> str:
    return module_name.partition(".")[0]


class Origins:
    """Classifies files and modules as user or library code, and names distributions; one per run."""

    def __init__(self) -> None:
        self._roots = _library_roots()
        self._files: dict[str, bool] = {}
        self._directories: dict[str, bool] = {}
        self._distributions: dict[str, Distribution | None] = {}
        self._by_import_name: dict[str, list[str]] | None = None

    def is_user_file(self, path: str) -> bool:
        known = self._files.get(path)
        if known is None:
            known = self._files[path] = self._classify(path)
        return known

    def _classify(self, path: str) -> bool:
        if path.startswith("<"):  # `<ipython-input-3-...>`: a cell typed in IPython is user code
            return path.startswith("<ipython-input-") and bool(linecache.getlines(path))
        if not path.endswith((".py", ".pyw")):
            return False
        return self.is_user_directory(path)

    def is_user_directory(self, path: str) -> bool:
        """Whether `path` lies outside the stdlib, site-packages and Pivot's own directories."""
        known = self._directories.get(path)
        if known is None:
            known = self._directories[path] = self._outside_libraries(path)
        return known

    def _outside_libraries(self, path: str) -> bool:
        real = os.path.realpath(path)
        if _LIBRARY_DIR_NAMES.intersection(real.split(os.sep)):
            return False
        return not any(real == root or real.startswith(root + os.sep) for root in self._roots)

    def is_user_module(self, module: ModuleType) -> bool:
        name = getattr(module, "__name__", "")
        if not isinstance(name, str) or is_pivot_name(name):
            return False
        path = module_file(module)
        if path is None and name == "__main__":
            return True  # a notebook or an IPython session: the user's own namespace
        if path is not None:
            return self.is_user_file(path)
        # a namespace package (a directory without __init__.py): user code if one of its
        # directories is
        directories = getattr(module, "__path__", None)
        try:
            found = [str(d) for d in directories] if directories is not None else []
        except TypeError:
            return False
        return any(self.is_user_directory(d) for d in found)

    def is_user_class(self, cls: type) -> bool:
        """A class defined in a user module."""
        module = sys.modules.get(str(getattr(cls, "__module__", "")))
        return isinstance(module, ModuleType) and self.is_user_module(module)

    def is_user_function(self, func: FunctionType) -> bool:
        """A function whose code is in a user file (never one of Pivot's own)."""
        module_name = func.__globals__.get("__name__")
        if isinstance(module_name, str) and is_pivot_name(module_name):
            return False
        return self.is_user_file(source_path(func.__code__.co_filename))

    def distribution(self, import_name: str) -> Distribution | None:
        """The installed distribution providing top-level module `import_name`, if third-party."""
        if import_name in self._distributions:
            return self._distributions[import_name]
        found = None
        if import_name not in _NOT_THIRD_PARTY and not is_pivot_name(import_name):
            found = self._find_distribution(import_name)
        self._distributions[import_name] = found
        return found

    def _find_distribution(self, import_name: str) -> Distribution | None:
        import importlib.metadata as metadata  # only when a fingerprint is computed, not on cache hits

        try:
            dist = metadata.distribution(import_name)
            provided = (dist.read_text("top_level.txt") or import_name).split()
            if import_name in provided:
                return str(dist.metadata["Name"]), str(dist.version)
        except metadata.PackageNotFoundError:
            pass
        if self._by_import_name is None:
            self._by_import_name = dict(metadata.packages_distributions())
        names = self._by_import_name.get(import_name)
        if not names:
            return None
        try:
            return names[0], metadata.version(names[0])
        except metadata.PackageNotFoundError:
            return None

    def pivot_version(self) -> str:
        import pivot  # the version the package declares (metadata would cost ~20 ms a run)

        return pivot.__version__


def source_path(filename: str) -> str:
    """A code object's file as fingerprints name it: absolute, or `<...>` as it is (a cell)."""
    return filename if filename.startswith("<") else os.path.abspath(filename)


def module_file(module: ModuleType) -> str | None:
    path = getattr(module, "__file__", None)
    return os.path.abspath(path) if isinstance(path, str) else None


def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    candidates = [paths.get(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")]
    candidates += list(getattr(site, "getsitepackages", list)())
    candidates.append(getattr(site, "getusersitepackages", str)())
    candidates.append(_PIVOT_DIR)
    roots = {os.path.realpath(c).rstrip(os.sep) for c in candidates if c}
    return tuple(sorted(roots))
