"""`pivot track`: raw data recorded in .pvt files, git-ignored, shared, seen by stages and status."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.e2e.conftest import E2EProject, git

PIPELINE = """
def count(
    raw: Annotated[str, Dep("data/raw.txt", loaders.Text())],
) -> Annotated[str, Out("count.txt", loaders.Text())]:
    _ran("count")
    return str(len(raw.split()))


pipeline = Pipeline("tracked")
pipeline.register(count)
"""


def test_track_records_ignores_and_shares_raw_data(project: E2EProject, tmp_path: Path) -> None:
    project.pipeline(PIPELINE)
    project.gen({"data/raw.txt": "a b c", "data/images/1.txt": "one", "data/images/2.txt": "two"})
    result = project.pivot("track", "data/raw.txt", "data/images")
    assert "tracked 'data/images' (2 files" in result.stdout
    record = json.loads(project.read("data/raw.txt.pvt"))
    assert record["path"] == "raw.txt" and record["size"] == 5
    assert project.blob(record["hash"]).read_text() == "a b c"
    assert project.read("data/.gitignore").splitlines() == ["/raw.txt", "/images"]
    (tmp_path / "remote").mkdir()
    project.pivot("remote", "add", "-d", "origin", str(tmp_path / "remote"))
    git(project.root, "add", "-A")
    git(project.root, "commit", "-qm", "track")
    listed = git_files(project.root)
    assert "data/raw.txt.pvt" in listed and "data/raw.txt" not in listed
    assert "data/images/1.txt" not in listed
    project.repro_json()
    # raw.txt, two images, the directory manifest, count.txt
    assert "pushed 5 file(s)" in project.pivot("push").stdout

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(project.root), str(clone))
    other = E2EProject(clone)
    assert not other.exists("data/raw.txt")
    other.pivot("pull", "data/raw.txt", "data/images")
    assert other.read("data/raw.txt") == "a b c"
    assert other.read("data/images/2.txt") == "two"


def git_files(root: Path) -> list[str]:
    import subprocess

    out = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_status_reports_tracked_data_changed_and_not_retracked(project: E2EProject) -> None:
    project.pipeline(PIPELINE)
    project.gen({"data/raw.txt": "a b c"})
    project.pivot("track", "data/raw.txt")
    assert project.repro_json() == {"count": "ran"}
    project.gen({"data/raw.txt": "a b c d"})
    status = project.pivot("status")
    assert "tracked 'data/raw.txt' changed since `pivot track`" in status.stderr
    assert "count: would run" in status.stdout  # a stage sees tracked data as any dependency
    kept = project.pivot("checkout")
    assert "left as it is" in kept.stdout
    assert project.read("data/raw.txt") == "a b c d"  # unsaved data is never overwritten
    project.pivot("track", "data/raw.txt")
    assert "tracked" not in project.pivot("status").stderr
    (project.root / "data" / "raw.txt").unlink()
    assert "tracked 'data/raw.txt' is missing" in project.pivot("status").stderr
    project.pivot("checkout", "data/raw.txt")
    assert project.read("data/raw.txt") == "a b c d"


def test_track_refuses_a_stage_output_and_paths_outside(project: E2EProject) -> None:
    project.pipeline(PIPELINE)
    project.gen({"data/raw.txt": "a b"})
    project.repro_json()
    refused = project.pivot("track", "count.txt", expect=2)
    assert "written by stage 'count'" in refused.stderr
    assert not project.exists("count.txt.pvt")
    outside = project.root.parent / "elsewhere.txt"
    outside.write_text("x")
    assert "outside the project" in project.pivot("track", str(outside), expect=2).stderr


def test_a_pvt_file_pointing_elsewhere_is_refused(project: E2EProject) -> None:
    project.gen({"data/raw.txt": "a b"})
    project.pivot("track", "data/raw.txt")
    pvt = project.root / "data" / "raw.txt.pvt"
    record = json.loads(pvt.read_text())
    record["path"] = "../../etc/passwd"
    pvt.write_text(json.dumps(record))
    result = project.pivot("checkout", expect=2)
    assert "may only describe 'raw.txt'" in result.stderr
    shutil.rmtree(project.root / "data")
