"""Failures of Pivot's own work (saving, caching, removing an output) are reported as what they
are: the path, the OS error and the fix; never as a failure of the user's code or of a worker.

A read-only output directory is made with a read-only bind mount in a private mount namespace
(`unshare`), so it is read-only even for root (chmod is not, and CI may run as root).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import Cli, E2EProject, cli_env

PIPELINE = """
def write() -> Annotated[str, Out("ro/result.txt", loaders.Text())]:
    _ran("write")
    return "result"


pipeline = Pipeline("tool_failures")
pipeline.register(write)
"""


def _pivot_with_read_only(project: E2EProject, directory: str, *args: str) -> Cli:
    """`pivot *args` with `directory` mounted read-only (only for that process)."""
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
    command = ["unshare", "-rm", "sh", "-c", script, "sh", directory, sys.executable, "-m", "pivot"]
    completed = subprocess.run(
        [*command, *args],
        cwd=project.root,
        env=cli_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return Cli(tuple(args), completed.returncode, completed.stdout, completed.stderr)


def _assert_reported_as_pivot_failure(error: str, doing: str) -> None:
    assert f"cannot {doing} 'ro/result.txt'" in error, error
    assert "Read-only file system" in error and "EROFS" in error, error
    assert "Fix: the file system is mounted read-only" in error, error
    assert "check the value returned" not in error and "in the stage function" not in error
    assert "worker process" not in error and "Traceback" not in error


def test_read_only_output_directory_names_the_path_the_os_error_and_the_fix(
    project: E2EProject,
) -> None:
    project.gen({"ro/.keep": ""})
    project.pipeline(PIPELINE)

    result = _pivot_with_read_only(project, "ro", "repro", "--json", "-j", "1")

    assert result.code == 1, result.describe()
    stage = result.json["stages"]["write"]
    assert stage["status"] == "failed"
    _assert_reported_as_pivot_failure(stage["error"], "save output")
    assert project.runs() == ["write"]  # the stage itself ran fine
    assert not project.lock_path("write").exists()


def test_read_only_directory_of_a_previous_output_is_reported_when_removing_it(
    project: E2EProject,
) -> None:
    project.pipeline(PIPELINE)
    assert project.repro_json() == {"write": "ran"}
    lock_before = project.lock_path("write").read_bytes()

    result = _pivot_with_read_only(project, "ro", "repro", "--force", "-j", "1")

    assert result.code == 1, result.describe()
    assert "1 stage(s) failed: write" in result.stderr
    _assert_reported_as_pivot_failure(result.stderr, "remove the previous output")
    assert project.read("ro/result.txt") == "result"
    assert project.lock_path("write").read_bytes() == lock_before
    assert Path(project.root / "runs.log").read_text().split() == ["write"]
