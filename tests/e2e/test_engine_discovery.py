"""End to end: loading pipeline.py (its errors), the stages' cwd, and the user's own modules."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import E2EProject


def test_import_error_shows_the_users_traceback(project: E2EProject) -> None:
    project.gen({"helpers.py": "def load_settings():\n    raise ValueError('bad setting x=3')\n"})
    project.pipeline(
        """
        import helpers

        SETTINGS = helpers.load_settings()
        pipeline = Pipeline("broken")
        """
    )

    result = project.pivot("status", expect=2)

    assert "importing" in result.stderr and "pipeline.py" in result.stderr
    assert "ValueError: bad setting x=3" in result.stderr
    assert "helpers.py" in result.stderr and "load_settings" in result.stderr
    assert "SETTINGS = helpers.load_settings()" in result.stderr
    assert "importlib" not in result.stderr
    assert "/pivot/" not in result.stderr.replace(str(project.root), "<root>")
    project.pivot("repro", expect=2)


def test_syntax_error_in_pipeline_is_reported(project: E2EProject) -> None:
    project.gen({"pipeline.py": "from pivot.pipeline import Pipeline\npipeline = Pipeline(\n"})

    result = project.pivot("repro", expect=2)

    assert "SyntaxError" in result.stderr
    lines = result.stderr.splitlines()
    # the user's file and line come first, right after the one-line summary
    assert lines[0].startswith("error: importing ") and "raised SyntaxError" in lines[0]
    assert lines[1].strip() == f'File "{project.root / "pipeline.py"}", line 2'
    assert "importlib" not in result.stderr and "discovery.py" not in result.stderr


def test_missing_pipeline_file(project: E2EProject) -> None:
    result = project.pivot("repro", expect=2)

    assert "no pipeline.py" in result.stderr


def test_pipeline_file_without_a_pipeline(project: E2EProject) -> None:
    project.pipeline("X = 1\n")

    result = project.pivot("status", expect=2)

    assert "defines no `pipeline`" in result.stderr
    assert "pipeline = Pipeline(" in result.stderr


def test_pipeline_under_another_name(project: E2EProject) -> None:
    project.pipeline('my_pipe = Pipeline("other")\n')

    result = project.pivot("repro", expect=2)

    assert "'my_pipe'" in result.stderr
    assert "pipeline = Pipeline(...)" in result.stderr


def test_registration_errors_exit_2_with_the_message(project: E2EProject) -> None:
    project.pipeline(
        """
        def a() -> Annotated[str, Out("same.txt", loaders.Text())]:
            return "a"


        def b() -> Annotated[str, Out("same.txt", loaders.Text())]:
            return "b"


        pipeline = Pipeline("clash")
        pipeline.register(a)
        pipeline.register(b)
        """
    )

    result = project.pivot("repro", expect=2)

    assert "'same.txt'" in result.stderr and "'b'" in result.stderr and "'a'" in result.stderr
    assert "Traceback" not in result.output


CWD_PIPELINE = """
def where_a() -> Annotated[str, Out("cwd_a.txt", loaders.Text())]:
    return os.getcwd()


def where_b() -> Annotated[str, Out("cwd_b.txt", loaders.Text())]:
    return os.getcwd()


pipeline = Pipeline("cwd")
pipeline.register(where_a)
pipeline.register(where_b)
"""


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_stages_run_with_the_root_as_cwd(project: E2EProject, jobs: str) -> None:
    project.pipeline(CWD_PIPELINE)
    elsewhere = project.root / "nested" / "dir"
    elsewhere.mkdir(parents=True)

    project.pivot("repro", "-j", jobs, cwd=elsewhere)

    assert project.read("cwd_a.txt") == str(project.root)
    assert project.read("cwd_b.txt") == str(project.root)


USER_MODULES = {
    "textkit.py": "def shout(text):\n    return text.upper() + '!'\n",
    "mypkg/__init__.py": "",
    "mypkg/numbers.py": "FACTOR = 3\n\ndef triple(n):\n    return n * FACTOR\n",
    "stages/__init__.py": "",
    "stages/words.py": (
        "from typing import Annotated\n"
        "from pivot import loaders\n"
        "from pivot.outputs import Dep, Out\n"
        "import textkit\n\n\n"
        "def loud(text: Annotated[str, Dep('in.txt', loaders.Text())]) -> "
        "Annotated[str, Out('loud.txt', loaders.Text())]:\n"
        "    return textkit.shout(text)\n"
    ),
    "in.txt": "hey",
}

USER_PIPELINE = """
from mypkg import numbers
from stages.words import loud


def tripled() -> Annotated[dict, Out("tripled.json", loaders.JSON())]:
    return {"value": numbers.triple(5)}


pipeline = Pipeline("user_modules")
pipeline.register(loud)
pipeline.register(tripled)
"""


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_pipeline_imports_the_users_modules(project: E2EProject, jobs: str) -> None:
    project.gen(USER_MODULES)
    project.pipeline(USER_PIPELINE)

    result = project.pivot("repro", "-j", jobs, "--json")

    assert result.json["ok"], result.describe()
    assert project.read("loud.txt") == "HEY!"
    assert json.loads(project.read("tripled.json")) == {"value": 15}


def test_user_module_edit_is_seen_by_the_next_run(project: E2EProject) -> None:
    project.gen(USER_MODULES)
    project.pipeline(USER_PIPELINE)
    project.pivot("repro", "-j", "1")

    project.gen({"mypkg/numbers.py": "FACTOR = 4\n\ndef triple(n):\n    return n * FACTOR\n"})
    project.pivot("repro", "-j", "1", "--force")

    assert json.loads(project.read("tripled.json")) == {"value": 20}


def test_prints_while_importing_the_pipeline_keep_json_output_clean(project: E2EProject) -> None:
    project.pipeline('print("loading my pipeline")\n' + CWD_PIPELINE)

    for args in (("status", "--json"), ("repro", "-n", "--json"), ("repro", "-j", "2", "--json")):
        result = project.pivot(*args)
        assert set(result.json["stages"]) == {"where_a", "where_b"}  # stdout is only JSON
        assert "loading my pipeline" in result.stderr
