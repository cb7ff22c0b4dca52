"""Sharing through remotes with the real CLI: remote config, push / fetch / pull between clones."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import E2EProject, git
from tests.servers.seaweedfs import S3Server

PIPELINE = """
class TrainParams(StageParams):
    scale: int = 2


def prepare(
    raw: Annotated[str, Dep("data/raw.txt", loaders.Text())],
) -> Annotated[dict[str, str], DirectoryOut("prepared/", loaders.Text())]:
    _ran("prepare")
    return {f"part{i}.txt": raw.upper() + str(i) for i in range(40)}


def train(
    params: TrainParams,
    parts: Annotated[pathlib.Path, Dep("prepared/", loaders.PathOnly())],
) -> Annotated[str, Out("model.txt", loaders.Text())]:
    _ran("train")
    return str(len(list(parts.iterdir())) * params.scale)


pipeline = Pipeline("share")
pipeline.register(prepare)
pipeline.register(train)
"""


def _setup(project: E2EProject, url: str) -> None:
    project.pipeline(PIPELINE)
    project.gen({"data/raw.txt": "abc"})
    project.pivot("remote", "add", "-d", "origin", url)
    project.repro_json()
    project.runs()
    git(project.root, "add", "-A")
    git(project.root, "commit", "-qm", "run")


def _clone(project: E2EProject, tmp_path: Path) -> E2EProject:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(project.root), str(clone))
    for generated in ("prepared", "model.txt"):  # outputs are not committed by users
        shutil.rmtree(clone / generated, ignore_errors=True)
        if (clone / generated).exists():
            (clone / generated).unlink()
    return E2EProject(clone)


@pytest.fixture(params=["directory", "s3"])
def remote_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    if request.param == "directory":
        (tmp_path / "remote").mkdir()
        return str(tmp_path / "remote")
    server: S3Server = request.getfixturevalue("seaweedfs")
    for name, value in server.env().items():  # the CLI subprocesses inherit these
        monkeypatch.setenv(name, value)
    return f"s3://{server.create_bucket()}/pivot"


def test_clone_pulls_everything_and_runs_nothing(
    project: E2EProject, tmp_path: Path, remote_url: str
) -> None:
    _setup(project, remote_url)
    pushed = project.pivot("push")
    assert "pushed 42 file(s)" in pushed.stdout and "0 already there" in pushed.stdout
    assert "pushed 0 file(s)" in project.pivot("push").stdout

    clone = _clone(project, tmp_path)
    pulled = clone.pivot("pull")
    assert "fetched 42 file(s)" in pulled.stdout
    assert clone.read("model.txt") == "80"
    assert clone.read("prepared/part3.txt") == "ABC3"
    assert clone.repro_json() == {"prepare": "skipped", "train": "skipped"}
    assert clone.runs() == []


def test_pull_one_stage_and_with_deps(project: E2EProject, tmp_path: Path, remote_url: str) -> None:
    _setup(project, remote_url)
    project.pivot("push")
    clone = _clone(project, tmp_path)
    clone.pivot("pull", "train")
    assert clone.read("model.txt") == "80"
    assert not clone.exists("prepared")
    assert "fetched 41 file(s)" in clone.pivot("fetch", "model.txt", "--with-deps").stdout
    clone.pivot("pull", "prepared/")
    assert clone.read("prepared/part0.txt") == "ABC0"


def test_a_blob_missing_on_the_remote_is_named_and_the_rest_still_moves(
    project: E2EProject, tmp_path: Path
) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    _setup(project, str(remote))
    project.pivot("push")
    model = project.out_hash("train", "model.txt")
    (remote / "files" / model[:2] / model[2:]).unlink()
    clone = _clone(project, tmp_path)
    result = clone.pivot("pull", expect=1)
    assert f"missing on the remote: 'model.txt' (stage 'train'), hash {model}" in result.stderr
    assert clone.read("prepared/part1.txt") == "ABC1"
    assert not clone.exists("model.txt")


def test_push_names_what_the_local_cache_lacks(project: E2EProject, tmp_path: Path) -> None:
    (tmp_path / "remote").mkdir()
    _setup(project, str(tmp_path / "remote"))
    model = project.out_hash("train", "model.txt")
    project.blob(model).unlink()
    result = project.pivot("push", expect=1)
    assert f"not in the local cache: 'model.txt' (stage 'train'), hash {model}" in result.stderr
    assert "pushed 41 file(s)" in result.stdout


def test_remote_config_commands(project: E2EProject, tmp_path: Path) -> None:
    project.pivot("remote", "add", "origin", str(tmp_path / "r1"))
    project.pivot("remote", "add", "-d", "s3", "s3://bucket/prefix")
    config = project.read(".pivot/config.yaml")
    assert "# Pivot project configuration" in config and "default_remote: s3" in config
    refused = project.pivot("remote", "modify", "s3", "secret_access_key", "x", expect=2)
    assert "--local" in refused.stderr
    project.pivot("remote", "modify", "s3", "secret_access_key", "hunter2", "--local")
    project.pivot("remote", "modify", "s3", "endpoint", "http://127.0.0.1:9")
    assert "hunter2" not in project.read(".pivot/config.yaml")
    assert "hunter2" in project.read(".pivot/config.local.yaml")
    assert "/config.local.yaml" in project.read(".pivot/.gitignore")
    listed = project.pivot("remote", "list").stdout
    assert "* s3\ts3://bucket/prefix" in listed and "secret_access_key=***" in listed
    assert "hunter2" not in listed
    project.pivot("remote", "default", "origin")
    project.pivot("remote", "remove", "s3")
    assert "s3" not in project.pivot("remote", "list").stdout
    assert "hunter2" not in project.read(".pivot/config.local.yaml")
    duplicate = project.pivot("remote", "add", "origin", "/elsewhere", expect=2)
    assert "exists already" in duplicate.stderr
    unknown = project.pivot("push", "-r", "nope", expect=2)
    assert "no remote named 'nope'" in unknown.stderr


def test_push_without_any_remote_says_how_to_add_one(project: E2EProject) -> None:
    project.pipeline(PIPELINE)
    project.gen({"data/raw.txt": "abc"})
    result = project.pivot("push", expect=2)
    assert "pivot remote add -d NAME URL" in result.stderr


def test_unreachable_s3_endpoint_is_one_line(project: E2EProject) -> None:
    project.pipeline(PIPELINE)
    project.gen({"data/raw.txt": "abc"})
    project.pivot("remote", "add", "-d", "s3", "s3://bucket/p")
    project.pivot("remote", "modify", "s3", "endpoint", "http://127.0.0.1:9")
    project.pivot("remote", "modify", "s3", "allow_http", "true")
    project.pivot("remote", "modify", "s3", "access_key_id", "k", "--local")
    project.pivot("remote", "modify", "s3", "secret_access_key", "s", "--local")
    result = project.pivot("push", expect=2)
    assert "cannot reach S3 remote 's3://bucket/p' at http://127.0.0.1:9" in result.stderr
    assert result.stderr.count("\n") == 1
