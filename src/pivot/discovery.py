"""Loading the user's code: the project's stages (`pipeline.py`'s `pipeline`, `pivot.yaml`,
`params.yaml`), the project's modules (always from current source), and the one trimmer of
user tracebacks.

Process-wide state it touches (`sys.path`, `sys.path_hooks`, `sys.modules`) is changed only
inside `project_imports` (undone on exit) or, in a pool worker, by `add_to_sys_path` for the
worker's life. Imports of Pivot: `pivot.pipeline`, `pivot.pipeline_yaml` (only when those files
exist), `pivot.project`, `pivot.errors`.
"""

from __future__ import annotations

import _imp
import contextlib
import importlib
import importlib.machinery
import importlib.util
import marshal
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pivot.errors import DiscoveryError, PivotError
from pivot.fs import PIVOT_DIR
from pivot.pipeline import Pipeline
from pivot.project import Project

__all__ = [
    "PIPELINE_MODULE",
    "add_to_sys_path",
    "forget_user_modules",
    "load_pipeline",
    "project_imports",
    "user_traceback",
]

PIPELINE_MODULE = "pipeline"
BYTECODE_DIR = os.path.join(PIVOT_DIR, "pycache")
"""The user's bytecode when `PYTHONDONTWRITEBYTECODE` is set (relative to the project root)."""
PIVOT_YAML = "pivot.yaml"
PARAMS_FILE = "params.yaml"


_CHECKED_HASH_FLAGS = (0b11).to_bytes(4, "little")  # PEP 552: hash-based, checked on load


class _FreshSourceLoader(importlib.machinery.SourceFileLoader):
    """Loads the user's modules from bytecode only when it matches the source's content hash.

    A default .pyc is trusted when the source's mtime (whole seconds) and size match, so an
    edit within the same second that keeps the size would run stale bytecode while the
    fingerprint (read from source) says the new code ran. This loader reads and writes
    *checked hash-based* .pyc files (PEP 552) instead: always correct, and still no compile
    of unchanged modules in every process.
    """

    project_root = ""
    """When Python must not write bytecode next to the source (`PYTHONDONTWRITEBYTECODE`, common
    in containers), it goes to the project's `.pivot/pycache/` instead, so that unchanged
    modules are not compiled again by every command and every worker."""

    def get_code(self, fullname: str) -> Any:
        source_path = self.get_filename(fullname)
        source = self.get_data(source_path)
        source_hash = importlib.util.source_hash(source)
        cached = self._bytecode_path(source_path)
        header = importlib.util.MAGIC_NUMBER + _CHECKED_HASH_FLAGS + source_hash
        try:
            data = self.get_data(cached)
        except OSError:
            data = b""
        if data[:16] == header:
            code = marshal.loads(data[16:])
            # as importlib does: bytecode made in another place (a copied or moved project)
            # names its old path, and fingerprints and tracebacks must see this one
            _imp._fix_co_filename(code, source_path)  # type: ignore[attr-defined]
            return code
        code = self.source_to_code(source, source_path)
        with contextlib.suppress(OSError):
            self.set_data(cached, header + marshal.dumps(code))
        return code

    def _bytecode_path(self, source_path: str) -> str:
        root = self.project_root
        if not sys.dont_write_bytecode or not source_path.startswith(root + os.sep):
            return importlib.util.cache_from_source(source_path)
        inside = source_path[len(root) + 1 :]
        return importlib.util.cache_from_source(os.path.join(root, BYTECODE_DIR, inside))


def _fresh_hook(root: str) -> Callable[[str], Any]:
    loader = type("_FreshSourceLoader", (_FreshSourceLoader,), {"project_root": root})
    details = (loader, importlib.machinery.SOURCE_SUFFIXES)
    make_finder = importlib.machinery.FileFinder.path_hook(details)

    def hook(path: str) -> Any:
        if path != root and not path.startswith(root + os.sep):
            raise ImportError("not a project directory")
        if os.sep + "site-packages" in path or os.sep + ".venv" in path:
            raise ImportError("installed packages keep their bytecode")
        return make_finder(path)

    hook.pivot_root = root  # type: ignore[attr-defined]
    return hook


def add_to_sys_path(root: Path) -> None:
    """Put the project root first on sys.path so pipeline.py and the user's modules import,
    always from their current source (see `_FreshSourceLoader`)."""
    text = str(root)
    if not any(getattr(hook, "pivot_root", None) == text for hook in sys.path_hooks):
        sys.path_hooks.insert(0, _fresh_hook(text))
        for cached in [
            p for p in sys.path_importer_cache if p == text or p.startswith(text + os.sep)
        ]:
            del sys.path_importer_cache[cached]
    if not sys.path or sys.path[0] != text:
        if text in sys.path:
            sys.path.remove(text)
        sys.path.insert(0, text)


