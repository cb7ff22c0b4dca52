"""Running stages on a real Dask cluster: a scheduler and two workers on 127.0.0.1, each with its
own directory and cache (no files shared with the driver), data moving through a real S3 server.

Stages report which worker ran them in `pivot repro --json` (`stages.<name>.worker`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dask_cluster import DaskCluster, start_dask_cluster
from tests.e2e.conftest import Cli, E2EProject, make_git_project
from tests.servers.seaweedfs import S3Server

pytestmark = pytest.mark.slow

HELPERS = """\
def scale(value: float) -> float:
    return value * 2.0
"""

PIPELINE = """\
import helpers


class Shard(StageParams):
    index: int = 0


def prepare(
    raw: Annotated[str, Dep("data/numbers.txt", loaders.Text())],
) -> Annotated[dict[str, str], DirectoryOut("shards/", loaders.Text())]:
    numbers = [int(line) for line in raw.split()]
    return {f"{i}.txt": "\\n".join(str(n) for n in numbers[i::4]) for i in range(4)}


def work(
    params: Shard,
    shards: Annotated[pathlib.Path, Dep("shards/", loaders.PathOnly())],
) -> Annotated[str, Out("parts/part.txt", loaders.Text())]:
    marker = os.environ.get("PIVOT_TEST_PID_DIR")
    if marker:
        pathlib.Path(marker, f"work{params.index}").write_text(str(os.getpid()))
    time.sleep(float(os.environ.get("PIVOT_TEST_STAGE_SECONDS", "0.4")))
    values = (shards / f"{params.index}.txt").read_text().split()
    return str(sum(helpers.scale(float(v)) for v in values))


class Totals(TypedDict):
    total: Annotated[str, Out("result/total.txt", loaders.Text())]
    metrics: Annotated[dict[str, float], Metric("result/metrics.json")]


def combine(
    parts: Annotated[list[str], Dep(
        ["parts/0.txt", "parts/1.txt", "parts/2.txt", "parts/3.txt"], loaders.Text()
    )],
) -> Totals:
    total = sum(float(part) for part in parts)
    return {"total": f"{total}\\n", "metrics": {"total": total, "parts": len(parts)}}


pipeline = Pipeline("cluster")
pipeline.register(prepare)
for i in range(4):
    pipeline.register(
        work, name=f"work@{i}", params=Shard(index=i),
        out_path_overrides={"return": f"parts/{i}.txt"},
    )
