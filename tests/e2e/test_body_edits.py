"""End to end: an edit inside a helper's body re-runs exactly the stages that reach the helper,
also when the stages of the other helpers keep their cached manifests (their module imports the
edited file), and also when the pipeline module runs a user function at import time."""

from __future__ import annotations

import os
import textwrap
import time

from tests.e2e.conftest import E2EProject

STAGES = """
    from typing import Annotated

    from pivot.loaders import Text
    from pivot.outputs import Dep, Out

    from helpers import first, second


    def use_first(text: Annotated[str, Dep("data/in.txt", Text())]) -> Annotated[str, Out("first.txt", Text())]:
        return first.shout(text)


    def use_second(text: Annotated[str, Dep("data/in.txt", Text())]) -> Annotated[str, Out("second.txt", Text())]:
        return second.whisper(text)
"""

PIPELINE = """
    from pivot.pipeline import Pipeline

    import stages

    pipeline = Pipeline("bodies")
    pipeline.register(stages.use_first)
    pipeline.register(stages.use_second)
"""


def _write(project: E2EProject, files: dict[str, str]) -> None:
    """Write `files`, dated a minute ago: settled, so their manifests are cached (a file
    written just before a run is read, never cached, and would hide a stale cache)."""
    project.gen({path: textwrap.dedent(text).lstrip("\n") for path, text in files.items()})
    for path in files:
        _age(project, path, 60)


def _ran(result: dict[str, str]) -> set[str]:
    return {name for name, status in result.items() if status == "ran"}


def _edit(project: E2EProject, relative: str, old: str, new: str) -> None:
    """Edit a file, dated 30 s later than the first version, settled too."""
    text = project.read(relative)
    assert old in text
    project.gen({relative: text.replace(old, new)})
    _age(project, relative, 30)


def _age(project: E2EProject, relative: str, seconds: int) -> None:
    when = time.time() - seconds
    os.utime(project.root / relative, (when, when))


def test_a_helper_body_edit_reruns_only_the_stage_calling_it(project: E2EProject) -> None:
    _write(
        project,
        {
            "data/in.txt": "Hello\n",
            "helpers/__init__.py": "",
            "helpers/first.py": """
                def shout(text):
                    return text.upper()
            """,
            "helpers/second.py": """
                import logging

                LOG = logging.getLogger(__name__)


                def whisper(text):
                    return text.lower()
            """,
            "stages.py": STAGES,
            "pipeline.py": PIPELINE,
        },
    )
    assert _ran(project.repro_json()) == {"use_first", "use_second"}

    _edit(project, "helpers/second.py", "text.lower()", "text.lower().strip()")
    assert _ran(project.repro_json()) == {"use_second"}
    assert project.read("second.txt") == "hello"
    assert _ran(project.repro_json()) == set()

    _edit(project, "helpers/first.py", "text.upper()", "text.upper() * 2")
    assert _ran(project.repro_json()) == {"use_first"}
    assert project.read("first.txt") == "HELLO\nHELLO\n"


def _configured(second: str, assigned: str) -> dict[str, str]:
    """A project whose pipeline.py calls `choose.configure()`, which sets `second.whisper` to
    `second.<assigned>`; the stages' module only imports choose.py."""
    return {
        "data/in.txt": "Hello\n",
        "helpers/__init__.py": "",
        "helpers/first.py": """
            def shout(text):
                return text.upper()
        """,
        "helpers/second.py": second,
        "helpers/choose.py": f"""
            from helpers import second


            def configure():
                second.whisper = second.{assigned}
        """,
        "stages.py": "from helpers import choose  # noqa: F401\n" + textwrap.dedent(STAGES),
        "pipeline.py": textwrap.dedent(PIPELINE)
        + "\nfrom helpers import choose\n\nchoose.configure()\n",
    }


def test_a_function_the_pipeline_module_calls_at_import_reruns_what_it_changes(
    project: E2EProject,
) -> None:
    """pipeline.py calls `choose.configure()`, which decides what `second.whisper` is; the
    stages' module only imports choose.py."""
    second = """
        def lower(text):
            return text.lower()


        def title(text):
            return text.title() + "!"


        whisper = lower
    """
    _write(project, _configured(second, "lower"))
    assert _ran(project.repro_json()) == {"use_first", "use_second"}
    assert project.read("second.txt") == "hello\n"

    _edit(
        project,
        "helpers/choose.py",
        "second.whisper = second.lower",
        "second.whisper = second.title",
    )
    assert _ran(project.repro_json()) == {"use_second"}
    assert project.read("second.txt") == "Hello\n!"


def test_a_call_at_import_removed_with_an_edit_of_the_called_body_reruns_the_stage(
    project: E2EProject,
) -> None:
    """pipeline.py stops calling `choose.configure()` in the same edit as a change inside
    configure's body: `second.whisper` is `whisper` again, though neither the stages' module
    nor a function they reach changed, and pipeline.py is no file of theirs."""
    second = """
        def whisper(text):
            return text.lower()


        def lower(text):
            return text.lower()


        def title(text):
            return text.title() + "!"
    """
    _write(project, _configured(second, "title"))
    assert _ran(project.repro_json()) == {"use_first", "use_second"}
    assert project.read("second.txt") == "Hello\n!"

    _edit(project, "pipeline.py", "choose.configure()\n", "")
    _edit(project, "helpers/choose.py", "second.title", "second.lower")
    assert _ran(project.repro_json()) == {"use_second"}
    assert project.read("second.txt") == "hello\n"
