"""Custom loaders: module-level frozen dataclasses work; closure-made ones, or ones not found by
their module and name, are refused."""

from __future__ import annotations

import dataclasses
import pathlib
import pickle
import sys
import textwrap
import types

import pytest

from pivot import loaders
from pivot.errors import AnnotationError, NotModuleLevelError
from pivot.pipeline import Pipeline
from tests.fixtures import defs_loaders


def test_custom_loaders_register_and_are_recorded(tmp_path: pathlib.Path) -> None:
    pipeline = Pipeline("custom", root=tmp_path)
    spec = pipeline.register(defs_loaders.uses_custom_loaders)
    assert {dep.name: dep.loader for dep in spec.deps} == {
        "lines": defs_loaders.LinesReader(),
        "shout": defs_loaders.Upper(),
    }
    assert spec.outs[0].loader == defs_loaders.Upper()
    assert pipeline.register(defs_loaders.uses_html_writer).outs[0].loader == (
        defs_loaders.HTMLWriter()
    )


def test_custom_loaders_pickle_and_work(tmp_path: pathlib.Path) -> None:
    loader = defs_loaders.Upper(suffix="!")
    assert pickle.loads(pickle.dumps(loader)) == loader
    loader.save("hi", tmp_path / "x.txt")
    assert (tmp_path / "x.txt").read_text() == "HI!"
    assert loader.load(tmp_path / "x.txt") == "hi!"
    assert loaders.supports_empty(loader)
    assert not loaders.supports_empty(defs_loaders.NoEmpty())
    assert not loaders.supports_empty(defs_loaders.LinesReader())


def test_closure_made_loader_class_is_rejected_at_registration(tmp_path: pathlib.Path) -> None:
    pipeline = Pipeline("custom", root=tmp_path)
    for stage in (defs_loaders.uses_closure_loader, defs_loaders.uses_closure_loader_dep):
        with pytest.raises(NotModuleLevelError) as info:
            pipeline.register(stage)
        message = str(info.value)
        assert f"stage '{stage.__name__}'" in message
        assert "make_loader_class.<locals>.ClosureLoader" in message
        assert "Move it to module level" in message
    assert len(pipeline) == 0


def test_loader_class_defined_in_main_is_rejected(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loader claiming module `__main__` that is not found there (exec'd in a bare dict)."""
    script: dict[str, object] = {"__name__": "__main__"}
    exec(
        textwrap.dedent(
            """
            import dataclasses
            from pivot import loaders

            @dataclasses.dataclass(frozen=True)
            class ScriptWriter(loaders.Writer[str]):
                def save(self, data, path):
                    path.write_text(data)
            """
        ),
        script,
    )
    # An importable module whose stage uses that loader in its return annotation.
    module = types.ModuleType("pivot_test_uses_main_loader")
    module.__dict__["writer"] = script["ScriptWriter"]()
    exec(
        "from typing import Annotated\n"
        "from pivot.outputs import Out\n"
        "def stage() -> Annotated[str, Out('script.txt', writer)]:\n"
        "    return 'x'\n",
        module.__dict__,
    )
    monkeypatch.setitem(sys.modules, module.__name__, module)
    with pytest.raises(NotModuleLevelError, match="not importable by its module and name") as info:
        Pipeline("script", root=tmp_path).register(module.stage)
    assert "ScriptWriter" in str(info.value)
    assert "stage 'stage'" in str(info.value)


def test_a_custom_loader_must_be_a_frozen_dataclass_to_be_hashable_and_equal() -> None:
    assert dataclasses.is_dataclass(defs_loaders.Upper())
    assert defs_loaders.Upper() == defs_loaders.Upper()
    assert defs_loaders.Upper("!") != defs_loaders.Upper()
    with pytest.raises(dataclasses.FrozenInstanceError):
        defs_loaders.Upper().suffix = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("stage", "cls"),
    [
        (defs_loaders.uses_plain_loader_incrementally, "PlainLoader"),
        (defs_loaders.uses_mutable_writer, "MutableWriter"),
    ],
)
def test_loader_that_is_not_a_frozen_dataclass_is_rejected(
    tmp_path: pathlib.Path, stage: object, cls: str
) -> None:
    with pytest.raises(AnnotationError) as info:
        Pipeline("custom", root=tmp_path).register(stage)  # type: ignore[arg-type]
    message = str(info.value)
    assert f"stage '{stage.__name__}'" in message  # type: ignore[attr-defined]
    assert f"defs_loaders.{cls} is not a frozen dataclass" in message
    assert "@dataclasses.dataclass(frozen=True)" in message


def test_subclass_of_a_builtin_loader_is_accepted(tmp_path: pathlib.Path) -> None:
    spec = Pipeline("custom", root=tmp_path).register(defs_loaders.uses_builtin_subclass)
    assert spec.outs[0].loader == defs_loaders.JSONWithSuffix()
