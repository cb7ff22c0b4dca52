"""An edit inside a function body re-walks only the stages that reach that function: a stage
that merely imports the edited module keeps its cached manifest, unless importing the user's
modules runs any of their functions (then what the body does at import time can matter).

"Walked again" is observed as the manifests the batch stores (`DictCache.puts`): a stage whose
cached manifest still holds is not stored again."""

from __future__ import annotations

import ast
import importlib
import os
import textwrap
from pathlib import Path

import pytest

from pivot.fingerprint import Fingerprint, StageRequest, fingerprint_stages, sources, syntax
from tests.unit.fingerprint.conftest import DictCache, imported_from, resolve, rewrite, settled

pytestmark = pytest.mark.usefixtures("no_bytecode")

HELPERS = """
    def slow(x):
        return x


    def fast(x):
        return x + 0


    def pick(x):
        return x
"""


def run(
    directory: Path, cache: DictCache | None, stages: tuple[str, ...], entry: str | None = None
) -> dict[str, Fingerprint]:
    """One run: import the project (and its `entry` module, as Pivot imports pipeline.py),
    fingerprint `stages` of pipeline.py in one batch."""
    with imported_from(directory):
        if entry is not None:
            importlib.import_module(entry)
        requests = [StageRequest(name, resolve(f"pipeline:{name}")) for name in stages]
        return fingerprint_stages(requests, cache=cache, root=directory, stats=settled())


def started(projects, files: dict[str, str], stages: tuple[str, ...], entry: str | None = None):
    directory = projects.new_directory()
    projects.write(directory, files)
    cache = DictCache()
    return directory, cache, run(directory, cache, stages, entry)


TWO_HELPERS = {
    "pipeline.py": """
        import first
        import second


        def use_first(x):
            return first.f(x)


        def use_second(x):
            return second.g(x)
    """,
    "first.py": """
        def f(x):
            return x + 1
    """,
    "second.py": """
        import logging
        from pathlib import Path

        LOG = logging.getLogger(__name__)
        HERE = Path(__file__).resolve().parent


        def g(x):
            return x * 2
    """,
}
BOTH = ("use_first", "use_second")


def test_a_helper_body_edit_re_walks_only_the_stages_that_reach_the_helper(projects):
    directory, cache, before = started(projects, TWO_HELPERS, BOTH)
    assert cache.puts == 2

    rewrite(directory, "second.py", "x * 2", "x * 3")
    after = run(directory, cache, BOTH)

    assert cache.puts == 3  # use_second only: use_first imports second.py, reaches none of it
    assert projects.changed(before["use_second"], after["use_second"]) == {"func:second.g"}
    assert after == run(directory, None, BOTH)  # as computed from the sources alone

    again = run(directory, cache, BOTH)  # the next run: nothing walked, nothing stored
    assert cache.puts == 3
    assert again == after


def test_an_edit_outside_function_bodies_re_walks_every_stage_importing_the_file(projects):
    directory, cache, before = started(projects, TWO_HELPERS, BOTH)

    rewrite(directory, "second.py", "HERE = ", "LIMIT = 3\nHERE = ")
    after = run(directory, cache, BOTH)

    assert cache.puts == 4
    assert after["use_first"].manifest == before["use_first"].manifest


@pytest.mark.parametrize(
    ("patcher", "old", "new"),
    [
        (
            """
            import helpers


            def install():
                helpers.pick = helpers.slow


            install()
            """,
            "helpers.pick = helpers.slow",
            "helpers.pick = helpers.fast",
        ),
        (
            """
            import helpers

            helpers.pick = helpers.slow
            """,
            "helpers.pick = helpers.slow",
            "helpers.pick = helpers.fast",
        ),
    ],
    ids=["inside a function the module calls", "at module level"],
)
def test_a_monkeypatch_by_an_imported_module_follows_its_edit(projects, patcher, old, new):
    """patcher.py is only imported by the stage's module (the stage reaches none of its
    definitions), yet what it does at import time decides what `helpers.pick` is."""
    files = {
        "pipeline.py": """
            import helpers
            import patcher


            def stage(x):
                return helpers.pick(x)
        """,
        "helpers.py": HELPERS,
        "patcher.py": patcher,
    }
    directory, cache, before = started(projects, files, ("stage",))

    rewrite(directory, "patcher.py", old, new)
    after = run(directory, cache, ("stage",))

    assert cache.puts == 2
    assert "func:helpers.fast" in after["stage"].manifest
    assert "stage:pipeline.stage" in projects.changed(before["stage"], after["stage"])
    assert after == run(directory, None, ("stage",))


