"""The second catalogue of edits: import-time effects, names in strings, imports by literal name,
hints nobody reads, reordering, lambdas on one line, values without pickling, hash seeds."""

from __future__ import annotations

import pytest

PROJECT = {
    "pipeline.py": """
        import importlib
        import types
        from typing import Annotated

        import settings
        from shapes import Base, helpers

        MIN_PRICE = 10
        RATE = 2
        UNUSED_NAME = 1
        LIMITS = types.MappingProxyType({"low": 1, "high": 9})
        INC, DBL = (lambda x: x + 1), (lambda x: x * 2)
        ORDERED = {name: len(name) for name in {"alpha", "beta", "gamma", "delta"}}


        def plain(value: int) -> int:
            return value + 1


        def stage(frame: Annotated[int, "hint"]) -> int:
            import pkg.sub.deep

            plugin = importlib.import_module("plugins.extra")
            rows = frame.query("price >= @MIN_PRICE")
            rows = rows.eval("price * RATE")
            text = "UNUSED_NAME is just text"
            return (
                pkg.sub.deep.compute(rows), plugin.run(), Base.PRECISION, plain(1), LIMITS["high"],
                INC(1), ORDERED, helpers.getter(), text,
            )
    """,
    "settings.py": """
        import json

        DIGITS = 3
        REGISTRY = {}
        for name in ("a", "b"):
            REGISTRY[name] = name.upper()
        json.dumps(REGISTRY)
    """,
    "shapes/__init__.py": "",
    "shapes/helpers.py": """
        def getter():
            return first()


        def first():
            return 1


        def second():
            return 2
    """,
    "shapes/base.py": "",
    "shapes.py": "",
    "pkg/__init__.py": "",
    "pkg/sub/__init__.py": "",
    "pkg/sub/deep.py": """
        def compute(rows):
            return rows
    """,
    "plugins/__init__.py": "",
    "plugins/extra.py": """
        def run():
            return "plugin"
    """,
}
del PROJECT["shapes.py"], PROJECT["shapes/base.py"]
PROJECT["shapes/__init__.py"] = """
    import settings
    from shapes import helpers


    class Base:
        PRECISION = 1


    Base.PRECISION = settings.DIGITS
"""


def changes(projects, path, old, new):
    return projects.changes(PROJECT, projects.edit(PROJECT, path, old, new))


def test_a_class_attribute_assigned_below_the_class_counts(projects):
    found = changes(
        projects, "shapes/__init__.py", "Base.PRECISION = settings", "Base.PRECISION = 1 + settings"
    )

    assert "effects:shapes" in found


def test_a_constant_read_by_a_module_level_statement_counts(projects):
    assert changes(projects, "settings.py", "DIGITS = 3", "DIGITS = 4") == {"const:settings.DIGITS"}


def test_a_module_level_loop_and_call_count(projects):
    assert "effects:settings" in changes(projects, "settings.py", '("a", "b")', '("a", "b", "c")')
    edited = changes(
        projects, "settings.py", "json.dumps(REGISTRY)", "json.dumps(REGISTRY, indent=1)"
    )
    assert edited == {"effects:settings"}


def test_names_in_query_and_eval_strings_count(projects):
    assert "const:pipeline.MIN_PRICE" in changes(
        projects, "pipeline.py", "MIN_PRICE = 10", "MIN_PRICE = 11"
    )
    assert "const:pipeline.RATE" in changes(projects, "pipeline.py", "RATE = 2", "RATE = 3")


def test_a_name_in_plain_text_is_not_a_read(projects):
    assert changes(projects, "pipeline.py", "UNUSED_NAME = 1", "UNUSED_NAME = 2") == set()


def test_a_dotted_import_inside_the_stage_reaches_the_leaf_module(projects):
    assert changes(projects, "pkg/sub/deep.py", "return rows", "return rows * 2") == {
        "func:pkg.sub.deep.compute"
    }


def test_a_module_imported_by_a_literal_name_counts_whole(projects):
    found = changes(projects, "plugins/extra.py", 'return "plugin"', 'return "plugin 2"')

    assert found == {"module:plugins.extra", "func:plugins.extra.run"}


def test_hints_of_a_plain_helper_do_not_count(projects):
    assert (
        changes(
            projects,
            "pipeline.py",
            "def plain(value: int) -> int:",
            "def plain(value: float) -> float:",
        )
        == set()
    )


def test_hints_of_the_stage_count(projects):
    assert changes(
        projects, "pipeline.py", 'Annotated[int, "hint"]', 'Annotated[int, "other"]'
    ) == {"stage:pipeline.stage"}


HINTED = {
    "pipeline.py": """
        import dataclasses
        import functools
        from typing import NamedTuple, TypedDict


        @dataclasses.dataclass
        class Point:
            x: int = 0


        class Row(TypedDict):
            name: str


        class Pair(NamedTuple):
            left: int


        @functools.singledispatch
        def show(value) -> str:
            return "?"


        @show.register
        def _(value: int) -> str:
            return "int"


        def stage():
            return Point(), Row(name="a"), Pair(1), show(1)
    """
}


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("x: int = 0", "x: float = 0"),
        ("name: str", "name: bytes"),
        ("left: int", "left: str"),
        ("value: int", "value: float"),
    ],
)
def test_hints_read_at_run_time_count(projects, old, new):
    assert projects.changes(HINTED, projects.edit(HINTED, "pipeline.py", old, new))


def test_reordering_a_module_used_whole_changes_nothing(projects):
    files = {
        **PROJECT,
        "pipeline.py": PROJECT["pipeline.py"].replace(
            "helpers.getter()", "getattr(helpers, 'getter')()"
        ),
    }
    moved = projects.edit(
        files,
        "shapes/helpers.py",
        "def first():\n    return 1\n\n\ndef second():\n    return 2\n",
        "def second():\n    return 2\n\n\ndef first():\n    return 1\n",
    )

    assert projects.changes(files, moved) == set()


def test_two_lambdas_on_one_line_are_hashed_apart(projects):
    assert changes(projects, "pipeline.py", "lambda x: x * 2)", "lambda x: x * 3)") == set()
    assert changes(projects, "pipeline.py", "lambda x: x + 1)", "lambda x: x + 5)") == {
        "func:pipeline.<lambda>"
    }


def test_a_mapping_proxy_is_hashed_by_content_without_a_warning(projects):
    before = projects.fingerprint(PROJECT)

    assert not [w for w in before.warnings if "LIMITS" in w]
    assert changes(projects, "pipeline.py", '"high": 9', '"high": 8') == {"const:pipeline.LIMITS"}


REGISTERING = {
    "pipeline.py": """
        from pivot.pipeline import Pipeline


        def stage() -> None:
            return None


        pipeline = Pipeline("p")
        pipeline.register(stage)
        for name in ("a", "b"):
            pipeline.register(stage, name=name)
    """
}


def test_registering_stages_is_not_an_import_time_effect(projects):
    edited = projects.edit(REGISTERING, "pipeline.py", '("a", "b")', '("a", "b", "c")')

    assert projects.changes(REGISTERING, edited) == set()
    assert not [e for e in projects.fingerprint(REGISTERING).manifest if e.startswith("effects:")]
