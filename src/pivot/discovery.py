"""Loading the project's `pipeline.py` and finding the `Pipeline` it binds as `pipeline`.

Imports of Pivot: `pivot.pipeline`, `pivot.project`, `pivot.errors`.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from pathlib import Path

from pivot.errors import DiscoveryError, PivotError
from pivot.pipeline import Pipeline
from pivot.project import Project

__all__ = ["PIPELINE_MODULE", "add_to_sys_path", "load_pipeline"]

PIPELINE_MODULE = "pipeline"


def add_to_sys_path(root: Path) -> None:
    """Put the project root first on sys.path so pipeline.py and the user's modules import."""
    text = str(root)
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
    """Import `<root>/pipeline.py` and return its module-level `pipeline`."""
    path = project.pipeline_file
    if not path.is_file():
        raise DiscoveryError(
            f"no pipeline.py in {project.root}. Create it and bind your stages to a module-level "
            "`pipeline = Pipeline('name')` (see docs/stages.md)"
        )
    add_to_sys_path(project.root)
    _forget_user_modules(project.root)
    try:
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
