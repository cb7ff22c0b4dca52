"""The temp files of a declared output's atomic write are not undeclared writes; a file left
with a temp-like name of any other path still is."""

from __future__ import annotations

from tests.e2e.conftest import E2EProject

PIPELINE = """
def leaves(
    numbers: Annotated[str, Dep("data/numbers.txt", loaders.Text())],
) -> Annotated[str, Out("out/total.txt", loaders.Text())]:
    pathlib.Path("out").mkdir(exist_ok=True)
    pathlib.Path("out/.notes.txt.0123456789abcdef.tmp").write_text("left behind")
    return numbers


pipeline = Pipeline("temp_names")
pipeline.register(leaves)
"""


def test_only_a_declared_outputs_temp_files_go_unreported(project: E2EProject) -> None:
    project.gen({"data/numbers.txt": "1 2 3\n"})
    project.pipeline(PIPELINE)

    for jobs in ("1", "2"):
        result = project.pivot("repro", "--json", "--force", "-j", jobs)

        warnings = result.json["warnings"]
        assert [w for w in warnings if "wrote" in w] == [
            w for w in warnings if "wrote 'out/.notes.txt.0123456789abcdef.tmp'" in w
        ]
        assert len(warnings) == 1, warnings
        assert project.lock("leaves")["outs"]
