"""Every way stage code reaches user code or data changes exactly the entries it should."""

from __future__ import annotations

import pytest

PROJECT = {
    "pipeline.py": '''
        """The stage module of a fixture project."""
        import functools
        import json

        import consts
        import geometry.shapes
        import mathx.ops
        from helpers import clean, decorated, record
        from mathx.ops import add
        from models import Scaler
        from typesmod import Frame, Result

        SCALER = Scaler(factor=2)
        HANDLERS = {"add": add, "clean": clean}
        PIPE = [mathx.ops.negate]
        add_ten = functools.partial(add, 10)


        def make_power(exponent):
            def power(x):
                return x**exponent

            return power


        square = make_power(2)


        def unrelated(x):
            return x - 1


        def stage(frame: Frame, factor: int = 2) -> Result:
            """Docstring."""
            import lazy.mod as lazymod

            text = clean(frame.text)
            value = SCALER.fit(frame.value) * factor
            value = HANDLERS["add"](value, consts.OFFSET)
            value = PIPE[0](value)
            value = add_ten(value) + square(value)
            value += geometry.shapes.area(value)
            value += decorated(value) + lazymod.compute(value)
            return Result(text=json.dumps(text) + consts.SUFFIX, value=value, tags=sorted(consts.TAGS))
    ''',
    "helpers.py": """
        import functools
        import re

        from consts import THRESHOLD

        WORD = re.compile(r"[a-z]+")


        def trace(fn):
            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                return fn(*args, **kwargs)

            return wrapper


        def clean(text):
            return " ".join(WORD.findall(text.lower()))[:THRESHOLD] + tidy(text)


        def tidy(text):
            return deep_tidy(text)


        def deep_tidy(text):
            return text.strip()[:0]


        @trace
        def decorated(x):
            return x + 1


        def record(x):
            return x
    """,
    "consts.py": """
        BASE = 10
        THRESHOLD = BASE * 4
        OFFSET = 5
        SUFFIX = "!"
        TAGS = {"a", "b", "c"}
    """,
    "models.py": """
        class Scaler:
            def __init__(self, factor):
                self.factor = factor

            def fit(self, value):
                return self._apply(value)

            def _apply(self, value):
                return value * self.factor


        class Unused:
            def method(self):
                return 1
    """,
    "typesmod.py": """
        import dataclasses


        @dataclasses.dataclass
        class Frame:
            text: str
            value: int


        @dataclasses.dataclass
        class Result:
            text: str
            value: int
            tags: list
    """,
    "mathx/__init__.py": "",
    "mathx/ops.py": """
        def add(a, b):
            return a + b


        def negate(x):
            return -x


        def unused_op(x):
            return x
    """,
    "geometry/__init__.py": "",
    "geometry/shapes.py": """
        def area(x):
            return x * x
    """,
    "lazy/__init__.py": "",
    "lazy/mod.py": """
        def compute(x):
            return x + 2
    """,
}

EXPECTED_ENTRIES = {
    "stage:pipeline.stage",
    "class:typesmod.Frame",
    "class:typesmod.Result",
    "class:models.Scaler",
    "method:models.Scaler.__init__",
    "method:models.Scaler.fit",
    "method:models.Scaler._apply",
    "const:pipeline.SCALER",
    "const:pipeline.HANDLERS",
    "const:pipeline.PIPE",
    "const:pipeline.add_ten",
    "const:consts.OFFSET",
    "const:consts.SUFFIX",
    "const:consts.TAGS",
    "const:helpers.WORD",
    "const:helpers.THRESHOLD",
    "func:helpers.clean",
    "func:helpers.tidy",
    "func:helpers.deep_tidy",
    "func:helpers.decorated",
    "func:helpers.trace",
    "func:helpers.trace.<locals>.wrapper",
    "func:mathx.ops.add",
    "func:mathx.ops.negate",
    "func:pipeline.make_power.<locals>.power",
    "func:geometry.shapes.area",
    "func:lazy.mod.compute",
}


def test_the_manifest_names_everything_the_stage_reaches_and_nothing_else(projects):
    found = projects.fingerprint(PROJECT)

    assert set(found.manifest) == EXPECTED_ENTRIES
    assert found.warnings == ()
    assert found.locations["func:helpers.clean"] == "helpers.py:17"
    assert found.locations["stage:pipeline.stage"] == "pipeline.py:33"
    assert found.locations["const:consts.OFFSET"] == "consts.py:3"


