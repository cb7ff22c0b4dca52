"""`.pivotignore` (gitignore syntax) leaves matching files out of dependency directories."""

from __future__ import annotations

from tests.e2e.conftest import E2EProject

PIPELINE = """
def count(folder: Annotated[pathlib.Path, Dep("data/", loaders.PathOnly())]) -> Annotated[str, Out("n.txt", loaders.Text())]:
    _ran("count")
    return str(sorted(p.name for p in folder.iterdir()))

pipeline = Pipeline("ignore")
pipeline.register(count)
"""


def test_ignored_files_in_a_dependency_directory_do_not_make_it_stale(project: E2EProject) -> None:
    project.gen({"data/a.txt": "a"})
    project.pipeline(PIPELINE)
    assert project.repro_json() == {"count": "ran"}
    project.gen({"data/__pycache__/junk.pyc": b"\x00", "data/b.pyc": b"\x01"})  # default ignores
    assert project.repro_json() == {"count": "skipped"}
    project.gen({"data/b.txt": "b"})
    assert project.repro_json() == {"count": "ran"}


def test_patterns_added_to_pivotignore_apply(project: E2EProject) -> None:
    project.gen({"data/a.txt": "a"})
    project.pipeline(PIPELINE)
    project.repro_json()
    with (project.root / ".pivotignore").open("a", encoding="utf-8") as handle:
        handle.write("*.tmp\n")
    project.gen({"data/scratch.tmp": "noise"})
    assert project.repro_json() == {"count": "skipped"}
