"""Pivot from a notebook or a script: `pivot.api.repro/status/run(pipeline, root=...)` run a
`Pipeline` object defined in `__main__`, twice in one process, re-running exactly what changed.

The notebook is a real IPython shell (`InteractiveShell`) running cells in a subprocess: its
functions live in `__main__` and their source only in IPython's cell cache (`linecache`).
The script is the example of docs/library.md, run as `python analysis.py`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from tests.e2e.conftest import cli_env, make_git_project

ROOT = Path(__file__).resolve().parents[2]

CELLS = [
    """
    from typing import Annotated, TypedDict

    from pivot import api, loaders
    from pivot.outputs import Dep, Metric, Out
    from pivot.pipeline import Pipeline
    from pivot.stage_def import StageParams


    class CountParams(StageParams):
        minimum: int = 2


    class CountOutputs(TypedDict):
        counts: Annotated[dict, Metric("counts.json")]


    def shout(text: str) -> str:
        return text.upper()
    """,
    """
    def clean(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[str, Out("clean.txt", loaders.Text())]:
        return shout(raw)
    """,
    """
    def count(params: CountParams, clean: Annotated[str, Dep("clean.txt", loaders.Text())]) -> CountOutputs:
        words = [w for w in clean.split() if len(w) >= params.minimum]
        return {"counts": {"words": len(words)}}
    """,
    """
    def build():
        pipeline = Pipeline("notebook")
        pipeline.register(clean)
        pipeline.register(count)
        return pipeline
    """,
]

EDITED_COUNT = """
def count(params: CountParams, clean: Annotated[str, Dep("clean.txt", loaders.Text())]) -> CountOutputs:
    words = [w for w in clean.split() if len(w) >= params.minimum]
    return {"counts": {"words": len(words), "edited": True}}
"""

DRIVER = """
import json
import sys

from IPython.core.interactiveshell import InteractiveShell

shell = InteractiveShell.instance()
cells, edited, root = json.loads(sys.stdin.read())


def run(cell):
    result = shell.run_cell(cell)
    if not result.success:
        raise SystemExit(f"cell failed: {result.error_in_exec or result.error_before_exec!r}")


def statuses(report):
    return {r.stage: r.status.value for r in report.results}


for cell in cells:
    run(cell)
api = shell.user_ns["api"]
found = {}
plan, report = api.repro(shell.user_ns["build"](), root=root, jobs=2)  # a pool: by-value pickling
found["first"] = statuses(report)
found["status"] = [step.action.value for step in api.status(shell.user_ns["build"](), root=root).steps]
plan, report = api.repro(shell.user_ns["build"](), root=root)
found["again"] = statuses(report)
run(edited)
plan, report = api.repro(shell.user_ns["build"](), root=root)
found["edited"] = statuses(report)
found["reasons"] = [r.summary for step in plan.steps for r in step.reasons]
found["warnings"] = list(plan.warnings)
plan, report = api.run(shell.user_ns["build"](), ["count"], root=root, force=True)
found["run"] = statuses(report)
found["cwd_kept"] = __import__("os").getcwd()
print(json.dumps(found))
"""


def _python(cwd: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=cli_env(),
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr + completed.stdout
    return completed


def test_notebook_stages_run_twice_in_one_process_with_an_edit_between(tmp_path: Path) -> None:
    project = make_git_project(tmp_path / "project")
    project.gen({"raw.txt": "a bb ccc dddd\n"})
    elsewhere = tmp_path / "notebooks"
    elsewhere.mkdir()
    cells = [textwrap.dedent(cell) for cell in CELLS]
    payload = json.dumps([cells, EDITED_COUNT, str(project.root)])

    completed = _python(elsewhere, "-c", DRIVER, stdin=payload)

    found: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    assert found["first"] == {"clean": "ran", "count": "ran"}
    assert found["status"] == ["skip", "skip"]
    assert found["again"] == {"clean": "skipped", "count": "skipped"}
    assert found["edited"] == {"clean": "skipped", "count": "ran"}
    assert any(
        reason.startswith("code changed: stage:__main__.count") for reason in found["reasons"]
    )
    assert found["warnings"] == []  # every cell's source was found (IPython's cell cache)
    assert found["run"] == {"count": "ran"}
    assert found["cwd_kept"] == str(elsewhere)  # the library left the working directory alone
    assert json.loads(project.read("counts.json")) == {"words": 3, "edited": True}
    # the CLI sees the same project as up to date (the lock files are the same)
    assert not (project.root / "pipeline.py").exists()


def _docs_script() -> str:
    page = (ROOT / "docs" / "library.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.DOTALL)
    (script,) = [block for block in blocks if block.startswith("# analysis.py")]
    return script


def test_the_docs_script_runs_and_reruns_only_the_edited_stage(tmp_path: Path) -> None:
    project = make_git_project(tmp_path / "project")
    script = _docs_script()
    project.gen({"analysis.py": script, "data/scores.csv": "name,score\na,3\nb,9\nc,7\n"})

    first = _python(project.root, "analysis.py")
    second = _python(project.root, "analysis.py")
    project.gen({"analysis.py": script.replace("min_score: float = 5.0", "min_score: float = 8.0")})
    third = _python(project.root, "analysis.py")

    assert "ran: clean, summarize" in first.stdout, first.stdout
    assert "nothing to do" in second.stdout, second.stdout
    assert "ran: clean, summarize" in third.stdout, third.stdout
    assert json.loads(project.read("summary.json")) == {"kept": 1}