BEHAVIOUR_EDITS = {
    "stage body": (
        "pipeline.py",
        "value = PIPE[0](value)",
        "value = PIPE[0](value) + 1",
        {"stage:pipeline.stage"},
    ),
    "stage default": (
        "pipeline.py",
        "factor: int = 2)",
        "factor: int = 3)",
        {"stage:pipeline.stage"},
    ),
    "stage signature": (
        "pipeline.py",
        "factor: int = 2)",
        "factor: int = 2, *, extra=None)",
        {"stage:pipeline.stage"},
    ),
    "stage annotation": (
        "pipeline.py",
        "factor: int = 2)",
        "factor: float = 2)",
        {"stage:pipeline.stage"},
    ),
    "library switched": (
        "pipeline.py",
        "import json\n",
        "import pickle as json\n",
        {"stage:pipeline.stage"},
    ),
    "class in type hints": (
        "typesmod.py",
        "    value: int\n\n\n@",
        "    value: float\n\n\n@",
        {"class:typesmod.Frame"},
    ),
    "imported helper": ("helpers.py", '" ".join', '"-".join', {"func:helpers.clean"}),
    "helper of a helper of a helper": (
        "helpers.py",
        "text.strip()[:0]",
        "text.strip()[:1]",
        {"func:helpers.deep_tidy"},
    ),
    "compiled regex": ("helpers.py", 'r"[a-z]+"', 'r"[a-z]*"', {"const:helpers.WORD"}),
    "constant computed from another module": (
        "consts.py",
        "BASE = 10",
        "BASE = 11",
        {"const:helpers.THRESHOLD"},
    ),
    "constant through a module": ("consts.py", "OFFSET = 5", "OFFSET = 6", {"const:consts.OFFSET"}),
    "set member": ("consts.py", '{"a", "b", "c"}', '{"a", "b", "d"}', {"const:consts.TAGS"}),
    "method called by a method": (
        "models.py",
        "value * self.factor",
        "value * self.factor + 1",
        {"method:models.Scaler._apply"},
    ),
    "instance attribute": (
        "pipeline.py",
        "Scaler(factor=2)",
        "Scaler(factor=3)",
        {"const:pipeline.SCALER"},
    ),
    "function in a dispatch dict": (
        "mathx/ops.py",
        "return a + b",
        "return a - b",
        {"func:mathx.ops.add"},
    ),
    "dispatch dict entry": (
        "pipeline.py",
        '"clean": clean}',
        '"clean": record}',
        {"const:pipeline.HANDLERS", "func:helpers.record"},
    ),
    "function in a list": ("mathx/ops.py", "return -x", "return -x * 2", {"func:mathx.ops.negate"}),
    "partial bound argument": (
        "pipeline.py",
        "partial(add, 10)",
        "partial(add, 11)",
        {"const:pipeline.add_ten"},
    ),
    "closure variable": (
        "pipeline.py",
        "make_power(2)",
        "make_power(3)",
        {"func:pipeline.make_power.<locals>.power"},
    ),
    "closure body": (
        "pipeline.py",
        "x**exponent",
        "x**exponent + 1",
        {"func:pipeline.make_power.<locals>.power"},
    ),
    "module attribute chain": (
        "geometry/shapes.py",
        "x * x",
        "x * x * x",
        {"func:geometry.shapes.area"},
    ),
    "decorated helper": ("helpers.py", "return x + 1", "return x + 2", {"func:helpers.decorated"}),
    "decorator code": (
        "helpers.py",
        "return fn(*args, **kwargs)",
        "return fn(*args, **kwargs) * 2",
        {"func:helpers.trace", "func:helpers.trace.<locals>.wrapper"},
    ),
    "import inside the function": ("lazy/mod.py", "x + 2", "x + 3", {"func:lazy.mod.compute"}),
    "re-export switched": (
        "pipeline.py",
        "from mathx.ops import add\n",
        "from mathx.ops import unused_op as add\n",
        {
            "const:pipeline.HANDLERS",
            "const:pipeline.add_ten",
            "func:mathx.ops.add",
            "func:mathx.ops.unused_op",
        },
    ),
}


@pytest.mark.parametrize("name", list(BEHAVIOUR_EDITS))
def test_a_behaviour_edit_changes_exactly_its_entries(projects, name):
    path, old, new, expected = BEHAVIOUR_EDITS[name]

    assert projects.changes(PROJECT, projects.edit(PROJECT, path, old, new)) == expected


COSMETIC_EDITS = {
    "comment in the stage": (
        "pipeline.py",
        "    text = clean(frame.text)\n",
        "    # clean it\n    text = clean(frame.text)  # here\n",
    ),
    "stage docstring": (
        "pipeline.py",
        '"""Docstring."""',
        '"""Another docstring,\n    on two lines."""',
    ),
    "module docstring": (
        "pipeline.py",
        '"""The stage module of a fixture project."""',
        '"""Reworded."""',
    ),
    "formatting": (
        "pipeline.py",
        'value = HANDLERS["add"](value, consts.OFFSET)',
        "value = HANDLERS['add'](\n        value,\n        consts.OFFSET,\n    )",
    ),
    "helper docstring added": (
        "helpers.py",
        "def tidy(text):\n",
        'def tidy(text):\n    """Tidy up."""\n',
    ),
    "lines shift above a decorated helper": (
        "helpers.py",
        "import functools\n",
        "# a long comment\n\n\n\nimport functools\n",
    ),
    "unrelated function edited": ("pipeline.py", "return x - 1", "return x - 2"),
    "unused import edited": (
        "helpers.py",
        "def record(x):\n    return x",
        "def record(x):\n    return x * 3",
    ),
    "unused function in a used module": (
        "mathx/ops.py",
        "def unused_op(x):\n    return x",
        "def unused_op(x):\n    return 0",
    ),
    "unused class in a used module": ("models.py", "return 1", "return 2"),
    "function added": (
        "helpers.py",
        "def record(x):",
        "def brand_new(y):\n    return y\n\n\ndef record(x):",
    ),
    "definitions reordered": (
        "mathx/ops.py",
        "def add(a, b):\n    return a + b\n\n\ndef negate(x):\n    return -x\n",
        "def negate(x):\n    return -x\n\n\ndef add(a, b):\n    return a + b\n",
    ),
    "no-op pass": (
        "helpers.py",
        "    return deep_tidy(text)\n",
        "    pass\n    return deep_tidy(text)\n",
    ),
    "unused constant": ("consts.py", 'SUFFIX = "!"', 'SUFFIX = "!"\nUNUSED = [1, 2]'),
    "set literal reordered": ("consts.py", '{"a", "b", "c"}', '{"c", "a", "b"}'),
}


@pytest.mark.parametrize("name", list(COSMETIC_EDITS))
def test_a_cosmetic_edit_changes_nothing(projects, name):
    path, old, new = COSMETIC_EDITS[name]

    assert projects.changes(PROJECT, projects.edit(PROJECT, path, old, new)) == set()
