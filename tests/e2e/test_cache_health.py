"""`pivot gc`, `pivot verify` and `pivot get --rev` on real projects with git history."""

from __future__ import annotations

import os
from pathlib import Path

from tests.e2e.conftest import E2EProject, git

PIPELINE = """
class Params(StageParams):
    size: int = {size}


def make(params: Params) -> Annotated[str, Out("model.txt", loaders.Text())]:
    return "model " + "x" * params.size


def parts(params: Params) -> Annotated[dict[str, str], DirectoryOut("parts/", loaders.Text())]:
    return {{f"p{{i}}.txt": f"{{i}}:{{params.size}}" for i in range(3)}}


pipeline = Pipeline("health")
pipeline.register(make, params=Params())
pipeline.register(parts, params=Params())
"""


def _commit_version(project: E2EProject, size: int) -> dict[str, str]:
    project.pipeline(PIPELINE.format(size=size))
    project.repro_json()
    git(project.root, "add", "-A")
    git(project.root, "commit", "-qm", f"size {size}")
    return {
        "model": project.out_hash("make", "model.txt"),
        "parts": project.out_hash("parts", "parts/"),
    }


def _blob_count(project: E2EProject) -> int:
    return sum(1 for p in (project.root / ".pivot/cache/files").rglob("*") if p.is_file())


def test_gc_keeps_the_workspace_or_every_commit(project: E2EProject, tmp_path: Path) -> None:
    old = _commit_version(project, 1)
    new = _commit_version(project, 2)
    assert _blob_count(project) == 2 * (1 + 1 + 3)
    dry = project.pivot("gc", "--all-commits", "--dry-run")
    assert "nothing to remove" in dry.stdout
    dry = project.pivot("gc", "--dry-run")
    assert "would remove 7 object(s) (2 of them run-cache entries)" in dry.stdout
    assert "bytes" in dry.stdout
    assert _blob_count(project) == 10
    refused = project.pivot("gc", expect=None)
    assert refused.code != 0 and _blob_count(project) == 10  # no confirmation on stdin
    removed = project.pivot("gc", "-f")
    assert "removed 7 object(s)" in removed.stdout
    assert not project.blob(old["model"]).exists() and project.blob(new["model"]).exists()
    assert project.repro_json() == {"make": "skipped", "parts": "skipped"}

    got = project.pivot("get", "--rev", "HEAD~1", "model.txt", "-o", "old.txt", expect=2)
    assert "not in the local cache" in got.stderr
    project.pivot("get", "--rev", "HEAD", "parts/p2.txt", "-o", "p2.txt")
    assert project.read("p2.txt") == "2:2"


def test_gc_on_a_remote_and_get_from_it(project: E2EProject, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    project.pivot("remote", "add", "-d", "origin", str(remote))
    _commit_version(project, 1)
    project.pivot("push")
    _commit_version(project, 2)
    project.pivot("push")
    project.pivot("gc", "-f")
    got = project.pivot("get", "--rev", "HEAD~1", "model.txt", "-o", "old.txt")
    assert "as of HEAD~1" in got.stdout and project.read("old.txt") == "model x"
    assert "would remove 7 object(s)" in project.pivot("gc", "-r", "origin", "-n").stdout
    project.pivot("gc", "-r", "origin", "--all-commits", "-f")
    assert sum(1 for p in (remote / "files").rglob("*") if p.is_file()) == 10
    project.pivot("gc", "-r", "origin", "-f")
    assert sum(1 for p in (remote / "files").rglob("*") if p.is_file()) == 5
    assert sum(1 for p in (remote / "runs").rglob("*") if p.is_file()) == 2
    assert (
        "all 5 object(s) present and intact in remote 'origin'"
        in project.pivot("verify", "-r", "origin").stdout
    )


def test_verify_lists_missing_and_corrupt_and_exits_1(project: E2EProject) -> None:
    hashes = _commit_version(project, 3)
    assert "all 5 object(s) present and intact" in project.pivot("verify").stdout
    model = project.blob(hashes["model"])
    os.chmod(model, 0o644)
    model.write_text("bit rot")
    manifest = project.root / ".pivot/cache/files"
    project.blob(hashes["parts"]).unlink()
    result = project.pivot("verify", expect=1)
    assert f"corrupt: 'model.txt' (stage 'make'), hash {hashes['model']}" in result.stderr
    assert f"missing: 'parts/' (stage 'parts'), hash {hashes['parts']}" in result.stderr
    assert manifest.is_dir()
    assert "moved aside to .pivot/cache/quarantine/" in result.stderr
    assert "`pivot pull`" in result.stderr and "`pivot repro --force STAGE`" in result.stderr
    assert not model.exists()  # the bad copy is kept for inspection, out of the cache
    kept = list((project.root / ".pivot/cache/quarantine").glob(f"{hashes['model']}.*"))
    assert [path.read_text() for path in kept] == ["bit rot"]
    only = project.pivot("verify", "parts", expect=1)
    assert "model.txt" not in only.stderr


def test_pull_repairs_what_verify_found_corrupt(project: E2EProject, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    project.pivot("remote", "add", "-d", "origin", str(remote))
    hashes = _commit_version(project, 4)
    project.pivot("push")
    model = project.blob(hashes["model"])
    os.chmod(model, 0o644)
    model.write_text("bit rot")
    found = project.pivot("verify", expect=1)
    assert f"corrupt: 'model.txt' (stage 'make'), hash {hashes['model']}" in found.stderr
    project.pivot("pull")
    assert "all 5 object(s) present and intact" in project.pivot("verify").stdout
    assert project.blob(hashes["model"]).read_text() == "model " + "x" * 4
