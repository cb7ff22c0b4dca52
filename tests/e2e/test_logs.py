"""`pivot logs STAGE [--run ID]`: each stage's captured output, for its last run or a given run."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.e2e.conftest import E2EProject

PIPELINE = """
def talk(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[str, Out("said.txt", loaders.Text())]:
    import subprocess, sys
    print("stdout says", raw.strip())
    print("stderr says", raw.strip(), file=sys.stderr)
    subprocess.run(["echo", "from a subprocess"], check=True)
    if raw.strip() == "fail":
        raise RuntimeError("told to fail")
    return raw
"""


def test_logs_keep_each_run_and_the_last_one(project: E2EProject) -> None:
    project.gen({"raw.txt": "one\n"})
    project.pipeline(PIPELINE + "\npipeline = Pipeline('logs')\npipeline.register(talk)\n")
    first = project.pivot("repro", "--json", "-j", "1").json["run_id"]
    project.gen({"raw.txt": "fail\n"})
    failed = project.pivot("repro", "--json", "-j", "1", expect=1).json["run_id"]

    last = project.pivot("logs", "talk").stdout
    assert "stdout says fail" in last and "stderr says fail" in last
    assert "from a subprocess" in last
    earlier = project.pivot("logs", "talk", "--run", first).stdout
    assert "stdout says one" in earlier and "fail" not in earlier
    listing = project.pivot("logs", "--list").stdout
    assert f"{first}  talk" in listing and f"{failed}  talk" in listing
    assert (project.root / ".pivot" / "logs" / "talk.log").read_text() == last
    assert "/logs/" in (project.root / ".pivot" / ".gitignore").read_text()


def test_logs_errors_name_the_fix(project: E2EProject) -> None:
    project.gen({"raw.txt": "one\n"})
    project.pipeline(PIPELINE + "\npipeline = Pipeline('logs')\npipeline.register(talk)\n")

    missing = project.pivot("logs", "talk", expect=2)
    assert "no log for stage 'talk'" in missing.stderr and "pivot repro talk" in missing.stderr
    project.pivot("repro", "-j", "1")
    unknown_run = project.pivot("logs", "talk", "--run", "20000101-000000-0000", expect=2)
    assert "no logs kept for run" in unknown_run.stderr
