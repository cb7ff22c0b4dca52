"""End to end: a run interrupted with Ctrl-C and `pivot run` are recorded; the report finds the
best value of a metric in older commits."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import TYPE_CHECKING

from tests.e2e.conftest import git

if TYPE_CHECKING:
    from tests.e2e.conftest import E2EProject

PIPELINE = """
def first(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[str, Out("first.txt", loaders.Text())]:
    return raw.upper()


def slow(text: Annotated[str, Dep("first.txt", loaders.Text())]) -> Annotated[str, Out("slow.txt", loaders.Text())]:
    pathlib.Path("started").write_text("yes")
    deadline = time.monotonic() + 60
    while not pathlib.Path("release").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return text


pipeline = Pipeline("history")
pipeline.register(first)
pipeline.register(slow)
"""


def test_an_interrupted_run_is_recorded(project: E2EProject) -> None:
    project.gen({"raw.txt": "a"})
    project.pipeline(PIPELINE)
    proc = project.start("repro", "-j", "1")
    deadline = time.monotonic() + 60
    while not project.exists("started"):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130
    record = project.pivot("show", "--json").json
    assert record["interrupted"] is True and record["ok"] is False
    assert record["command"] == "pivot repro -j 1"
    assert [(s["stage"], s["status"]) for s in record["stages"]] == [
        ("first", "ran"),
        ("slow", "interrupted"),
    ]
    assert "interrupted" in project.pivot("history").stdout

    project.gen({"release": "go"})
    project.pivot("run", "slow")
    newest = project.pivot("history", "-n", "1", "--json").json["runs"][0]
    assert newest["command"] == "pivot run slow" and newest["ok"] is True
    assert newest["counts"]["ran"] == 1 and newest["git"] is None  # no commit in this repo yet


SCORES = """
class P(StageParams):
    score: float = 0.0


def score(params: P, raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[dict, Metric("metrics.json")]:
    return {"score": params.score, "loss": round(1 / params.score, 4)}


pipeline = Pipeline("scores")
pipeline.register(score, params=P(score=SCORE))
"""


def test_report_finds_the_best_value_in_older_commits(project: E2EProject) -> None:
    project.gen({"raw.txt": "a"})
    for value in (2.0, 5.0, 4.0):
        project.pipeline(SCORES.replace("SCORE", repr(value)))
        project.pivot("repro")
        git(project.root, "add", "-A")
        git(project.root, "commit", "-q", "-m", f"score {value}")
    project.pipeline(SCORES.replace("SCORE", "3.0"))
    project.pivot("repro")
    facts = project.pivot("report", "--json").json
    metrics = {m["key"]: m for m in facts["metrics"]}
    # higher is better for a score, lower for a loss; the best was two commits back (score 5)
    assert metrics["score"]["best"] == 5.0 and metrics["loss"]["best"] == 0.2
    assert metrics["score"]["best_at"] == metrics["loss"]["best_at"]
    assert _rev_parse(project, "HEAD~1").startswith(metrics["score"]["best_at"])
    assert metrics["score"]["baselines"] == [4.0] and metrics["score"]["current"] == 3.0
    assert metrics["score"]["change"] == -1.0


def _rev_parse(project: E2EProject, rev: str) -> str:
    done = subprocess.run(
        ["git", "rev-parse", rev], cwd=project.root, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()
