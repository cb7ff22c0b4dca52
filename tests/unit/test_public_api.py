"""The top-level `pivot` surface: an explicit `__all__`, every name resolving, and a light import."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import subprocess
import sys
import types

import pytest

import pivot
from pivot import errors

MARKERS = ["Dep", "DirectoryOut", "IncrementalOut", "Metric", "Out", "PlaceholderDep", "Plot"]
PUBLIC_MODULES = ["errors", "loaders", "outputs", "pipeline", "stage_def"]
EXPECTED_ALL = {
    *MARKERS,
    "Pipeline",
    "StageParams",
    "__version__",
    "progress",
    *PUBLIC_MODULES,
    *errors.__all__,
}


def _public_names(module: types.ModuleType) -> set[str]:
    """Names a reader of `vars(pivot)` would take as public (internal submodules excepted:
    importing `pivot.spec` anywhere sets `pivot.spec`, which is Python's doing, not an export)."""
    names = set()
    for name, value in vars(module).items():
        if name.startswith("_"):
            continue
        internal_submodule = (
            isinstance(value, types.ModuleType)
            and value.__name__.startswith("pivot.")
            and name not in PUBLIC_MODULES
        )
        if not internal_submodule:
            names.add(name)
    return names


def test_all_is_pinned() -> None:
    assert set(pivot.__all__) == EXPECTED_ALL
    assert len(pivot.__all__) == len(set(pivot.__all__))


@pytest.mark.parametrize("name", sorted(EXPECTED_ALL))
def test_every_name_in_all_resolves(name: str) -> None:
    assert getattr(pivot, name) is not None


def test_public_names_are_exactly_all_once_everything_is_loaded() -> None:
    for name in pivot.__all__:
        getattr(pivot, name)
    assert _public_names(pivot) == set(pivot.__all__) - {"__version__"}


def test_dir_lists_all() -> None:
    assert set(EXPECTED_ALL) <= set(dir(pivot))


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        pivot.Nope  # noqa: B018


def test_names_are_the_same_objects_as_in_their_modules() -> None:
    from pivot import loaders, outputs, pipeline, stage_def

    for name in MARKERS:
        assert getattr(pivot, name) is getattr(outputs, name)
    assert pivot.Pipeline is pipeline.Pipeline
    assert pivot.StageParams is stage_def.StageParams
    assert pivot.loaders is loaders
    for name in errors.__all__:
        assert getattr(pivot, name) is getattr(errors, name)


def test_star_import_gives_the_seed_names() -> None:
    namespace: dict[str, object] = {}
    exec("from pivot import *", namespace)
    assert EXPECTED_ALL - {"__version__"} <= set(namespace)


def test_seed_import_lines_work() -> None:
    """The import block of seed 001 ('Writing Pivot Stages'), verbatim."""
    exec(
        "from typing import Annotated, TypedDict\n"
        "from pivot.outputs import Dep, Out, Metric, Plot, PlaceholderDep, IncrementalOut, "
        "DirectoryOut\n"
        "from pivot.loaders import CSV, JSON, JSONL, YAML, Text, Pickle, PathOnly, "
        "MatplotlibFigure\n"
        "from pivot.loaders import Reader, Writer, Loader\n"
        "from pivot.stage_def import StageParams\n"
        "from pivot.pipeline import Pipeline\n",
        {},
    )


@pytest.mark.parametrize("module_name", ["pivot.loaders", "pivot.outputs", "pivot.stage_def"])
def test_public_modules_declare_all_and_every_entry_resolves(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.__all__
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.__all__ lists missing {name}"


def test_pipeline_module_exports_pipeline() -> None:
    from pivot import pipeline

    assert pipeline.__all__ == ["Pipeline"]
    assert inspect.isclass(pipeline.Pipeline)


# --- import weight ---------------------------------------------------------------------------

_HEAVY = ("pandas", "matplotlib", "numpy", "yaml")


def _modules_loaded_by(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def test_defining_stages_imports_no_heavy_library() -> None:
    loaded = _modules_loaded_by(
        "import pivot\n"
        "from pivot import Out, Dep, Metric, Plot, Pipeline, StageParams, loaders\n"
        "loaders.CSV(); loaders.MatplotlibFigure(); loaders.YAML()\n"
    )
    assert not {name for name in loaded if name.split(".")[0] in _HEAVY}


def test_cli_help_does_not_import_pandas() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pivot", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Usage" in result.stdout
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert not imported & {"pandas", "matplotlib", "obstore", "dask"}