def test_a_value_computed_at_import_by_an_edited_helper_follows_the_edit(projects):
    files = {
        "pipeline.py": """
            import config


            def stage(x):
                return x * config.FACTOR
        """,
        "config.py": """
            from helpers import compute

            FACTOR = compute()
        """,
        "helpers.py": """
            def compute():
                return 2
        """,
    }
    directory, cache, before = started(projects, files, ("stage",))

    rewrite(directory, "helpers.py", "return 2", "return 3")
    after = run(directory, cache, ("stage",))

    assert cache.puts == 2
    assert projects.changed(before["stage"], after["stage"]) == {"const:config.FACTOR"}


CONFIGURED = {
    "entry.py": """
        import choose
        import pipeline

        choose.configure()
    """,
    "pipeline.py": """
        import choose
        import helpers


        def stage(x):
            return helpers.pick(x)
    """,
    "choose.py": """
        import helpers


        def configure():
            helpers.pick = helpers.slow
    """,
    "helpers.py": HELPERS,
}


def test_a_function_the_entry_module_calls_at_import_follows_its_edit(projects):
    """entry.py (the project's pipeline module, which no stage reaches) calls
    `choose.configure()`; the stage's module only imports choose.py."""
    directory, cache, before = started(projects, CONFIGURED, ("stage",), entry="entry")
    assert "func:helpers.slow" in before["stage"].manifest

    rewrite(directory, "choose.py", "helpers.slow", "helpers.fast")
    after = run(directory, cache, ("stage",), entry="entry")

    assert cache.puts == 2
    assert "func:helpers.fast" in after["stage"].manifest


def test_a_call_at_import_removed_with_an_edit_of_the_called_body_follows_the_edit(projects):
    """entry.py, which the stage does not import, stops calling `choose.configure()` in the
    same edit as a change inside configure's body: the manifest was made while importing ran
    user code, so the body edit cannot be taken for one that changes nothing the stage reads."""
    directory, cache, before = started(projects, CONFIGURED, ("stage",), entry="entry")
    assert "func:helpers.slow" in before["stage"].manifest

    rewrite(directory, "entry.py", "choose.configure()", "")
    rewrite(directory, "choose.py", "helpers.slow", "helpers.fast")
    after = run(directory, cache, ("stage",), entry="entry")

    assert cache.puts == 2
    assert "func:helpers.slow" not in after["stage"].manifest
    assert after == run(directory, None, ("stage",), entry="entry")


def test_an_edit_inside_a_method_of_a_stage_s_loader_class_follows_the_edit(projects):
    """The loader is a caller's extra object: its class's code counts though the stage's own
    code never reaches lines.py."""
    files = {
        **TWO_HELPERS,
        "lines.py": """
            import dataclasses
            import pathlib

            from pivot import loaders


            @dataclasses.dataclass(frozen=True)
            class Lines(loaders.Loader[list, list]):
                sep: str = ","

                def load(self, path: pathlib.Path) -> list:
                    return path.read_text().split(self.sep)

                def save(self, data: list, path: pathlib.Path) -> None:
                    path.write_text(self.sep.join(data))


            COMMA = Lines()
        """,
    }
    directory = projects.new_directory()
    projects.write(directory, files)
    cache = DictCache()

    def batch() -> Fingerprint:
        with imported_from(directory):
            request = StageRequest(
                "use_first",
                resolve("pipeline:use_first"),
                {"loader:dep:rows": resolve("lines:COMMA")},
            )
            found = fingerprint_stages([request], cache=cache, root=directory, stats=settled())
        return found["use_first"]

    before = batch()
    rewrite(directory, "lines.py", "split(self.sep)", "split(self.sep)[1:]")
    after = batch()

    assert cache.puts == 2
    assert {"loader:dep:rows", "method:lines.Lines.load"} <= projects.changed(before, after)


REGISTERING = {
    **TWO_HELPERS,
    "pipeline.py": """
        from typing import Annotated

        import first
        import second
        from pivot.loaders import Text
        from pivot.outputs import Dep, Out


        def use_first(a: Annotated[str, Dep("a.txt", Text())]) -> Annotated[str, Out("b.txt", Text())]:
            return str(first.f(len(a)))


        def use_second(a: Annotated[str, Dep("a.txt", Text())]) -> Annotated[str, Out("c.txt", Text())]:
            return str(second.g(len(a)))
    """,
    "entry.py": """
        import pipeline
        from pivot.pipeline import Pipeline

        stages = Pipeline("bodies")
        for stage in (pipeline.use_first,):
            stages.register(stage)
        stages.register(pipeline.use_second, name="second")
    """,
}


def test_registering_stages_at_import_runs_no_user_code(projects):
    """The usual pipeline.py: Pivot objects called with the stage functions as arguments."""
    directory, cache, _before = started(projects, REGISTERING, BOTH, entry="entry")

    rewrite(directory, "second.py", "x * 2", "x * 3")
    after = run(directory, cache, BOTH, entry="entry")

    assert cache.puts == 3
    assert after == run(directory, None, BOTH, entry="entry")


