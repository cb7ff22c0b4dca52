"""Module-level data of every kind, and the less common ways code is reached."""

from __future__ import annotations

import sys

import pytest

DATA = {
    "pipeline.py": """
        import dataclasses
        import enum
        import re

        import pydantic

        import settings


        class Mode(enum.Enum):
            FAST = "fast"
            SLOW = "slow"


        @dataclasses.dataclass(frozen=True)
        class Window:
            size: int
            step: int = 1


        class Options(pydantic.BaseModel):
            name: str
            weights: list[float] = [1.0]


        class Bag:
            def __init__(self):
                self.items = {"x": 1}
                self.label = "bag"


        NUMBER = 3
        RATIO = 0.25
        WORDS = ["a", "b"]
        PAIRS = (("a", 1), ("b", 2))
        TABLE = {"k": [1, 2], "j": {"nested": True}}
        FROZEN = frozenset({1, 2, 3})
        PATTERN = re.compile("ab+", re.IGNORECASE)
        MODE = Mode.FAST
        WINDOW = Window(size=4)
        OPTIONS = Options(name="o")
        BAG = Bag()
        BLOB = b"\\x00\\x01"
        NOTHING = None


        def stage():
            return (NUMBER, RATIO, WORDS, PAIRS, TABLE, FROZEN, PATTERN, MODE, WINDOW, OPTIONS, BAG, BLOB,
                    NOTHING, settings.LEVEL)
    """,
    "settings/__init__.py": """
        from settings.values import LEVEL
    """,
    "settings/values.py": """
        LEVEL = 1
    """,
}

DATA_EDITS = {
    "int": ("NUMBER = 3", "NUMBER = 4", {"const:pipeline.NUMBER"}),
    "int to float": ("NUMBER = 3", "NUMBER = 3.0", {"const:pipeline.NUMBER"}),
    "float": ("RATIO = 0.25", "RATIO = 0.5", {"const:pipeline.RATIO"}),
    "list item": ('WORDS = ["a", "b"]', 'WORDS = ["a", "c"]', {"const:pipeline.WORDS"}),
    "list order": ('WORDS = ["a", "b"]', 'WORDS = ["b", "a"]', {"const:pipeline.WORDS"}),
    "tuple": ('("b", 2))', '("b", 3))', {"const:pipeline.PAIRS"}),
    "nested dict": ('{"nested": True}', '{"nested": False}', {"const:pipeline.TABLE"}),
    "frozenset": ("frozenset({1, 2, 3})", "frozenset({1, 2, 4})", {"const:pipeline.FROZEN"}),
    "regex flags": ("re.IGNORECASE)", "re.MULTILINE)", {"const:pipeline.PATTERN"}),
    "enum member chosen": ("MODE = Mode.FAST", "MODE = Mode.SLOW", {"const:pipeline.MODE"}),
    "enum value": (
        'FAST = "fast"',
        'FAST = "quick"',
        {"const:pipeline.MODE", "class:pipeline.Mode"},
    ),
    "dataclass field value": ("Window(size=4)", "Window(size=5)", {"const:pipeline.WINDOW"}),
    "dataclass default": (
        "step: int = 1",
        "step: int = 2",
        {"const:pipeline.WINDOW", "class:pipeline.Window"},
    ),
    "pydantic field value": ('Options(name="o")', 'Options(name="p")', {"const:pipeline.OPTIONS"}),
    "pydantic default": (
        "= [1.0]",
        "= [2.0]",
        {"const:pipeline.OPTIONS", "class:pipeline.Options"},
    ),
    "user instance attribute": (
        'self.label = "bag"',
        'self.label = "sack"',
        {"method:pipeline.Bag.__init__", "const:pipeline.BAG"},
    ),
    "bytes": ("\\x01", "\\x02", {"const:pipeline.BLOB"}),
    "none to value": ("NOTHING = None", "NOTHING = 0", {"const:pipeline.NOTHING"}),
}


@pytest.mark.parametrize("name", list(DATA_EDITS))
def test_module_level_data_changes_its_entry(projects, name):
    old, new, expected = DATA_EDITS[name]

    assert projects.changes(DATA, projects.edit(DATA, "pipeline.py", old, new)) == expected


def test_a_constant_read_through_a_package_init_follows_its_submodule(projects):
    edited = projects.edit(DATA, "settings/values.py", "LEVEL = 1", "LEVEL = 2")

    assert projects.changes(DATA, edited) == {"const:settings.LEVEL"}


def test_attribute_order_of_an_instance_does_not_count(projects):
    edited = projects.edit(
        DATA,
        "pipeline.py",
        'self.items = {"x": 1}\n        self.label = "bag"',
        'self.label = "bag"\n        self.items = {"x": 1}',
    )

    assert projects.changes(DATA, edited) == {"method:pipeline.Bag.__init__"}


