"""End to end: `pivot init`, finding the project root, and commands outside a project."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import E2EProject

SIMPLE = """
def shout(text: Annotated[str, Dep("in.txt", loaders.Text())]) -> Annotated[str, Out("out.txt", loaders.Text())]:
    _ran("shout")
    return text.upper()


pipeline = Pipeline("simple")
pipeline.register(shout)
"""


def _ignored(repo: E2EProject, relative: str) -> bool:
    found = subprocess.run(
        ["git", "check-ignore", "-q", relative], cwd=repo.root, check=False, capture_output=True
    )
    return found.returncode == 0


def test_init_creates_the_layout(bare_repo: E2EProject) -> None:
    result = bare_repo.pivot("init")

    assert "Initialised a Pivot project" in result.stdout
    pivot_dir = bare_repo.root / ".pivot"
    assert (pivot_dir / "config.yaml").is_file()
    assert (pivot_dir / "stages").is_dir()
    assert (bare_repo.root / ".pivotignore").is_file()
    bare_repo.gen({".pivot/cache/files/ab/cdef": "blob", ".pivot/state.db": "db"})
    assert _ignored(bare_repo, ".pivot/cache/files/ab/cdef")
    assert _ignored(bare_repo, ".pivot/state.db")
    assert not _ignored(bare_repo, ".pivot/config.yaml")
    assert not _ignored(bare_repo, ".pivot/stages/x.lock")


def test_init_twice_refuses_politely(project: E2EProject) -> None:
    result = project.pivot("init", expect=2)

    assert "already a Pivot project" in result.stderr
    assert "--force" in result.stderr
    assert "Traceback" not in result.output


def test_init_force_rewrites_config_and_keeps_locks(project: E2EProject) -> None:
    project.gen({"in.txt": "hi"})
    project.pipeline(SIMPLE)
    project.pivot("repro", "-j", "1")
    lock_before = project.lock_path("shout").read_bytes()
    config = project.root / ".pivot" / "config.yaml"
    default = config.read_text()
    config.write_text("jobs: 3\n")

    project.pivot("init", "--force")

    assert config.read_text() == default
    assert project.lock_path("shout").read_bytes() == lock_before
    assert project.repro_json() == {"shout": "skipped"}


@pytest.mark.parametrize(
    "args",
    [("repro",), ("run", "x"), ("status",), ("checkout",), ("commit",), ("repro", "--dry-run")],
)
def test_commands_outside_a_project_say_to_init(bare_repo: E2EProject, args: tuple[str]) -> None:
    result = bare_repo.pivot(*args, expect=2)

    assert "pivot init" in result.stderr
    assert "Traceback" not in result.output


def test_runs_from_a_subdirectory_use_the_top_most_root(project: E2EProject) -> None:
    project.gen({"in.txt": "hi", "sub/deeper/keep.txt": ""})
    project.pipeline(SIMPLE)
    (project.root / "sub" / ".pivot").mkdir()  # a nested marker must not win
    deeper = project.root / "sub" / "deeper"

    result = project.pivot("repro", "-j", "1", "--json", cwd=deeper)

    assert result.json["stages"]["shout"]["status"] == "ran"
    assert project.read("out.txt") == "HI"
    assert project.lock_path("shout").is_file()
    assert not (deeper / "out.txt").exists()
    assert project.runs() == ["shout"]  # runs.log is written relative to the cwd: the root
    assert project.pivot("status", "--json", cwd=deeper).json["stages"]["shout"]["action"] == (
        "skip"
    )
