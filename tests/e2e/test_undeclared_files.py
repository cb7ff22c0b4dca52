"""A stage that reads or writes a project file it does not declare: a warning naming the stage,
the path and the fix; `--strict` fails the stage (non-zero exit, no lock written)."""

from __future__ import annotations

from tests.e2e.conftest import E2EProject

PIPELINE = """
def total(
    numbers: Annotated[str, Dep("data/numbers.txt", loaders.Text())],
) -> Annotated[dict, Out("out/total.json", loaders.JSON())]:
    factor = int(pathlib.Path("data/factor.txt").read_text())
    pathlib.Path("scratch.txt").write_text("side effect")
    return {"total": factor * sum(int(n) for n in numbers.split())}


def clean(
    numbers: Annotated[str, Dep("data/numbers.txt", loaders.Text())],
) -> Annotated[dict, Out("out/count.json", loaders.JSON())]:
    return {"count": len(numbers.split())}


pipeline = Pipeline("undeclared")
pipeline.register(total)
pipeline.register(clean)
"""


def _project(project: E2EProject) -> E2EProject:
    project.gen({"data/numbers.txt": "1 2 3\n", "data/factor.txt": "2\n"})
    project.pipeline(PIPELINE)
    return project


def test_an_undeclared_read_and_write_are_warned_about(project: E2EProject) -> None:
    _project(project)

    result = project.pivot("repro", "--json", "-j", "1")

    warnings = result.json["warnings"]
    assert any(
        "stage 'total' read 'data/factor.txt'" in w and 'Dep("data/factor.txt"' in w
        for w in warnings
    ), warnings
    assert any("stage 'total' wrote 'scratch.txt'" in w and "Out(" in w for w in warnings)
    assert not any("'clean'" in w for w in warnings)
    assert project.lock("total")["outs"]


def test_the_warning_is_shown_on_the_console(project: E2EProject) -> None:
    _project(project)

    result = project.pivot("repro", "-j", "1")

    assert (
        "warning: stage 'total' read 'data/factor.txt', which it does not declare" in result.stderr
    )


def test_strict_fails_the_stage_and_exits_non_zero(project: E2EProject) -> None:
    _project(project)

    result = project.pivot("repro", "--strict", "--keep-going", "-j", "1", expect=None)

    assert result.code != 0
    assert "stage 'total' read 'data/factor.txt'" in result.output
    assert "--strict" in result.output
    assert not project.lock_path("total").exists()
    assert project.lock_path("clean").exists()


def test_strict_passes_once_the_file_is_declared(project: E2EProject) -> None:
    _project(project)
    project.pipeline(
        PIPELINE.replace(
            '    factor = int(pathlib.Path("data/factor.txt").read_text())\n'
            '    pathlib.Path("scratch.txt").write_text("side effect")\n',
            "    factor = int(factor_text)\n",
        ).replace(
            '    numbers: Annotated[str, Dep("data/numbers.txt", loaders.Text())],\n'
            ') -> Annotated[dict, Out("out/total.json"',
            '    numbers: Annotated[str, Dep("data/numbers.txt", loaders.Text())],\n'
            '    factor_text: Annotated[str, Dep("data/factor.txt", loaders.Text())],\n'
            ') -> Annotated[dict, Out("out/total.json"',
        )
    )

    result = project.pivot("repro", "--strict", "--json", "-j", "1")

    assert result.json["warnings"] == []
    assert project.lock("total")["deps"][1]["path"] == "data/numbers.txt"
