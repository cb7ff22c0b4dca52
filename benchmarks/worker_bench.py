"""A pool worker's own cost per stage: `execute_stage` on tiny stages, many times in one process.

Three shapes: `first` (a stage of its own each call, as in a first full run: no previous
output, a new output file and a new cache blob), `rerun` (the previous output is there: it is
set aside, then dropped) and `fresh` (new input content each time: a new cache blob per call).
Prints CPU per call (mean, median, 10th percentile, and the user and system parts). Compare two
versions on the same machine, interleaved (CPU time on a shared machine is noisy; `PYTHONPATH`
picks the sources measured, this checkout's by default):

    .venv/bin/python benchmarks/worker_bench.py
    PYTHONPATH=/path/to/other/src .venv/bin/python benchmarks/worker_bench.py --dir /dev/shm

`--dir` puts the project elsewhere: on a tmpfs, creating a file costs the same every time, where
on a file system without a journal (ext4 without one skips inodes deleted in the last minutes,
one by one) it can cost 20 us or 500 us depending on what was deleted lately.
"""

from __future__ import annotations

import argparse
import importlib
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from pivot.execute import worker
from pivot.execute.worker import StageTask
from pivot.loaders import Text
from pivot.outputs import Dep, Out
from pivot.pipeline import Pipeline
from pivot.store import logs


def tiny(
    text: Annotated[str, Dep("in.txt", Text())],
) -> Annotated[str, Out("out/tiny.txt", Text())]:
    return f"tiny {len(text)} {text[:8]}\n"


def _stages_module(root: Path, count: int) -> Any:
    """A module of `count` stages in `root`, each with its own output (the `first` shape)."""
    lines = [
        "from typing import Annotated",
        "from pivot.loaders import Text",
        "from pivot.outputs import Dep, Out",
    ]
    for index in range(count):
        lines += [
            "",
            "",
            f"def s{index}(",
            '    text: Annotated[str, Dep("in.txt", Text())],',
            f') -> Annotated[str, Out("out/s{index}.txt", Text())]:',
            f'    return f"s{index} {{len(text)}} {{text[:8]}}\\n"',
        ]
    name = f"worker_bench_stages_{root.name.replace('-', '_')}"
    (root / f"{name}.py").write_text("\n".join(lines) + "\n")
    sys.path.insert(0, str(root))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(root))


def _cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def _measure(calls: int, shape: str, directory: str | None) -> tuple[list[float], float, float]:
    """CPU seconds of each call, and the user and system seconds of all of them."""
    root = Path(tempfile.mkdtemp(prefix="pivot-worker-bench-", dir=directory))
    previous = os.getcwd()
    try:
        (root / "in.txt").write_text("hello")
        os.chdir(root)
        pipeline = Pipeline("bench", root=root)
        if shape == "first":
            module = _stages_module(root, calls + 1)
            specs = [pipeline.register(getattr(module, f"s{index}")) for index in range(calls + 1)]
        else:
            specs = [pipeline.register(tiny)] * (calls + 1)
        pivot_dir = root / ".pivot"
        tasks = [
            StageTask(
                spec,
                str(root),
                str(pivot_dir / "cache"),
                ("reflink", "copy"),
                {},
                log_path=str(logs.run_log_path(pivot_dir, "run", f"tiny{index}")),
                scratch_dir=str(pivot_dir / "tmp"),
            )
            for index, spec in enumerate(specs)
        ]
        worker.execute_stage(tasks[0])  # warm: imports, the cache directory, the capture file
        samples = []
        user, system = _cpu()
        for index, task in enumerate(tasks[1:]):
            if shape == "fresh":
                (root / "in.txt").write_text(f"hello {index}")
            started = time.process_time()
            outcome = worker.execute_stage(task)
            samples.append(time.process_time() - started)
            if not outcome.ok:
                raise SystemExit(outcome.error)
        after = _cpu()
        return samples, after[0] - user, after[1] - system
    finally:
        os.chdir(previous)
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--shapes", default="first,rerun,fresh", help="comma-separated")
    parser.add_argument("--dir", default=None, help="where the project goes (default: temp dir)")
    args = parser.parse_args()
    print(
        "| shape | calls | mean CPU us | median | p10 | user us | system us |"
        f"  (Python {sys.version.split()[0]})"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for shape in args.shapes.split(","):
        samples, user, system = _measure(args.calls, shape, args.dir)
        samples.sort()
        mean = sum(samples) / len(samples) * 1e6
        median = statistics.median(samples) * 1e6
        p10 = samples[len(samples) // 10] * 1e6
        per = 1e6 / len(samples)
        print(
            f"| {shape} | {len(samples)} | {mean:.0f} | {median:.0f} | {p10:.0f} | "
            f"{user * per:.0f} | {system * per:.0f} |"
        )


if __name__ == "__main__":
    main()