CODE = {
    "pipeline.py": """
        import functools

        from formats import render

        import shapes
        from shapes import Circle, Square


        @functools.lru_cache(maxsize=None)
        def cached(x):
            return x + 1


        OPS = {"neg": lambda x: -x}


        async def fetch(x):
            return x


        def stage(size: "shapes.Size") -> None:
            data = 1  # a local named like nothing global
            for helper in (Square.unit(), Circle.build().area):
                data = helper
            return cached(data), OPS["neg"](data), fetch(data), Square(2).perimeter, render(data)
    """,
    "formats.py": """
        import functools


        @functools.singledispatch
        def render(value):
            return str(value)


        @render.register
        def _(value: int):
            return f"int {value}"
    """,
    "shapes.py": """
        import dataclasses

        SIDES = 4


        @dataclasses.dataclass
        class Size:
            width: int


        class Shape:
            def describe(self):
                return "shape"

            def area(self):
                return 0


        class Square(Shape):
            corners = SIDES

            def __init__(self, side=1):
                self.side = side

            @staticmethod
            def unit():
                return Square(1)

            @property
            def perimeter(self):
                return self.side * self.corners


        class Circle(Shape):
            @classmethod
            def build(cls):
                return cls()

            def area(self):
                return 3
    """,
}

CODE_EDITS = {
    "lru_cache wrapped function": (
        "pipeline.py",
        "return x + 1",
        "return x + 2",
        {"func:pipeline.cached"},
    ),
    "lru_cache options": ("pipeline.py", "maxsize=None", "maxsize=8", {"func:pipeline.cached"}),
    "lambda in a dispatch dict": (
        "pipeline.py",
        "lambda x: -x",
        "lambda x: +x",
        {"func:pipeline.<lambda>"},
    ),
    "async function": (
        "pipeline.py",
        "async def fetch(x):\n    return x",
        "async def fetch(x):\n    return x * 2",
        {"func:pipeline.fetch"},
    ),
    "string type hint": ("shapes.py", "width: int", "width: float", {"class:shapes.Size"}),
    "base class method": (
        "shapes.py",
        'return "shape"',
        'return "a shape"',
        {"method:shapes.Shape.describe"},
    ),
    "staticmethod": (
        "shapes.py",
        "return Square(1)",
        "return Square(2)",
        {"method:shapes.Square.unit"},
    ),
    "classmethod": (
        "shapes.py",
        "return cls()",
        "return cls().area and cls()",
        {"method:shapes.Circle.build"},
    ),
    "property": (
        "shapes.py",
        "self.side * self.corners",
        "self.side * self.corners * 2",
        {"method:shapes.Square.perimeter"},
    ),
    "class attribute": (
        "shapes.py",
        "corners = SIDES",
        "corners = SIDES + 1",
        {"class:shapes.Square"},
    ),
    "constant behind a class attribute": (
        "shapes.py",
        "SIDES = 4",
        "SIDES = 5",
        {"const:shapes.SIDES"},
    ),
    "singledispatch implementation": (
        "formats.py",
        'f"int {value}"',
        'f"integer {value}"',
        {"func:formats._"},
    ),
    "base class switched": (
        "shapes.py",
        "class Circle(Shape):",
        "class Circle:",
        {"class:shapes.Circle"},
    ),
}


@pytest.mark.parametrize("name", list(CODE_EDITS))
def test_code_reached_in_less_common_ways_changes_its_entry(projects, name):
    path, old, new, expected = CODE_EDITS[name]

    assert projects.changes(CODE, projects.edit(CODE, path, old, new)) == expected


def test_a_local_variable_named_like_a_global_is_not_a_dependency(projects):
    files = {
        "pipeline.py": """
            helper = [1, 2, 3]


            def stage(helper):
                return helper
        """
    }

    found = projects.fingerprint(files)

    assert set(found.manifest) == {"stage:pipeline.stage"}


def test_library_code_is_named_not_hashed(projects):
    files = {
        "pipeline.py": """
            import json

            import numpy as np


            def stage():
                return np.mean([1, 2]), json.dumps({})
        """
    }

    found = projects.fingerprint(files)

    assert set(found.manifest) == {"stage:pipeline.stage"}
    assert set(found.packages) == {"numpy"}
    assert all(path.endswith(("pipeline.py", "__init__.py")) for path, _, _ in found.sources)


def test_package_versions_are_entries_only_when_asked(projects):
    files = {"pipeline.py": "import numpy\n\n\ndef stage():\n    return numpy.zeros(1)\n"}

    found = projects.fingerprint(files, include_packages=True)

    assert found.manifest.keys() == {"stage:pipeline.stage", "package:numpy"}
    assert found.packages["numpy"] == __import__("numpy").__version__


def test_a_namespace_package_chain_reaches_the_function(projects):
    files = {
        "pipeline.py": """
            import tasks.steps


            def stage():
                return tasks.steps.run()
        """,
        "tasks/steps.py": """
            def run():
                return 1
        """,
    }
    edited = projects.edit(files, "tasks/steps.py", "return 1", "return 2")

    assert projects.changes(files, edited) == {"func:tasks.steps.run"}


def test_a_library_imported_inside_a_stage_is_reported_not_imported(projects):
    was_imported = "pathspec" in sys.modules
    files = {
        "pipeline.py": """
            def stage():
                import pathspec

                return pathspec.GitIgnoreSpec.from_lines([])
        """
    }

    found = projects.fingerprint(files)

    assert set(found.manifest) == {"stage:pipeline.stage"}
    assert "pathspec" in found.packages
    assert any(path.endswith("pathspec/__init__.py") for path, _, _ in found.sources)
    assert ("pathspec" in sys.modules) == was_imported
