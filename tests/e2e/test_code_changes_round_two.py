"""End to end, the second catalogue of edits: code reached only at run time, import-time effects,
names in strings, data read on import, values that do not pickle; and edits that must re-run
nothing (hints nobody reads, reordering, the other lambda on a line, hash-seed order).

Like `test_code_changes.py`: one project is built and run once per worker; each case copies it,
applies one edit, runs the real `pivot repro --json` and compares the stages that ran with the
expected set. Every `pivot` process gets its own random PYTHONHASHSEED (Python's default), so the
second run of the built project (all skipped) also proves nothing depends on the hash seed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_code_changes import apply, cli_env, pivot, repro, write

FILES = {
    "data/prices.csv": "item,price\napple,3\npear,12\nfig,25\n",
    "data/orders.txt": "apple 2\npear 1\nfig 4\n",
    "config/promo.json": '{"days": 3}',
    "pipeline.py": """
        from pivot.pipeline import Pipeline

        import shop.accessors  # registers the Series.shop accessor
        import shop.formats_extra  # registers Format subclasses
        from shop import stages

        pipeline = Pipeline("shop")
        pipeline.register(stages.shapes_area)
        pipeline.register(stages.rendered)
        pipeline.register(stages.discounted)
        pipeline.register(stages.taxed)
        pipeline.register(stages.deep)
        pipeline.register(stages.precise)
        pipeline.register(stages.seeded)
        pipeline.register(stages.cheap)
        pipeline.register(stages.promo)
        pipeline.register(stages.rated)
        pipeline.register(stages.hinted)
        pipeline.register(stages.by_name)
        pipeline.register(stages.first_lambda)
        pipeline.register(stages.tagged, params=stages.TagParams(tags={"x", "y", "z", "w"}))
    """,
    "shop/__init__.py": "",
    "shop/shapes.py": """
        class Shape:
            def area(self):
                raise NotImplementedError


        class Square(Shape):
            def __init__(self, side):
                self.side = side

            def area(self):
                return self.side * self.side
    """,
    "shop/formats.py": """
        class Format:
            REGISTRY = {}

            def __init_subclass__(cls, **kwargs):
                super().__init_subclass__(**kwargs)
                Format.REGISTRY[cls.__name__.lower()] = cls

            def render(self, text):
                return text
    """,
    "shop/formats_extra.py": """
        from shop.formats import Format


        class Upper(Format):
            def render(self, text):
                return text.upper()
    """,
    "shop/accessors.py": """
        import pandas as pd


        @pd.api.extensions.register_series_accessor("shop")
        class ShopAccessor:
            def __init__(self, series):
                self.series = series

            def discount(self):
                return self.series * 0.9
    """,
    "shop/plugins/__init__.py": "",
    "shop/plugins/tax.py": """
        def apply(value):
            return value * 1.2
    """,
    "shop/deep/__init__.py": "",
    "shop/deep/calc.py": """
        def total(values):
            return sum(values)
    """,
    "shop/settings.py": """
        import types

        DIGITS = 2
        MIN_PRICE = 10
        RATES = types.MappingProxyType({"eu": 0.2, "us": 0.1})
        ORDER = {name: len(name) for name in {"alpha", "beta", "gamma", "delta", "epsilon"}}
    """,
    "shop/noise.py": """
        import random

        UNITS = {}
        for name in ("kg", "g"):
            UNITS[name] = len(name)
        random.seed(3)
        NOISE = random.random()
    """,
    "shop/calendar.py": """
        import json

        PROMO_DAYS = json.load(open("config/promo.json"))["days"]
    """,
    "shop/rounding.py": """
        from shop import settings


        class Rounder:
            PRECISION = 0

            def round(self, value):
                return round(value, self.PRECISION)


        Rounder.PRECISION = settings.DIGITS
    """,
    "shop/helpers.py": """
        def plain(value: int) -> int:
            return value + 1


        double, triple = (lambda x: x * 2), (lambda x: x * 3)
    """,
    "shop/named.py": """
        def first():
            return "first"


        def second():
            return "second"
    """,
    "shop/stages.py": """
        import importlib
        from typing import Annotated

        import pandas as pd

        from pivot import loaders
        from pivot.outputs import Dep, Out
        from pivot.stage_def import StageParams

        from shop import calendar, helpers, named, noise, settings
        from shop.formats import Format
        from shop.rounding import Rounder

        MIN_PRICE = settings.MIN_PRICE  # read by the stage `cheap` only through its query string


        def shapes_area(shapes: Annotated[list, Dep("data/shapes.pkl", loaders.Pickle())]) -> Annotated[dict, Out("out/area.json", loaders.JSON())]:
            return {"area": sum(shape.area() for shape in shapes)}


        def rendered(orders: Annotated[str, Dep("data/orders.txt", loaders.Text())]) -> Annotated[str, Out("out/rendered.txt", loaders.Text())]:
            return Format.REGISTRY["upper"]().render(orders)


        def discounted(prices: Annotated[pd.DataFrame, Dep("data/prices.csv", loaders.CSV())]) -> Annotated[dict, Out("out/discounted.json", loaders.JSON())]:
            return {"prices": prices["price"].shop.discount().round(2).tolist()}


        def taxed(prices: Annotated[pd.DataFrame, Dep("data/prices.csv", loaders.CSV())]) -> Annotated[dict, Out("out/taxed.json", loaders.JSON())]:
            plugin = importlib.import_module("shop.plugins.tax")
            return {"prices": [round(plugin.apply(p), 2) for p in prices["price"]]}


        def deep(orders: Annotated[str, Dep("data/orders.txt", loaders.Text())]) -> Annotated[dict, Out("out/deep.json", loaders.JSON())]:
            import shop.deep.calc

            return {"total": shop.deep.calc.total(int(line.split()[1]) for line in orders.splitlines())}


        def precise(orders: Annotated[str, Dep("data/orders.txt", loaders.Text())]) -> Annotated[dict, Out("out/precise.json", loaders.JSON())]:
            return {"value": Rounder().round(len(orders) / 7)}


        def seeded(orders: Annotated[str, Dep("data/orders.txt", loaders.Text())]) -> Annotated[dict, Out("out/seeded.json", loaders.JSON())]:
            return {"noise": round(noise.NOISE, 6), "units": noise.UNITS, "lines": len(orders.splitlines())}


        def cheap(prices: Annotated[pd.DataFrame, Dep("data/prices.csv", loaders.CSV())]) -> Annotated[dict, Out("out/cheap.json", loaders.JSON())]:
            return {"items": prices.query("price >= @MIN_PRICE")["item"].tolist()}


        def promo(orders: Annotated[str, Dep("data/orders.txt", loaders.Text())]) -> Annotated[dict, Out("out/promo.json", loaders.JSON())]:
            return {"days": calendar.PROMO_DAYS, "lines": len(orders.splitlines())}


        def rated(orders: Annotated[str, Dep("data/orders.txt", loaders.Text())]) -> Annotated[dict, Out("out/rated.json", loaders.JSON())]:
            return {"eu": settings.RATES["eu"], "order": sorted(settings.ORDER)}


        def hinted(orders: Annotated[str, Dep("data/orders.txt", loaders.Text())]) -> Annotated[dict, Out("out/hinted.json", loaders.JSON())]:
            return {"value": helpers.plain(len(orders))}


        def by_name(orders: Annotated[str, Dep("data/orders.txt", loaders.Text())]) -> Annotated[dict, Out("out/by_name.json", loaders.JSON())]:
            name = "first" if orders else "second"
            return {"value": getattr(named, name)()}


        def first_lambda(orders: Annotated[str, Dep("data/orders.txt", loaders.Text())]) -> Annotated[dict, Out("out/lambda.json", loaders.JSON())]:
            return {"value": helpers.double(len(orders))}


        class TagParams(StageParams):
            tags: set[str] = set()


        def tagged(params: TagParams, orders: Annotated[str, Dep("data/orders.txt", loaders.Text())]) -> Annotated[dict, Out("out/tagged.json", loaders.JSON())]:
            return {"tags": sorted(params.tags)}
    """,
}

ALL = {
    "shapes_area",
    "rendered",
    "discounted",
    "taxed",
    "deep",
    "precise",
    "seeded",
    "cheap",
    "promo",
    "rated",
    "hinted",
    "by_name",
    "first_lambda",
    "tagged",
}

# name -> (file, old text, new text, stages expected to run)
BEHAVIOUR_EDITS: dict[str, tuple[str, str, str, set[str]]] = {
    "subclass method arriving in a pickled object": (
        "shop/shapes.py",
        "return self.side * self.side",
        "return self.side * self.side + 1",
        {"shapes_area"},
    ),
    "subclass registered by __init_subclass__": (
        "shop/formats_extra.py",
        "return text.upper()",
        "return text.upper() + '!'",
        {"rendered"},
    ),
    "pandas accessor method": (
        "shop/accessors.py",
        "self.series * 0.9",
        "self.series * 0.8",
        {"discounted"},
    ),
    "plugin loaded by importlib.import_module with a literal name": (
        "shop/plugins/tax.py",
        "value * 1.2",
        "value * 1.3",
        {"taxed"},
    ),
    "dotted import inside a stage body": (
        "shop/deep/calc.py",
        "return sum(values)",
        "return sum(values) * 2",
        {"deep"},
    ),
    "class attribute assigned below the class": (
        "shop/rounding.py",
        "Rounder.PRECISION = settings.DIGITS",
        "Rounder.PRECISION = settings.DIGITS + 1",
        {"precise"},
    ),
    "constant read by a module-level assignment": (
        "shop/settings.py",
        "DIGITS = 2",
        "DIGITS = 3",
        {"precise"},
    ),
    "module-level call": ("shop/noise.py", "random.seed(3)", "random.seed(4)", {"seeded"}),
    "registry filled by a loop": (
        "shop/noise.py",
        'for name in ("kg", "g"):',
        'for name in ("kg", "g", "lb"):',
        {"seeded"},
    ),
    "global named in a query string": (
        "shop/settings.py",
        "MIN_PRICE = 10",
        "MIN_PRICE = 20",
        {"cheap"},
    ),
    "data file read at import time": ("config/promo.json", '"days": 3', '"days": 5', {"promo"}),
    "mapping proxy value": ("shop/settings.py", '"eu": 0.2', '"eu": 0.25', {"rated"}),
    "helper body behind a hint-free edit": (
        "shop/helpers.py",
        "return value + 1",
        "return value + 2",
        {"hinted"},
    ),
    "the lambda in use on a shared line": (
        "shop/helpers.py",
        "(lambda x: x * 2)",
        "(lambda x: x * 4)",
        {"first_lambda"},
    ),
}

COSMETIC_EDITS: dict[str, tuple[str, str, str]] = {
    "type hints of a plain helper": (
        "shop/helpers.py",
        "def plain(value: int) -> int:",
        "def plain(value: float) -> float:",
    ),
    "functions reordered in a module reached by getattr": (
        "shop/named.py",
        'def first():\n    return "first"\n\n\ndef second():\n    return "second"\n',
        'def second():\n    return "second"\n\n\ndef first():\n    return "first"\n',
    ),
    "the other lambda on a shared line": (
        "shop/helpers.py",
        "(lambda x: x * 3)",
        "(lambda x: x * 5)",
    ),
    "a comment in a module-level loop": (
        "shop/noise.py",
        "    UNITS[name] = len(name)\n",
        "    # one unit per name\n    UNITS[name] = len(name)\n",
    ),
}

MAKE_SHAPES = "import pickle, sys; from shop.shapes import Square; pickle.dump([Square(2), Square(3)], open('data/shapes.pkl', 'wb'))"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project in a git repository, fully run once (per worker)."""
    root = tmp_path_factory.mktemp("shop") / "project"
    root.mkdir()
    write(root, FILES)
    subprocess.run(
        [sys.executable, "-c", MAKE_SHAPES],
        cwd=root,
        env={**cli_env(), "PYTHONPATH": str(root)},
        check=True,
    )
    subprocess.run(["git", "init", "-q"], cwd=root, check=True, capture_output=True)
    pivot(root, "init")
    assert set(repro(root).values()) == {"ran"}
    assert set(repro(root).values()) == {"skipped"}
    return root


