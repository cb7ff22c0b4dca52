"""Watch-mode latency: from saving a helper edit to the affected stage starting.

For each size N, generates the benchmark pipeline (generate.py), runs it once, then starts
`pivot repro --watch --json --debounce MS` and, R times, edits the helper a tenth of the stages
use (`generate.edit_helper`: its code changes, not its output) and times, from the moment the
write returns, the arrival of the first `stage_start` event and of `run_end`. Prints a markdown
table; the goal is a start delay under 300 ms plus the debounce.

    .venv/bin/python benchmarks/watch_latency.py --sizes 10,200 --repeats 7 --debounce 50
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate

ROOT = Path(__file__).resolve().parents[1]


class Watcher:
    """`pivot repro --watch --json` in a subprocess; events stamped when they arrive."""

    def __init__(self, root: Path, debounce: int, jobs: int | None) -> None:
        command = [sys.executable, "-m", "pivot", "repro", "--watch", "--json"]
        command += ["--debounce", str(debounce)] + (["-j", str(jobs)] if jobs else [])
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        self.proc = subprocess.Popen(
            command, cwd=root, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        self.events: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self.reader = threading.Thread(target=self._read)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.put((time.monotonic(), json.loads(line)))

    def until(self, kind: str, timeout: float = 120) -> float:
        """Arrival time of the next event of `kind`."""
        deadline = time.monotonic() + timeout
        while True:
            arrived, event = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            if event["event"] == kind:
                return arrived

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGINT)
        self.proc.wait(timeout=60)
        self.reader.join()


def measure(n: int, repeats: int, debounce: int, jobs: int | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pivot-watch-bench-") as directory:
        root = Path(directory) / f"n{n}"
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        generate.generate_pivot(root, n, [sys.executable, "-m", "pivot"], env)
        subprocess.run(
            [sys.executable, "-m", "pivot", "repro"],
            cwd=root,
            env=env,
            check=True,
            capture_output=True,
        )
        watcher = Watcher(root, debounce, jobs)
        starts, ends = [], []
        try:
            watcher.until("watch_ready")
            for serial in range(1, repeats + 1):
                time.sleep(0.3)  # let the previous run's file events settle
                generate.edit_helper(root, 1000 + serial)
                saved = time.monotonic()
                starts.append(watcher.until("stage_start") - saved)
                ends.append(watcher.until("run_end") - saved)
                watcher.until("watch_ready")
        finally:
            watcher.stop()
    return {"n": n, "starts": starts, "ends": ends}


def _ms(values: list[float], pick: str) -> str:
    ordered = sorted(values)
    value = {
        "median": statistics.median(ordered),
        "p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
        "min": ordered[0],
        "max": ordered[-1],
    }[pick]
    return f"{value * 1000:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,200")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--debounce", type=int, default=50, help="ms, passed to --debounce")
    parser.add_argument("--jobs", type=int, default=None, help="passed to -j (default: none)")
    args = parser.parse_args()
    print(
        f"debounce {args.debounce} ms, {args.repeats} edits per size, goal: start < "
        f"{300 + args.debounce} ms\n"
    )
    print(
        "| N stages | edit -> stage_start median | p90 | min | max | minus debounce (median) "
        "| edit -> run_end median |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in (int(size) for size in args.sizes.split(",")):
        found = measure(n, args.repeats, args.debounce, args.jobs)
        starts = found["starts"]
        overhead = statistics.median(starts) * 1000 - args.debounce
        print(
            f"| {n} | {_ms(starts, 'median')} ms | {_ms(starts, 'p90')} | {_ms(starts, 'min')} "
            f"| {_ms(starts, 'max')} | {overhead:.0f} ms | {_ms(found['ends'], 'median')} ms |",
            flush=True,
        )


if __name__ == "__main__":
    main()
