"""`pivot completion SHELL` (stage names from a cache, no pipeline import) and `pivot doctor`."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

from tests.e2e.conftest import cli_env

if TYPE_CHECKING:
    from tests.e2e.conftest import E2EProject

PIPELINE = """
def train(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[str, Out("model.txt", loaders.Text())]:
    return raw


def test_model(model: Annotated[str, Dep("model.txt", loaders.Text())]) -> Annotated[dict, Metric("score.json")]:
    return {"score": len(model)}


pipeline = Pipeline("complete")
pipeline.register(train)
pipeline.register(test_model)
"""


def _complete(project: E2EProject, words: str) -> list[str]:
    """What bash completion offers for the command line `words` (cursor at its end)."""
    env = cli_env()
    env.update(
        _PIVOT_COMPLETE="bash_complete", COMP_WORDS=words, COMP_CWORD=str(len(words.split()) - 1)
    )
    found = subprocess.run(
        [sys.executable, "-m", "pivot"],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return [line.split(",", 1)[1] for line in found.stdout.splitlines()]


def test_completion_scripts_and_stage_names_without_importing(project: E2EProject) -> None:
    for shell, marker in (
        ("bash", "complete -o"),
        ("zsh", "compdef"),
        ("fish", "complete --no-files --command pivot"),
    ):
        script = project.pivot("completion", shell).stdout
        assert "_PIVOT_COMPLETE" in script and marker in script, shell
    project.gen({"raw.txt": "x\n"})
    project.pipeline(PIPELINE + '\npathlib.Path("imported.flag").write_text("yes")\n')
    project.pivot("status")  # loading the pipeline remembers its stage names
    os.remove(project.root / "imported.flag")

    assert _complete(project, "pivot repro t") == ["train", "test_model"]
    assert _complete(project, "pivot logs tr") == ["train"]
    assert "--watch" in _complete(project, "pivot repro --w")
    assert not project.exists("imported.flag")  # completing never imported pipeline.py
    assert _complete(project, "pivot comp") == ["completion"]


def test_doctor_reports_and_fails_on_a_problem(project: E2EProject) -> None:
    project.gen({"raw.txt": "x\n"})
    project.pipeline(PIPELINE)

    healthy = project.pivot("doctor")
    for expected in ("python:", "pivot:", "watchfiles:", "project:", "2 stage(s)", "cache:"):
        assert expected in healthy.stdout, healthy.describe()
    assert "No problems found." in healthy.stdout

    project.pivot("remote", "add", "shared", str(project.root.parent / "shared-remote"))
    unreachable = project.pivot("doctor", expect=1)
    assert "✗ remote shared:" in unreachable.stdout, unreachable.describe()
    (project.root.parent / "shared-remote").mkdir()
    reachable = project.pivot("doctor")
    assert "✓ remote shared:" in reachable.stdout, reachable.describe()
    project.pivot("remote", "remove", "shared")

    project.gen({"pipeline.py": "import does_not_exist\n"})
    broken = project.pivot("doctor", expect=1)
    assert "✗ pipeline:" in broken.stdout and "does_not_exist" in broken.stdout
    assert "1 problem(s) found." in broken.stdout