@pytest.fixture
def project(built: Path, tmp_path: Path) -> Path:
    """A private copy of the finished project (outputs, locks, cache and state included)."""
    copy = tmp_path / "project"
    shutil.copytree(built, copy, symlinks=True)
    return copy


def ran(statuses: dict[str, str]) -> set[str]:
    assert set(statuses) == ALL
    assert "failed" not in statuses.values()
    return {name for name, status in statuses.items() if status == "ran"}


@pytest.mark.parametrize("name", list(BEHAVIOUR_EDITS))
def test_a_behaviour_edit_reruns_exactly_what_it_affects(project: Path, name: str) -> None:
    relative, old, new, expected = BEHAVIOUR_EDITS[name]
    apply(project, relative, old, new)

    assert ran(repro(project)) == expected
    assert ran(repro(project)) == set()


@pytest.mark.parametrize("name", list(COSMETIC_EDITS))
def test_a_cosmetic_edit_reruns_nothing(project: Path, name: str) -> None:
    relative, old, new = COSMETIC_EDITS[name]
    apply(project, relative, old, new)

    assert ran(repro(project)) == set()


def test_a_set_param_is_recorded_sorted(built: Path) -> None:
    recorded = json.loads((built / ".pivot/stages/tagged.lock").read_text(encoding="utf-8"))

    assert recorded["params"] == {"tags": ["w", "x", "y", "z"]}


