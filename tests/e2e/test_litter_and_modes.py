"""End to end: temp files of killed writes are cleaned; files are created 0644 (minus the umask);
Pivot's own per-machine files are git-ignored."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from typing import TYPE_CHECKING

from tests.e2e.integrity import temp_files

if TYPE_CHECKING:
    from tests.e2e.conftest import E2EProject

PIPELINE = """
def table(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[dict, Out("out/table.json", loaders.JSON())]:
    _ran("table")
    return {"raw": raw}


def parts(table: Annotated[dict, Dep("out/table.json", loaders.JSON())]) -> Annotated[dict[str, str], DirectoryOut("parts/", loaders.Text())]:
    _ran("parts")
    return {f"sub/{i}.txt": c for i, c in enumerate(table["raw"])}


def score(table: Annotated[dict, Dep("out/table.json", loaders.JSON())]) -> Annotated[dict, Metric("score.json")]:
    _ran("score")
    return {"n": len(table["raw"])}


pipeline = Pipeline("litter")
pipeline.register(table)
pipeline.register(parts)
pipeline.register(score)
"""

LITTER = ".victim.0123456789abcdef.tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_outputs_and_lock_files_are_not_executable(project: E2EProject) -> None:
    project.gen({"raw.txt": "abc"})
    project.pipeline(PIPELINE)
    project.repro_json()
    expected = 0o666 & ~_umask()
    (project.root / "out" / "table.json").unlink()
    project.pivot("checkout")  # a restored copy too

    for relative in (
        "out/table.json",
        "parts/sub/0.txt",
        "score.json",
        ".pivot/stages/table.lock",
        ".pivot/stages/parts.lock",
    ):
        mode = stat.S_IMODE(os.stat(project.root / relative).st_mode)
        assert mode == expected, f"{relative}: {oct(mode)}"


def test_litter_of_a_killed_run_is_removed_by_the_next_one(project: E2EProject) -> None:
    project.gen({"raw.txt": "abc"})
    project.pipeline(PIPELINE)
    project.repro_json()
    blob_dir = next((project.root / ".pivot" / "cache" / "files").iterdir())
    places = [
        project.root / "out",
        project.root / "parts" / "sub",
        project.root,
        project.root / ".pivot" / "stages",
        project.root / ".pivot",
        blob_dir,
    ]
    for place in places:
        (place / LITTER).write_text("half-written")
    (project.root / "keep.0123456789abcdef.tmp").write_text("not ours: no leading dot")
    # what a holder killed with SIGKILL leaves in the lock file: its own record
    (project.root / ".pivot" / "lock").write_text(
        json.dumps({"pid": 999999999, "command": "pivot repro", "started": "earlier"})
    )

    assert project.repro_json() == dict.fromkeys(("table", "parts", "score"), "skipped")

    assert temp_files(project.root) == []
    assert project.exists("keep.0123456789abcdef.tmp")
    assert (project.root / ".pivot" / "lock").read_text() == ""


def test_litter_is_left_alone_when_the_last_run_ended_cleanly(project: E2EProject) -> None:
    """Cleaning needs a reason (a killed holder or a failed run): a no-op run scans nothing."""
    project.gen({"raw.txt": "abc"})
    project.pipeline(PIPELINE)
    project.repro_json()
    (project.root / "out" / LITTER).write_text("someone else's")

    project.repro_json()

    assert project.exists(f"out/{LITTER}")


def test_pivot_files_that_are_per_machine_are_git_ignored(project: E2EProject) -> None:
    project.gen({"raw.txt": "abc"})
    project.pipeline(PIPELINE)
    project.repro_json()
    for name in ("state.db.corrupt", "state.db-wal", "config.local.yaml"):
        (project.root / ".pivot" / name).write_text("x")
    (project.root / ".pivot" / "logs").mkdir(exist_ok=True)
    (project.root / ".pivot" / "logs" / "table.log").write_text("x")

    listed = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all", ".pivot"],
        cwd=project.root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")

    untracked = sorted(line[3:] for line in listed if line.startswith("??"))
    assert untracked == [
        ".pivot/.gitignore",
        ".pivot/config.yaml",
        ".pivot/stages/parts.lock",
        ".pivot/stages/score.lock",
        ".pivot/stages/table.lock",
    ]
