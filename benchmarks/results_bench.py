"""Time the commands that read results (`pivot dag`, `report`, ...) on a generated pipeline.

    .venv/bin/python benchmarks/results_bench.py                 # 200 stages, 5 repeats
    .venv/bin/python benchmarks/results_bench.py --stages 1000 --repeats 3

The project is `generate.py`'s shape (groups of ten stages), reproduced once and committed, so
`report` compares the workspace with HEAD through git (every lock file read at HEAD) and draws
200 nodes. Each command is a whole `pivot` process timed by wall clock; the table gives the
median and the best of the repeats against the goal, and the CPU time (user + system, which a
busy machine inflates far less than wall clock) (issue 13: `dag` and `report` on 200
stages each under a second), and `pivot --help` as the floor every command pays to start.
Exit code 1 when a timed command fails, or, with `--check`, when a goal is missed.
"""

from __future__ import annotations

import argparse
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate

GOALS = {"dag": 1.0, "report": 1.0}
COMMANDS = [
    ("--help", None),
    ("dag", "dag"),
    ("dag --json", None),
    ("dag --outs --mermaid", None),
    ("list --json", None),
    ("status", None),
    ("report", "report"),
    ("report --json", None),
    ("params show", None),
    ("history", None),
]


def _time(command: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"`{shlex.join(command)}` exited {done.returncode}:\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def _prepare(root: Path, n: int, pivot: list[str]) -> None:
    generate.generate_pivot(root, n, pivot)
    subprocess.run([*pivot, "repro"], cwd=root, check=True, capture_output=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, capture_output=True)
    subprocess.run(
        ["git", "commit", "-qm", "reproduced"], cwd=root, check=True, capture_output=True
    )
    subprocess.run([*pivot, "repro"], cwd=root, check=True, capture_output=True)  # history


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stages", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--pivot",
        default=str(Path(sys.executable).parent / "pivot"),
        help="the pivot command (default: next to this interpreter)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args()
    pivot = shlex.split(args.pivot)
    with tempfile.TemporaryDirectory(prefix="pivot-results-bench-") as work:
        root = Path(work) / "project"
        print(f"generating and reproducing {args.stages} stages in {root} ...", file=sys.stderr)
        _prepare(root, args.stages, pivot)
        rows, missed = [], []
        for command, goal_key in COMMANDS:
            samples = [_time([*pivot, *command.split()], root) for _ in range(args.repeats)]
            times = [wall for wall, _ in samples]
            median = statistics.median(times)
            cpu = statistics.median(spent for _, spent in samples)
            goal = GOALS.get(goal_key or "")
            verdict = "" if goal is None else ("met" if median < goal else "MISSED")
            if verdict == "MISSED":
                missed.append(command)
            goal_text = f"< {goal:.1f} s" if goal else ""
            rows.append(
                f"| `pivot {command}` | {median:.3f} | {min(times):.3f} | {cpu:.3f} | {goal_text} "
                f"| {verdict} |"
            )
            print(f"  pivot {command}: {median:.3f} s ({cpu:.3f} s CPU)", file=sys.stderr)
    print(f"\n{args.stages} stages, {args.repeats} repeats, seconds (wall clock, whole process)\n")
    print("| command | median | best | CPU (median) | goal | |")
    print("|---|---:|---:|---:|---|---|")
    print("\n".join(rows))
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