pipeline.register(combine)
"""

OUTPUTS = (
    "shards/0.txt", "shards/1.txt", "shards/2.txt", "shards/3.txt",
    "parts/0.txt", "parts/1.txt", "parts/2.txt", "parts/3.txt",
    "result/total.txt", "result/metrics.json",
)  # fmt: skip


def _make_project(directory: Path, *, remote: str | None, env: dict[str, str]) -> E2EProject:
    project = make_git_project(directory)
    project.gen(
        {
            "data/numbers.txt": "\n".join(str(n) for n in range(40)) + "\n",
            "helpers.py": HELPERS,
        }
    )
    project.pipeline(PIPELINE)
    if remote is not None:
        project.pivot("remote", "add", "-d", "store", remote)
    return project


@pytest.fixture(scope="module")
def s3(seaweedfs: S3Server) -> S3Server:
    return seaweedfs


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, s3: S3Server) -> Iterator[DaskCluster]:
    directory = tmp_path_factory.mktemp("dask")
    with start_dask_cluster(directory, {"w1": {"env": s3.env()}, "w2": {"env": s3.env()}}) as found:
        yield found


@pytest.fixture
def s3_env(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    return s3.env()


def _files(project: E2EProject) -> dict[str, bytes]:
    return {path: (project.root / path).read_bytes() for path in OUTPUTS}


def _locks(project: E2EProject) -> dict[str, object]:
    found = {}
    for path in sorted((project.root / ".pivot" / "stages").glob("*.lock")):
        found[path.name] = json.loads(path.read_text())
    return found


def _workers(result: dict[str, object]) -> dict[str, str]:
    stages = result["stages"]
    assert isinstance(stages, dict)
    return {name: value.get("worker", "") for name, value in stages.items()}


def test_cluster_run_matches_a_local_run_and_spreads_over_both_workers(
    tmp_path: Path, cluster: DaskCluster, s3: S3Server, s3_env: dict[str, str]
) -> None:
    bucket = s3.create_bucket()
    remote_project = _make_project(tmp_path / "cluster", remote=f"s3://{bucket}/cache", env=s3_env)
    local_project = _make_project(tmp_path / "local", remote=None, env=s3_env)

    ran = remote_project.pivot("repro", "--json", "--executor", cluster.address).json
    assert ran["ok"] is True
    workers = _workers(ran)
    assert {workers[f"work@{i}"] for i in range(4)} == {"w1", "w2"}, workers
    assert set(workers.values()) <= {"w1", "w2"}

    local_project.pivot("repro", "--json", "-j", "1")
    assert _files(remote_project) == _files(local_project)
    assert _locks(remote_project) == _locks(local_project)
    # The driver's cache holds every cached output, so the lock points at content it has.
    for lock in _locks(remote_project).values():
        for out in lock["outs"]:  # type: ignore[index]
            assert remote_project.blob(out["hash"]).is_file() or not out["cache"]

    again = remote_project.pivot("repro", "--json", "--executor", cluster.address).json
    assert {s["status"] for s in again["stages"].values()} == {"skipped"}

    # A helper edit re-runs exactly the stages that call it (and combine, whose inputs change).
    remote_project.gen({"helpers.py": HELPERS.replace("2.0", "3.0")})
    edited = remote_project.pivot("repro", "--json", "--executor", cluster.address).json
    statuses = {name: s["status"] for name, s in edited["stages"].items()}
    assert statuses == {
        "prepare": "skipped",
        **{f"work@{i}": "ran" for i in range(4)},
        "combine": "ran",
    }
    local_project.gen({"helpers.py": HELPERS.replace("2.0", "3.0")})
    local_project.pivot("repro", "-j", "1")
    assert _files(remote_project) == _files(local_project)


def test_no_download_leaves_outputs_on_the_remote_for_pull(
    tmp_path: Path, cluster: DaskCluster, s3: S3Server, s3_env: dict[str, str]
) -> None:
    bucket = s3.create_bucket()
    project = _make_project(tmp_path / "p", remote=f"s3://{bucket}/cache", env=s3_env)
    project.pivot("repro", "--executor", cluster.address, "--no-download")
    assert not project.exists("result/total.txt")
    assert project.lock("combine")["outs"]
    project.pivot("pull", "combine")
    assert project.read("result/total.txt") == f"{sum(n * 2.0 for n in range(40))}\n"


def test_a_worker_killed_mid_stage_is_retried_elsewhere(
    tmp_path: Path, s3: S3Server, s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    env = {**s3.env(), "PIVOT_TEST_PID_DIR": str(pids), "PIVOT_TEST_STAGE_SECONDS": "4"}
    monkeypatch.setenv("PIVOT_TEST_STAGE_SECONDS", "4")
    bucket = s3.create_bucket()
    project = _make_project(tmp_path / "p", remote=f"s3://{bucket}/cache", env=s3_env)
    with start_dask_cluster(tmp_path / "dask", {"k1": {"env": env}, "k2": {"env": env}}) as found:
        run = project.start("repro", "--json", "--executor", found.address, "work@0")
        marker = pids / "work0"
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the stage never started on a worker"
        time.sleep(0.2)
        os.kill(int(marker.read_text()), signal.SIGKILL)
        out, err = run.communicate(timeout=120)
    assert run.returncode == 0, out + err
    assert Cli(("repro",), 0, out, err).json["stages"]["work@0"]["status"] == "ran"
    expected = sum(2.0 * n for n in range(0, 40, 4))
    assert project.read("parts/0.txt") == str(expected)
    _assert_cache_sound(project)


def _assert_cache_sound(project: E2EProject) -> None:
    from blake3 import blake3

    for blob in (project.root / ".pivot" / "cache" / "files").rglob("*"):
        if blob.is_file():
            assert blake3(blob.read_bytes()).hexdigest() == blob.parent.name + blob.name
    for lock in _locks(project).values():
        for out in lock["outs"]:  # type: ignore[index]
            if out["cache"]:
                assert project.blob(out["hash"]).is_file()


def test_a_worker_with_other_code_is_refused(
    tmp_path: Path, s3: S3Server, s3_env: dict[str, str]
) -> None:
    bucket = s3.create_bucket()
    project = _make_project(tmp_path / "p", remote=f"s3://{bucket}/cache", env=s3_env)
    (project.root / ".pivot" / "config.yaml").write_text(
        (project.root / ".pivot" / "config.yaml").read_text() + "cluster:\n  code: installed\n"
    )
    installed = tmp_path / "installed"
    shutil.copytree(project.root, installed, ignore=shutil.ignore_patterns(".pivot", ".git"))
    (installed / "helpers.py").write_text(HELPERS.replace("2.0", "2.5"))
    env = {**s3.env(), "PYTHONPATH": str(installed)}
    with start_dask_cluster(tmp_path / "dask", {"skewed": {"env": env}}) as found:
        result = project.pivot("repro", "--executor", found.address, "--json", expect=1)
    stages = result.json["stages"]
    assert stages["prepare"]["status"] == "ran"  # its code is the same on both sides
    assert stages["work@0"]["status"] == "failed"
    error = stages["work@0"]["error"]
    assert "refused on worker 'skewed'" in error and "helpers" in error, error
    assert not project.exists("parts/0.txt")
    assert not project.lock_path("work@0").exists()


def test_resources_send_a_stage_only_to_a_worker_that_has_them(
    tmp_path: Path, s3: S3Server, s3_env: dict[str, str]
) -> None:
    bucket = s3.create_bucket()
    project = _make_project(tmp_path / "p", remote=f"s3://{bucket}/cache", env=s3_env)
    project.pipeline(
        PIPELINE.replace(
            "pipeline.register(combine)", 'pipeline.register(combine, resources={"gpu": 1})'
        )
    )
    workers = {
        "cpu": {"env": s3.env()},
        "gpu": {"env": s3.env(), "args": ["--resources", "gpu=1"]},
    }
    with start_dask_cluster(tmp_path / "dask", workers) as found:
        result = project.pivot("repro", "--executor", found.address, "--json").json
    assert _workers(result)["combine"] == "gpu"


def test_local_cluster_started_and_stopped_by_pivot(project: E2EProject) -> None:
    project.gen({"data/numbers.txt": "1\n2\n3\n4\n5\n6\n7\n8\n", "helpers.py": HELPERS})
    project.pipeline(PIPELINE)
    result = project.pivot("repro", "--executor", "dask", "--json").json
    assert result["ok"] is True
    assert project.read("result/total.txt") == f"{sum(2.0 * n for n in range(1, 9))}\n"
    digest = hashlib.sha256(project.read("result/metrics.json").encode()).hexdigest()
    assert digest  # the metric (an uncached output) came back into the workspace
    again = project.pivot("repro", "--executor", "dask", "--json").json
    assert {s["status"] for s in again["stages"].values()} == {"skipped"}


def test_ctrl_c_cancels_the_running_tasks(
    tmp_path: Path, s3: S3Server, s3_env: dict[str, str]
) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    env = {**s3.env(), "PIVOT_TEST_PID_DIR": str(pids), "PIVOT_TEST_STAGE_SECONDS": "8"}
    bucket = s3.create_bucket()
    project = _make_project(tmp_path / "p", remote=f"s3://{bucket}/cache", env=s3_env)
    with start_dask_cluster(tmp_path / "dask", {"c1": {"env": env}}) as found:
        run = project.start("repro", "--executor", found.address)
        deadline = time.monotonic() + 60
        while not any(pids.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(pids.iterdir()), "no stage started on the worker"
        os.killpg(run.pid, signal.SIGINT)
        out, err = run.communicate(timeout=30)
        assert run.returncode == 130, out + err
        from distributed import Client

        with Client(found.address, timeout=30) as client:
            deadline = time.monotonic() + 10
            while any(client.processing().values()) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not any(client.processing().values()), client.processing()
    # Nothing that was running or waiting is recorded (a stage finished before the interrupt
    # on a slow machine would be, complete and correct).
    locked = [i for i in range(4) if project.lock_path(f"work@{i}").exists()]
    assert len(locked) <= 1, locked
    for i in range(4):
        if i in locked:
            assert project.read(f"parts/{i}.txt") == str(sum(2.0 * n for n in range(i, 40, 4)))
        else:
            assert not project.exists(f"parts/{i}.txt")
