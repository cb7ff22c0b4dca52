"""The run cache: a run seen before (here, or by a teammate through a remote) is restored, not
re-run; and the two-clone workflow of the issue, end to end."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.e2e.conftest import E2EProject, git

PIPELINE = """
class TrainParams(StageParams):
    scale: int = {scale}


def prepare(
    raw: Annotated[str, Dep("data/raw.txt", loaders.Text())],
) -> Annotated[str, Out("prepared.txt", loaders.Text())]:
    _ran("prepare")
    return raw.upper()


class TrainOutputs(TypedDict):
    model: Annotated[str, Out("model.txt", loaders.Text())]
    score: Annotated[dict[str, int], Metric("score.json")]


def train(
    params: TrainParams,
    prepared: Annotated[str, Dep("prepared.txt", loaders.Text())],
) -> TrainOutputs:
    _ran("train")
    return {{"model": prepared * params.scale, "score": {{"scale": params.scale}}}}


pipeline = Pipeline("runcache")
pipeline.register(prepare)
pipeline.register(train, params=TrainParams())
"""


def _set_scale(project: E2EProject, scale: int) -> None:
    project.pipeline(PIPELINE.format(scale=scale))


def two_runs(project: E2EProject) -> None:
    """prepare + train at scale 2, then train at scale 3 (three run-cache entries)."""
    project.gen({"data/raw.txt": "ab"})
    _set_scale(project, 2)
    project.repro_json()
    _set_scale(project, 3)
    assert project.repro_json() == {"prepare": "skipped", "train": "ran"}
    project.runs()


def test_a_run_seen_before_is_restored_not_rerun(project: E2EProject) -> None:
    two_runs(project)
    _set_scale(project, 2)
    status = project.status_json()
    assert status["train"]["action"] == "restore"
    assert "restored from run cache" in status["train"]["reasons"]
    result = project.pivot("repro", "--json", "-j", "1").json["stages"]
    assert result["train"]["status"] == "restored"
    assert "restored from run cache" in result["train"]["reasons"]
    assert project.runs() == []
    assert project.read("model.txt") == "ABAB"
    assert '"scale": 2' in project.read("score.json")  # uncached outputs come back too
    assert project.lock("train")["params"] == {"scale": 2}
    assert project.repro_json() == {"prepare": "skipped", "train": "skipped"}

    _set_scale(project, 3)
    assert "restored from run cache" in project.pivot("repro").stdout
    _set_scale(project, 2)
    assert project.repro_json("--no-run-cache") == {"prepare": "skipped", "train": "ran"}


def test_two_clones_share_outputs_and_runs(project: E2EProject, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    project.pivot("remote", "add", "-d", "origin", str(remote))
    project.gen({"data/raw.txt": "ab"})
    _set_scale(project, 2)
    project.repro_json()
    project.runs()
    git(project.root, "add", "-A")
    git(project.root, "commit", "-qm", "scale 2")
    pushed = project.pivot("push").stdout
    assert "run-cache entr" in pushed

    clone_b = tmp_path / "b"
    git(tmp_path, "clone", "-q", str(project.root), str(clone_b))
    b = E2EProject(clone_b)
    b.pivot("pull")
    assert b.repro_json() == {"prepare": "skipped", "train": "skipped"}
    assert b.runs() == []
    _set_scale(b, 3)
    assert b.repro_json() == {"prepare": "skipped", "train": "ran"}
    b.pivot("push")
    git(b.root, "commit", "-qam", "scale 3")

    a = project
    _set_scale(a, 3)  # the same change, made independently: B's run answers it
    assert a.repro_json("--pull") == {"prepare": "skipped", "train": "restored"}
    assert a.runs() == []
    assert a.read("model.txt") == "ABABAB"

    git(a.root, "checkout", "-q", "--", ".")
    git(a.root, "pull", "-q", "--no-rebase", str(clone_b), "HEAD")
    a.pivot("pull")
    assert a.read("model.txt") == "ABABAB"
    assert a.repro_json() == {"prepare": "skipped", "train": "skipped"}


def test_a_tampered_run_cache_entry_is_never_placed_and_the_stage_re_runs(
    project: E2EProject,
) -> None:
    """Run-cache entries come from remotes too: an entry named by its own hash whose inline
    content does not match the output's hash is refused (the stage re-runs), never written
    into the workspace."""
    import base64
    import json

    from pivot.store import hashing
    from pivot.store.run_cache import RunCache, object_key, split_object_key

    two_runs(project)
    cache = project.root / ".pivot" / "cache"
    entries = dict(RunCache(cache).entries())
    assert len(entries) == 3  # prepare, train at scale 2 and at scale 3
    shutil.rmtree(cache / "runs")  # the packs go: only the tampered loose copies stay
    for key, data in entries.items():
        document = json.loads(data)
        for item in document.get("outs", []):
            if "content" in item:
                item["content"] = base64.b64encode(b'{"scale": 99}').decode()
        tampered = json.dumps(document).encode()
        path = cache / object_key(split_object_key(key)[0], hashing.hash_bytes(tampered))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(tampered)
    _set_scale(project, 2)
    result = project.pivot("repro", "--json", "-j", "1").json["stages"]
    assert result["train"]["status"] == "ran", result["train"]
    assert project.runs() == ["train"]
    assert json.loads(project.read("score.json")) == {"scale": 2}