@contextlib.contextmanager
def project_imports(root: Path) -> Iterator[None]:
    """While inside, the project's modules import from `root` (see `add_to_sys_path`); on exit
    `sys.path`, `sys.path_hooks` and their importer cache are as they were. Modules imported
    inside stay in `sys.modules` (the caller may hold their functions)."""
    saved_path, saved_hooks = list(sys.path), list(sys.path_hooks)
    add_to_sys_path(root)
    try:
        yield
    finally:
        sys.path[:] = saved_path
        sys.path_hooks[:] = saved_hooks
        _drop_importer_cache(str(root))


def _drop_importer_cache(root: str) -> None:
    for cached in [p for p in sys.path_importer_cache if p == root or p.startswith(root + os.sep)]:
        del sys.path_importer_cache[cached]


def is_user_module(module: Any, root: Path | str) -> bool:
    """Whether `module` was loaded from a file under the project `root` (not an installed one)."""
    filename = getattr(module, "__file__", None) or ""
    return filename.startswith(str(root) + os.sep) and "site-packages" not in filename


def forget_user_modules(root: Path | str) -> None:
    """Drop `pipeline` and the user's modules already imported from `root` (another project in
    this process, or code edited since), so they load from the files as they are now."""
    for name, module in list(sys.modules.items()):
        if name == PIPELINE_MODULE or is_user_module(module, root):
            del sys.modules[name]
    importlib.invalidate_caches()


_PIVOT_DIR = str(Path(__file__).resolve().parent) + os.sep


def _is_machinery(filename: str) -> bool:
    """Frames of Pivot itself and of the import system, which users cannot act on."""
    return (
        filename.startswith(_PIVOT_DIR)
        or filename.startswith("<frozen importlib")
        or f"{os.sep}importlib{os.sep}" in filename
    )


def user_traceback(error: BaseException) -> str:
    """The formatted exception with the frames of Pivot and of the import system left out, so
    it starts at the user's code (a syntax error in the user's file shows that file and line
    first); chained exceptions are kept."""
    tb = error.__traceback__
    while tb is not None and _is_machinery(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    summary = traceback.TracebackException(type(error), error, tb)
    kept = [frame for frame in summary.stack if not _is_machinery(frame.filename)]
    summary.stack = traceback.StackSummary.from_list(kept)
    return "".join(summary.format())


def load_pipeline(project: Project) -> Pipeline:
    """The project's stages: `pipeline.py`'s `pipeline` and the stages of `pivot.yaml` (either or
    both; a name in both is an error), with the overrides of `params.yaml` applied. Inside
    `project_imports(project.root)` the change to `sys.path` is undone afterwards."""
    has_python = project.pipeline_file.is_file()
    has_yaml = (project.root / PIVOT_YAML).is_file()
    if not has_python and not has_yaml:
        raise DiscoveryError(
            f"no pipeline.py or pivot.yaml in {project.root}. Create pipeline.py and bind your "
            "stages to a module-level `pipeline = Pipeline('name')` (see docs/stages.md), or "
            "declare them in pivot.yaml (see docs/yaml.md)"
        )
    add_to_sys_path(project.root)  # no-op inside project_imports, which undoes it on exit
    forget_user_modules(project.root)
    found = _import_pipeline(project) if has_python else None
    if has_yaml:
        from pivot import pipeline_yaml

        with contextlib.redirect_stdout(sys.stderr):
            found = pipeline_yaml.load_pivot_yaml(project.root, found)
    assert found is not None
    if (project.root / PARAMS_FILE).is_file():
        from pivot import pipeline_yaml

        found = pipeline_yaml.apply_params_file(found, project.root)
    return found


def _interrupted(error: BaseException) -> bool:
    """Whether `error` was caused by a KeyboardInterrupt (Python wraps an exception raised in
    `__set_name__` in a RuntimeError: a Ctrl-C while the user's imports define classes)."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _import_pipeline(project: Project) -> Pipeline:
    """Import `<root>/pipeline.py` and return its module-level `pipeline`."""
    path = project.pipeline_file
    try:
        # Import-time prints are diagnostics: stdout stays clean for `--json` output.
        with contextlib.redirect_stdout(sys.stderr):
            module = importlib.import_module(PIPELINE_MODULE)
    except PivotError:
        raise
    except Exception as error:
        if _interrupted(error):  # Ctrl-C inside a class body's __set_name__ comes wrapped
            raise KeyboardInterrupt from error
        raise DiscoveryError(
            f"importing {path} raised {type(error).__name__}; fix the error below:\n"
            + user_traceback(error)
        ) from None
    found = getattr(module, "pipeline", None)
    if isinstance(found, Pipeline):
        return found
    others = [name for name, value in vars(module).items() if isinstance(value, Pipeline)]
    if others:
        raise DiscoveryError(
            f"{path} defines a Pipeline as '{others[0]}' but Pivot looks for `pipeline`. "
            f"Rename it: `pipeline = Pipeline(...)` (or add `pipeline = {others[0]}`)"
        )
    raise DiscoveryError(
        f"{path} defines no `pipeline`. Bind one at module level: `pipeline = Pipeline('name')` "
        "and register your stages on it"
    )