def test_the_first_run_parses_each_module_once(projects, monkeypatch):
    """Whether importing runs user code is asked when the first manifest is stored, before the
    walks of the stages of two.py: two.py is not parsed for it a first time."""
    files = {
        "first.py": TWO_HELPERS["first.py"],
        "second.py": TWO_HELPERS["second.py"],
        "one.py": """
            import first
            import second


            def use_first(x):
                return first.f(x)
        """,
        "two.py": """
            import second


            def use_second(x):
                return second.g(x)
        """,
        "entry.py": """
            import one
            import two
        """,
    }
    directory = projects.new_directory()
    projects.write(directory, files)
    parsed: list[str] = []
    for name in ("parse_module", "statement_parts"):
        real = getattr(sources, name)

        def counting(source: bytes, filename: str, real=real):
            parsed.append(os.path.basename(filename))
            return real(source, filename)

        monkeypatch.setattr(sources, name, counting)
    with imported_from(directory):
        importlib.import_module("entry")
        requests = [StageRequest(n, resolve(n)) for n in ("one:use_first", "two:use_second")]
        fingerprint_stages(requests, cache=DictCache(), root=directory, stats=settled())

    assert sorted(parsed) == ["entry.py", "first.py", "one.py", "second.py", "two.py"]


def test_the_first_body_edit_reads_only_the_edited_module(projects):
    """What importing entry.py (which no stage reaches) uses is read when the first manifests
    are stored, as whether it runs user code decides what they keep: a later body edit reads
    the edited file alone."""
    directory, cache, _before = started(projects, REGISTERING, BOTH, entry="entry")
    stored = cache.fact_puts

    rewrite(directory, "second.py", "x * 2", "x * 3")
    run(directory, cache, BOTH, entry="entry")

    assert cache.fact_puts == stored + 2  # second.py's facts and what importing it uses


SURFACE = """
    import functools

    LIMIT = 3


    @functools.lru_cache(maxsize=None)
    def helper(x, scale=2):
        '''Doc.'''
        def inner(y):
            return y + 1
        return inner(x) * scale


    class Model:
        size: int = 4

        def fit(self):
            return self.size
"""


@pytest.mark.parametrize(
    ("old", "new", "same"),
    [
        ("return inner(x) * scale", "return inner(x) * scale * 1", True),
        ("return y + 1", "return y + 2", True),
        ("'''Doc.'''", "'''Other doc.'''", True),
        ("return self.size", "return self.size + 0", True),
        ("scale=2", "scale=3", False),
        ("maxsize=None", "maxsize=8", False),
        ("size: int = 4", "size: int = 5", False),
        ("LIMIT = 3", "LIMIT = 4", False),
    ],
)
def test_what_importing_a_module_runs_excludes_only_function_bodies(old, new, same):
    def surface(text: str) -> bytes:
        source = textwrap.dedent(text).lstrip("\n").encode()
        return syntax.surface_text(syntax.parse_module(source, "m.py"))

    before = surface(SURFACE)
    assert (surface(SURFACE.replace(old, new)) == before) is same


@pytest.mark.parametrize(
    ("statement", "calls", "dynamic"),
    [
        ("x = compute(1)", [("compute",)], False),
        ("pipeline.register(stages.train, name='t')", [("pipeline", "register")], False),
        ("v = getattr(module, 'f')()", [("getattr",)], True),
        ("v = eval('f()')", [("eval",)], True),
        ("handlers[0]()", [("handlers",)], False),
    ],
)
def test_the_names_a_statement_calls_at_import_are_told_apart(statement, calls, dynamic):
    names = syntax.surface_names(ast.parse(statement).body[0])
    assert names is not None
    assert names.calls == calls
    assert names.dynamic is dynamic


TRICKY = '''
TEXT = """
x = 1
def not_code():
"""
CALLS = [
    1,
    2,
]
if CALLS:
    pipeline.register(stages.a)
else:
    pipeline.register(stages.b)
@decorated
def f(x):
    return x
try:
    import fast
except ImportError:
    fast = None
finally:
    done = True
total = (1 +
2)
pipeline.register(stages.c, name="c")
'''


def test_a_large_module_parsed_in_parts_gives_the_statements_parsed_at_once():
    source = ("# -*- coding: utf-8 -*-\n" + TRICKY * 4000).encode()
    assert len(source) > syntax._PART_BYTES
    parts = list(syntax.statement_parts(source, "big.py"))

    assert len(parts) > 1
    whole = ast.parse(source).body
    read = [s for part in parts for s in part]
    assert len(read) == len(whole)
    for statement, expected in zip(read, whole):  # a whole call line comes as its names
        if isinstance(statement, syntax.SurfaceNames):
            assert statement == syntax.surface_names(expected)
        else:
            assert syntax.dump(statement) == syntax.dump(expected)
    assert any(isinstance(s, syntax.SurfaceNames) for s in read)
