"""Loading the project's stages: `pipeline.py` (its `pipeline`), `pivot.yaml` and `params.yaml`.

Imports of Pivot: `pivot.pipeline`, `pivot.pipeline_yaml` (only when those files exist),
`pivot.project`, `pivot.errors`.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import importlib.util
import marshal
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pivot.errors import DiscoveryError, PivotError
from pivot.pipeline import Pipeline
from pivot.project import Project

__all__ = ["PIPELINE_MODULE", "add_to_sys_path", "load_pipeline"]

PIPELINE_MODULE = "pipeline"
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

    def get_code(self, fullname: str) -> Any:
        source_path = self.get_filename(fullname)
        source = self.get_data(source_path)
        source_hash = importlib.util.source_hash(source)
        cached = importlib.util.cache_from_source(source_path)
        header = importlib.util.MAGIC_NUMBER + _CHECKED_HASH_FLAGS + source_hash
        try:
            data = self.get_data(cached)
        except OSError:
            data = b""
        if data[:16] == header:
            return marshal.loads(data[16:])
        code = self.source_to_code(source, source_path)
        if not sys.dont_write_bytecode:
            with contextlib.suppress(OSError):
                self.set_data(cached, header + marshal.dumps(code))
        return code


def _fresh_hook(root: str) -> Callable[[str], Any]:
    details = (_FreshSourceLoader, importlib.machinery.SOURCE_SUFFIXES)
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


def _forget_user_modules(root: Path) -> None:
    """Drop `pipeline` and the user's modules already imported (another project in this process,
    or code edited since), so the pipeline is always loaded from the files as they are now."""
    prefix = str(root) + "/"
    for name, module in list(sys.modules.items()):
        filename = getattr(module, "__file__", None) or ""
        if name == PIPELINE_MODULE or (
            filename.startswith(prefix) and "site-packages" not in filename
        ):
            del sys.modules[name]
    importlib.invalidate_caches()


def _user_traceback(error: BaseException, path: Path) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    keep = [
        frame
        for frame in frames
        if "importlib" not in frame.filename and "/pivot/" not in frame.filename
    ]
    lines = traceback.format_list(keep or frames)
    return "".join(lines) + "".join(traceback.format_exception_only(type(error), error))


def load_pipeline(project: Project) -> Pipeline:
    """The project's stages: `pipeline.py`'s `pipeline` and the stages of `pivot.yaml` (either or
    both; a name in both is an error), with the overrides of `params.yaml` applied."""
    has_python = project.pipeline_file.is_file()
    has_yaml = (project.root / PIVOT_YAML).is_file()
    if not has_python and not has_yaml:
        raise DiscoveryError(
            f"no pipeline.py or pivot.yaml in {project.root}. Create pipeline.py and bind your "
            "stages to a module-level `pipeline = Pipeline('name')` (see docs/stages.md), or "
            "declare them in pivot.yaml (see docs/yaml.md)"
        )
    add_to_sys_path(project.root)
    _forget_user_modules(project.root)
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
        raise DiscoveryError(
            f"importing {path} raised {type(error).__name__}; fix the error below:\n"
            + _user_traceback(error, path)
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
