"""A pool worker's own cost per stage: `execute_stage` on one tiny stage, many times in one process.

Two shapes: `rerun` (the previous output is there: it is set aside, then dropped) and `fresh`
(new input content each time: a new cache blob per call). Prints CPU per call (mean, median,
10th percentile). Compare two versions on the same machine, interleaved (CPU time on a shared
machine is noisy; `PYTHONPATH` picks the sources measured, this checkout's by default):

    .venv/bin/python benchmarks/worker_bench.py
    PYTHONPATH=/path/to/other/src .venv/bin/python benchmarks/worker_bench.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

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


def _measure(calls: int, fresh: bool) -> list[float]:
    root = Path(tempfile.mkdtemp(prefix="pivot-worker-bench-"))
    previous = os.getcwd()
    try:
        (root / "in.txt").write_text("hello")
        os.chdir(root)
        spec = Pipeline("bench", root=root).register(tiny)
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
            for index in range(calls + 1)
        ]
        worker.execute_stage(tasks[0])  # warm: imports, the cache directory, the capture file
        samples = []
        for index, task in enumerate(tasks[1:]):
            if fresh:
                (root / "in.txt").write_text(f"hello {index}")
            started = time.process_time()
            outcome = worker.execute_stage(task)
            samples.append(time.process_time() - started)
            if not outcome.ok:
                raise SystemExit(outcome.error)
        return samples
    finally:
        os.chdir(previous)
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    print(f"| shape | calls | mean CPU us | median | p10 |  (Python {sys.version.split()[0]})")
    print("|---|---:|---:|---:|---:|")
    for shape in ("rerun", "fresh"):
        samples = sorted(_measure(args.calls, fresh=shape == "fresh"))
        mean = sum(samples) / len(samples) * 1e6
        median = statistics.median(samples) * 1e6
        p10 = samples[len(samples) // 10] * 1e6
        print(f"| {shape} | {len(samples)} | {mean:.0f} | {median:.0f} | {p10:.0f} |")


if __name__ == "__main__":
    main()
