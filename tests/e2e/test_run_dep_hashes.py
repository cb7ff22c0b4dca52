"""The dependency hashes a stage's lock records are those of the files it read: an upstream
output rewritten in place by a later stage (which declares it as a dependency) is recorded as it
is on disk, not as its producer made it."""

from __future__ import annotations

from pathlib import Path

from pivot.store import hashing
from tests.e2e.conftest import E2EProject

PIPELINE = """
def make(
    text: Annotated[str, Dep("data/in.txt", loaders.Text())],
) -> Annotated[str, Out("out/a.txt", loaders.Text())]:
    return text.upper()


def tamper(
    a: Annotated[str, Dep("out/a.txt", loaders.Text())],
) -> Annotated[str, Out("out/b.txt", loaders.Text())]:
    pathlib.Path("out/a.txt").write_text("tampered\\n")
    return a + "b\\n"


def use(
    a: Annotated[str, Dep("out/a.txt", loaders.Text())],
    b: Annotated[str, Dep("out/b.txt", loaders.Text())],
) -> Annotated[str, Out("out/c.txt", loaders.Text())]:
    return a + b


pipeline = Pipeline("dep_hashes")
pipeline.register(make)
pipeline.register(tamper)
pipeline.register(use)
"""


def _dep_hash(project: E2EProject, stage: str, path: str) -> str:
    deps = {dep["path"]: dep["hash"] for dep in project.lock(stage)["deps"]}
    return str(deps[path])


def test_a_lock_records_an_upstream_output_rewritten_by_another_stage_as_read(
    project: E2EProject,
) -> None:
    project.gen({"data/in.txt": "hello\n"})
    project.pipeline(PIPELINE)

    project.pivot("repro", "-j", "2")

    on_disk = hashing.hash_file(Path(project.root, "out/a.txt"))
    assert (project.root / "out/c.txt").read_text() == "tampered\nHELLO\nb\n"
    assert _dep_hash(project, "use", "out/a.txt") == on_disk
    assert _dep_hash(project, "tamper", "out/a.txt") == project.out_hash("make", "out/a.txt")
    assert on_disk != project.out_hash("make", "out/a.txt")
