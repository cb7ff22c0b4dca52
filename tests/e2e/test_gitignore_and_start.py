"""End to end: cached outputs are git-ignored (uncached ones stay tracked), `pivot init` inside
a project refuses instead of pretending, and Ctrl-C at any point of a command exits 130."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import TYPE_CHECKING

from tests.e2e.conftest import git

if TYPE_CHECKING:
    from tests.e2e.conftest import E2EProject

PIPELINE = """
class Outputs(TypedDict):
    table: Annotated[dict, Out("{table}", loaders.JSON())]
    scratch: Annotated[str, Out("out/scratch.txt", loaders.Text(), cache=False)]
    score: Annotated[dict, Metric("metrics/score.json")]


def produce(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Outputs:
    return {{"table": {{"raw": raw}}, "scratch": raw, "score": {{"n": len(raw)}}}}


def parts(table: Annotated[dict, Dep("{table}", loaders.JSON())]) -> Annotated[dict[str, str], DirectoryOut("data/parts [v1]/", loaders.Text())]:
    return {{f"{{i}}.txt": c for i, c in enumerate(table["raw"])}}


pipeline = Pipeline("ignored")
pipeline.register(produce)
pipeline.register(parts)
"""


def _untracked(project: E2EProject) -> list[str]:
    listed = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=project.root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return sorted(line[3:].strip('"') for line in listed if line.startswith("??"))


def test_cached_outputs_are_git_ignored_and_the_list_follows_the_pipeline(
    project: E2EProject,
) -> None:
    project.gen({"raw.txt": "abc", ".gitignore": "*.log\n"})
    project.pipeline(PIPELINE.format(table="out/table.json"))
    git(project.root, "add", "-A")
    git(project.root, "commit", "-qm", "start")
    project.pivot("repro")

    untracked = _untracked(project)
    assert "out/table.json" not in untracked
    assert not any(path.startswith("data/") for path in untracked), untracked
    assert "out/scratch.txt" in untracked and "metrics/score.json" in untracked
    assert project.read(".gitignore").startswith("*.log\n")  # the user's lines are kept

    project.pipeline(PIPELINE.format(table="out/renamed.json"))
    project.pivot("repro")

    ignored = project.read(".gitignore")
    assert "/out/renamed.json" in ignored and "/out/table.json" not in ignored
    assert "out/table.json" in _untracked(project)  # no longer an output: git sees it again
    assert ignored.count("# >>> pivot") == 1


def test_init_inside_a_project_refuses_and_creates_nothing(project: E2EProject) -> None:
    inner = project.root / "sub" / "dir"
    inner.mkdir(parents=True)

    result = project.pivot("init", expect=2, cwd=inner)

    assert str(project.root) in result.stderr and "inside" in result.stderr
    assert not (inner / ".pivot").exists() and not (inner / ".pivotignore").exists()


SLOW = """
def slow(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[str, Out("slow.txt", loaders.Text())]:
    time.sleep(3)
    return raw


pipeline = Pipeline("slow")
pipeline.register(slow)
"""


def test_ctrl_c_at_any_point_of_a_command_exits_130(project: E2EProject) -> None:
    project.gen({"raw.txt": "abc"})
    project.pipeline(SLOW)
    for step in range(8):
        proc = project.start("repro")
        time.sleep(0.3 + step * 0.15)  # from inside Pivot's imports to inside the stage
        os.killpg(proc.pid, signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, (proc.returncode, err)
        assert "Aborted!" not in err and "Traceback" not in err, err
    assert not project.exists("slow.txt")