def test_run_time_code_is_recorded_in_the_lock(built: Path) -> None:
    recorded = json.loads((built / ".pivot/stages/shapes_area.lock").read_text(encoding="utf-8"))

    assert "code:shop.shapes:Square.area" in recorded["observed"]
    assert "method:shop.shapes.Square.area" in recorded["code"]


def test_a_pickled_object_of_a_new_subclass_reruns_the_stage(project: Path) -> None:
    apply(
        project,
        "shop/shapes.py",
        "        return self.side * self.side\n",
        "        return self.side * self.side\n\n\nclass Circle(Shape):\n    def area(self):\n        return 3\n",
    )
    make = MAKE_SHAPES.replace("Square(3)", "Circle()").replace(
        "import Square", "import Circle, Square"
    )
    subprocess.run(
        [sys.executable, "-c", make],
        cwd=project,
        env={**cli_env(), "PYTHONPATH": str(project)},
        check=True,
    )
    assert ran(repro(project)) == {"shapes_area"}

    apply(project, "shop/shapes.py", "return 3", "return 4")

    assert ran(repro(project)) == {"shapes_area"}


def test_the_lock_files_do_not_depend_on_the_hash_seed_or_the_path(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`built` ran with a random seed per process; this copy, elsewhere, runs with fixed ones."""
    monkeypatch.setenv("PYTHONHASHSEED", "12345")
    copy = tmp_path / "elsewhere" / "shop"
    shutil.copytree(built, copy, symlinks=True)
    for lock in (copy / ".pivot/stages").iterdir():
        lock.unlink()
    shutil.rmtree(copy / ".pivot/cache")
    (copy / ".pivot/state.db").unlink()

    assert set(repro(copy, "--force").values()) == {"ran"}
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    assert set(repro(copy).values()) == {"skipped"}

    for lock in sorted((built / ".pivot/stages").iterdir()):
        assert (copy / ".pivot/stages" / lock.name).read_bytes() == lock.read_bytes(), lock.name
    status = json.loads(pivot(copy, "status", "--json").stdout)
    assert status == json.loads(pivot(built, "status", "--json").stdout)
