"""Objects the caller adds under its own entry names: loaders of deps and outs, params classes."""

from __future__ import annotations

import inspect
import sys

from pivot import loaders
from pivot.fingerprint import get_stage_fingerprint

PROJECT = {
    "pipeline.py": """
        import dataclasses
        import pathlib

        from pivot import loaders
        from pivot.stage_def import StageParams


        @dataclasses.dataclass(frozen=True)
        class Lines(loaders.Loader[list, list]):
            sep: str = "\\n"

            def load(self, path: pathlib.Path) -> list:
                return path.read_text().split(self.sep)

            def save(self, data: list, path: pathlib.Path) -> None:
                path.write_text(self.sep.join(data))


        class TrainParams(StageParams):
            rate: float = 0.1
            layers: list[int] = [8, 8]


        SEMICOLON = Lines(sep=";")
        COMMA = Lines(sep=",")
        CSV_DEFAULT = loaders.CSV()
        CSV_TABS = loaders.CSV(sep="\\t")


        def stage():
            return 1
    """
}

EXTRA = {
    "loader:dep:rows": "pipeline:SEMICOLON",
    "loader:out:result": "pipeline:COMMA",
    "loader:out:table": "pipeline:CSV_DEFAULT",
    "loader:out:tabs": "pipeline:CSV_TABS",
    "params:pipeline.TrainParams": "pipeline:TrainParams",
}


def test_each_extra_object_is_an_entry_under_its_given_name(projects):
    found = projects.fingerprint(PROJECT, extra=EXTRA)

    assert set(EXTRA) <= set(found.manifest)
    assert found.manifest["loader:dep:rows"] != found.manifest["loader:out:result"]
    assert found.manifest["loader:out:table"] != found.manifest["loader:out:tabs"]
    assert "class:pipeline.Lines" in found.manifest
    assert "method:pipeline.Lines.save" in found.manifest
    assert "class:pipeline.TrainParams" in found.manifest
    lines, start = inspect.getsourcelines(loaders.CSV)  # (from its decorator)
    line = start + next(i for i, text in enumerate(lines) if text.startswith("class "))
    assert found.locations["loader:out:table"].endswith(f"pivot/loaders.py:{line}")
    assert found.warnings == ()


def test_a_loader_option_changes_only_that_loader(projects):
    edited = projects.edit(PROJECT, "pipeline.py", 'Lines(sep=",")', 'Lines(sep="|")')

    assert projects.changes(PROJECT, edited, extra=EXTRA) == {"loader:out:result"}


def test_a_builtin_loader_option_changes_only_that_loader(projects):
    edited = projects.edit(PROJECT, "pipeline.py", "loaders.CSV()", "loaders.CSV(index_col=0)")

    assert projects.changes(PROJECT, edited, extra=EXTRA) == {"loader:out:table"}


def test_loader_code_changes_every_loader_of_that_class(projects):
    edited = projects.edit(
        PROJECT, "pipeline.py", "self.sep.join(data)", "self.sep.join(data) + self.sep"
    )

    assert projects.changes(PROJECT, edited, extra=EXTRA) == {
        "loader:dep:rows",
        "loader:out:result",
        "method:pipeline.Lines.save",
    }


def test_a_params_default_changes_the_params_entry(projects):
    edited = projects.edit(PROJECT, "pipeline.py", "[8, 8]", "[8, 16]")

    assert projects.changes(PROJECT, edited, extra=EXTRA) == {
        "params:pipeline.TrainParams",
        "class:pipeline.TrainParams",
    }


def test_extra_objects_without_the_stage_using_them_are_still_fingerprinted(projects):
    found = projects.fingerprint(
        PROJECT, extra={"params:pipeline.TrainParams": "pipeline:TrainParams"}
    )

    assert set(found.manifest) == {
        "stage:pipeline.stage",
        "params:pipeline.TrainParams",
        "class:pipeline.TrainParams",
    }


DECLARED = {
    "pipeline.py": """
        from typing import Annotated, TypedDict

        from pivot import loaders
        from pivot.outputs import Dep, Out, PlaceholderDep
        from pivot.stage_def import StageParams


        class Params(StageParams):
            rate: float = 0.5


        class Outputs(TypedDict):
            table: Annotated[dict, Out(["a.json", "b.json"], loaders.JSON())]


        def stage(params: Params, text: Annotated[str, Dep("in.txt", loaders.Text())]) -> Outputs:
            return {"table": [{}, {}]}


        def placeholder(base: Annotated[str, PlaceholderDep(loaders.Text())]) -> Annotated[str, Out("o.txt", loaders.Text())]:
            return base
    """
}


def test_get_stage_fingerprint_holds_the_declared_loaders_by_name_and_path_and_the_params(projects):
    directory = projects.new_directory()
    projects.write(directory, DECLARED)
    sys.path.insert(0, str(directory))
    try:
        import pipeline  # type: ignore[import-not-found]

        manifest = get_stage_fingerprint(pipeline.stage)
        placeholder = get_stage_fingerprint(pipeline.placeholder)
    finally:
        sys.path.remove(str(directory))
        sys.modules.pop("pipeline", None)

    assert {"loader:dep:text (in.txt)", "loader:out:table (a.json, b.json)"} <= set(manifest)
    assert "params:pipeline.Params" in manifest
    # a placeholder needs no path to name its loader
    assert set(placeholder) == {
        "stage:pipeline.placeholder",
        "loader:dep:base",
        "loader:out:return (o.txt)",
    }
