"""`--json` on the sharing commands: one JSON object on stdout, the same exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.e2e.conftest import E2EProject

PIPELINE = """
def make() -> Annotated[str, Out("model.txt", loaders.Text())]:
    return "model"


def report(model: Annotated[str, Dep("model.txt", loaders.Text())]) -> Annotated[
    dict[str, int], Metric("metrics.json")
]:
    return {"size": len(model)}


pipeline = Pipeline("sharing-json")
pipeline.register(make)
pipeline.register(report)
"""


def _json(project: E2EProject, *args: str, expect: int = 0) -> dict[str, object]:
    found = json.loads(project.pivot(*args, "--json", expect=expect).stdout)
    assert isinstance(found, dict)
    return found


def test_push_pull_verify_gc_print_json(project: E2EProject, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    project.pivot("remote", "add", "-d", "origin", str(remote))
    project.pipeline(PIPELINE)
    project.repro_json()

    pushed = _json(project, "push")
    assert pushed["remote"] == str(remote) and pushed["ok"] is True
    assert pushed["moved"] == 1 and pushed["present"] == 0 and pushed["problems"] == []
    assert pushed["run_entries"] == 2
    again = _json(project, "push")
    assert again["moved"] == 0 and again["present"] == 1

    model = project.blob(project.out_hash("make", "model.txt"))
    os.chmod(model, 0o644)
    model.write_text("bit rot")
    verified = _json(project, "verify", expect=1)
    assert verified["ok"] is False and verified["where"] == "the local cache"
    assert verified["problems"] == [
        {
            "kind": "corrupt",
            "path": "model.txt",
            "owner": "make",
            "hash": project.out_hash("make", "model.txt"),
        }
    ]

    (project.root / "model.txt").unlink()
    pulled = _json(project, "pull")
    assert pulled["ok"] is True and pulled["fetched"]["moved"] == 1  # type: ignore[index]
    assert pulled["placed"] == ["make"] and pulled["not_placed"] == []
    assert project.read("model.txt") == "model"
    assert _json(project, "verify") == {
        "where": "the local cache",
        "checked": 1,
        "problems": [],
        "ok": True,
    }

    dry = _json(project, "gc", "-n")
    assert dry["removed"] is False and dry["objects"] == 0 and dry["kept"] >= 1
    refused = project.pivot("gc", "--json", expect=2)
    assert "--json cannot ask before removing" in refused.stderr and refused.stdout == ""
