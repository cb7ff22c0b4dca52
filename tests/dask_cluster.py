"""A real Dask cluster for tests: `dask scheduler` and `dask worker` processes on 127.0.0.1.

Each worker gets its own local directory (its own Pivot cache: no shared files with the driver or
the other worker) and one thread. Ports are picked by the processes themselves (port 0) and read
from the scheduler file, so tests running in parallel never collide. Everything started is
stopped, process group and all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["DaskCluster", "start_dask_cluster"]

SRC = Path(__file__).resolve().parents[1] / "src"


@dataclasses.dataclass
class DaskCluster:
    """A running scheduler and its workers (name -> process)."""

    address: str
    scheduler: subprocess.Popen[bytes]
    workers: dict[str, subprocess.Popen[bytes]]
    directory: Path

    def worker_pid(self, name: str) -> int:
        """The pid of the worker process itself (the nanny's child), as the scheduler knows it."""
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            info = client.scheduler_info()["workers"]
            for address, worker in info.items():
                if worker["name"] == name:
                    return int(client.run(os.getpid, workers=[address])[address])
        raise LookupError(f"no worker named {name!r} is connected")


def _environment(extra: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    extra = dict(extra)
    paths = [str(SRC), extra.pop("PYTHONPATH", ""), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # A worker that dies mid-stage: the stage is retried once on another worker, then fails.
    env["DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES"] = "1"
    env.update(extra)
    return env


def _start(args: list[str], log: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", *args],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
        )


def _wait_for_file(path: Path, process: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dask scheduler exited early:\n{log.read_text()}")
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            return str(json.loads(path.read_text())["address"])
        time.sleep(0.05)
    raise TimeoutError(f"dask scheduler did not start:\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextlib.contextmanager
def start_dask_cluster(
    directory: Path,
    workers: Mapping[str, Mapping[str, Any]],
) -> Iterator[DaskCluster]:
    """A scheduler and one worker per name in `workers`; each value may give `env` (extra
    environment variables) and `args` (extra `dask worker` arguments, e.g. resources)."""
    directory.mkdir(parents=True, exist_ok=True)
    scheduler_file = directory / "scheduler.json"
    env = _environment({})
    log = directory / "scheduler.log"
    scheduler = _start(
        [
            "distributed.cli.dask_scheduler",
            "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
            "--scheduler-file", str(scheduler_file),
        ],
        log,
        env,
    )  # fmt: skip
    cluster = DaskCluster("", scheduler, {}, directory)
    try:
        cluster.address = _wait_for_file(scheduler_file, scheduler, log)
        for name, settings in workers.items():
            cluster.workers[name] = _start(
                [
                    "distributed.cli.dask_worker", cluster.address,
                    "--host", "127.0.0.1", "--no-dashboard", "--nthreads", "1",
                    "--name", name, "--local-directory", str(directory / name),
                    *settings.get("args", ()),
                ],
                directory / f"{name}.log",
                _environment(settings.get("env", {})),
            )  # fmt: skip
        from distributed import Client

        with Client(cluster.address, timeout=60) as client:
            client.wait_for_workers(len(workers), timeout=90)
        yield cluster
    finally:
        for process in cluster.workers.values():
            _stop(process)
        _stop(scheduler)
