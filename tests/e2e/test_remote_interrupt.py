"""`pivot push` and `pivot pull` killed (SIGKILL) mid-transfer leave no corrupt object and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from pivot.store import hashing
from tests.e2e.conftest import E2EProject, git

FILES = 1500

PIPELINE = f"""
def many() -> Annotated[dict[str, str], DirectoryOut("many/", loaders.Text())]:
    return {{f"f{{i:04}}.txt": f"{{i}} " * 600 for i in range({FILES})}}


pipeline = Pipeline("kill")
pipeline.register(many)
"""


def _objects(root: Path) -> list[Path]:
    """Files under an object directory with an object's name (temp files are named otherwise)."""
    return [p for p in (root / "files").rglob("*") if p.is_file() and len(p.name) == 62]


def _assert_intact(root: Path) -> None:
    for path in _objects(root):
        assert hashing.hash_file(path) == path.parent.name + path.name, f"corrupt {path}"


def _kill_when(process: subprocess.Popen[str], root: Path, at_least: int) -> None:
    deadline = time.monotonic() + 60
    while len(_objects(root)) < at_least:
        assert process.poll() is None, "the transfer finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=10)  # also closes its pipes


def test_killed_push_and_pull_resume_without_corrupt_objects(
    project: E2EProject, tmp_path: Path
) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    project.pivot("remote", "add", "-d", "origin", str(remote))
    project.pipeline(PIPELINE)
    project.repro_json()
    git(project.root, "add", "-A")
    git(project.root, "commit", "-qm", "many")

    _kill_when(project.start("push", "-j", "1"), remote, 50)
    sent = len(_objects(remote))
    assert 50 <= sent < FILES + 1
    _assert_intact(remote)
    resumed = project.pivot("push")
    assert f"{sent:,} already there" in resumed.stdout
    assert len(_objects(remote)) == FILES + 1
    _assert_intact(remote)

    clone_dir = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(project.root), str(clone_dir))
    clone = E2EProject(clone_dir)
    cache = clone_dir / ".pivot" / "cache"
    _kill_when(clone.start("pull", "-j", "1"), cache, 50)
    _assert_intact(cache)
    clone.pivot("pull")
    _assert_intact(cache)
    assert len(_objects(cache)) == FILES + 1
    assert clone.read("many/f0042.txt") == "42 " * 600
    assert clone.repro_json() == {"many": "skipped"}
