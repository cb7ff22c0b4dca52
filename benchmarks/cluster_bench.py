"""Pivot on a Dask cluster against the local process pool: overhead per stage, and scaling.

Starts a real `dask scheduler` and `dask worker` processes on 127.0.0.1 (one thread each, own
directories) and a directory remote, then measures in one run:

1. overhead: a full `pivot repro` of the generated N-stage project (generate.py) with the loky
   pool (`-j WORKERS`) and on a WORKERS-worker cluster; (cluster - pool) / N is what running a
   small stage on the cluster costs on top of running it locally;
2. scaling: a fan-out of CPU-bound stages (each about `--cpu-seconds` of pure Python) on a
   1-worker cluster and on a WORKERS-worker cluster; the ratio is the speed-up.

    .venv/bin/python benchmarks/cluster_bench.py --stages 200 --workers 2

Needs `distributed` (pip install 'pivot[dask]'). Prints a table; `--json FILE` saves figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import generate  # noqa: E402

PIVOT = (sys.executable, "-m", "pivot")
SRC = HERE.parent / "src"

FAN_OUT = """\
from typing import Annotated

from pivot import loaders
from pivot.outputs import Dep, Out
from pivot.pipeline import Pipeline
from pivot.stage_def import StageParams


class Work(StageParams):
    index: int = 0
    loops: int = 0


def burn(params: Work, seed: Annotated[str, Dep("seed.txt", loaders.Text())]) -> Annotated[
    str, Out("out/x.txt", loaders.Text())
]:
    total = int(seed)
    for i in range(params.loops):
        total = (total * 31 + i + params.index) % 1_000_003
    return str(total)


pipeline = Pipeline("fanout")
for index in range(STAGES):
    pipeline.register(
        burn, name=f"burn@{index}", params=Work(index=index, loops=LOOPS),
        out_path_overrides={"return": f"out/{index}.txt"},
    )
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH", "")]))
    env["DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES"] = "1"
    return env


@contextlib.contextmanager
def dask_cluster(directory: Path, workers: int) -> Iterator[str]:
    """A scheduler and `workers` single-threaded workers; yields the scheduler address."""
    directory.mkdir(parents=True)
    scheduler_file = directory / "scheduler.json"
    processes = []

    def start(*args: str) -> None:
        log = (directory / f"{len(processes)}.log").open("wb")
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT,
                env=_env(), start_new_session=True,
            )
        )  # fmt: skip

    try:
        start(
            "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
            "--no-dashboard", "--scheduler-file", str(scheduler_file),
        )  # fmt: skip
        while not scheduler_file.exists():
            time.sleep(0.05)
        time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        for index in range(workers):
            start(
                "distributed.cli.dask_worker", address, "--host", "127.0.0.1", "--no-dashboard",
                "--nthreads", "1", "--name", f"w{index}",
                "--local-directory", str(directory / f"w{index}"),
            )  # fmt: skip
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)
        yield address
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)


def _timed_repro(project: Path, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run([*PIVOT, "repro", *args], cwd=project, env=_env(), check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - started


def _with_remote(project: Path, remote: Path) -> Path:
    remote.mkdir(parents=True)
    subprocess.run([*PIVOT, "remote", "add", "-d", "bench", str(remote)], cwd=project,
                   env=_env(), check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    return project


def _fresh_copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True)
    return target


def overhead(work: Path, stages: int, workers: int) -> dict[str, float]:
    template = work / "template"
    generate.generate_pivot(template, stages, PIVOT, _env())
    pool = _timed_repro(_fresh_copy(template, work / "pool"), "-j", str(workers))
    project = _with_remote(_fresh_copy(template, work / "cluster"), work / "remote")
    with dask_cluster(work / "dask", workers) as address:
        cluster = _timed_repro(project, "--executor", address)
    return {
        "stages": stages,
        "pool_seconds": pool,
        "cluster_seconds": cluster,
        "overhead_ms_per_stage": (cluster - pool) / stages * 1000,
    }


def scaling(work: Path, stages: int, workers: int, cpu_seconds: float) -> dict[str, float]:
    loops = int(cpu_seconds * 6_000_000)
    template = work / "fan"
    template.mkdir()
    (template / "seed.txt").write_text("7\n")
    (template / "pipeline.py").write_text(
        FAN_OUT.replace("STAGES", str(stages)).replace("LOOPS", str(loops))
    )
    subprocess.run(
        [*PIVOT, "init"], cwd=template, env=_env(), check=True, stdout=subprocess.DEVNULL
    )
    timings = {}
    for count in (1, workers):
        project = _with_remote(_fresh_copy(template, work / f"fan{count}"), work / f"r{count}")
        with dask_cluster(work / f"dask-fan{count}", count) as address:
            timings[count] = _timed_repro(project, "--executor", address)
    return {
        "stages": stages,
        "one_worker_seconds": timings[1],
        f"{workers}_workers_seconds": timings[workers],
        "speedup": timings[1] / timings[workers],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--fan-out", type=int, default=8)
    parser.add_argument("--cpu-seconds", type=float, default=1.0)
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pivot-cluster-bench-") as temp:
        work = Path(temp)
        small = overhead(work, options.stages, options.workers)
        heavy = scaling(work, options.fan_out, options.workers, options.cpu_seconds)
    print(
        textwrap.dedent(f"""\
        | measure | value |
        |---|---|
        | {small["stages"]} small stages, loky pool (-j {options.workers}) | {small["pool_seconds"]:.2f} s |
        | {small["stages"]} small stages, {options.workers}-worker Dask cluster | {small["cluster_seconds"]:.2f} s |
        | cluster overhead per small stage | {small["overhead_ms_per_stage"]:.1f} ms |
        | {heavy["stages"]} CPU-bound stages, 1 worker | {heavy["one_worker_seconds"]:.2f} s |
        | {heavy["stages"]} CPU-bound stages, {options.workers} workers | {heavy[f"{options.workers}_workers_seconds"]:.2f} s |
        | speed-up, {options.workers} workers over 1 | {heavy["speedup"]:.2f}x |""")
    )
    if options.json:
        options.json.write_text(json.dumps({"overhead": small, "scaling": heavy}, indent=2))


if __name__ == "__main__":
    main()
