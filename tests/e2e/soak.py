"""`make soak`: the fault-injection trials of test_fault_injection.py, hundreds of times.

    python -m tests.e2e.soak [TRIALS] [SEED]

Each trial kills or interrupts `pivot repro` at a random point (SIGKILL of the group, SIGKILL
of the main process alone, SIGINT of the group; -j 1 or -j 2), then checks every invariant.
Prints the counts (kill points tried, violations) and exits 1 if any invariant broke.
"""

from __future__ import annotations

import collections
import random
import sys
import tempfile
import time
from pathlib import Path

from tests.e2e.conftest import make_git_project
from tests.e2e.test_fault_injection import KINDS, build, one_trial


def main(trials: int, seed: str) -> int:
    rng = random.Random(seed)
    counts: collections.Counter[str] = collections.Counter()
    problems: list[str] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pivot-soak-") as directory:
        project = build(make_git_project(Path(directory) / "proj"))
        for trial in range(trials):
            kind, jobs = rng.choice(KINDS), rng.choice([1, 2])
            counts[f"{kind} -j {jobs}"] += 1
            found = one_trial(project, f"soak {trial}", kind, jobs, rng.uniform(0.0, 1.8))
            problems += found
            for problem in found:
                print(problem, flush=True)
            if (trial + 1) % 20 == 0:
                print(f"{trial + 1}/{trials} trials, {len(problems)} violations", flush=True)
    kinds = ", ".join(f"{name}: {count}" for name, count in sorted(counts.items()))
    print(
        f"soak: {trials} kill points tried ({kinds}); {len(problems)} violations; "
        f"{time.monotonic() - started:.0f} s (seed {seed!r})"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(
        main(
            int(sys.argv[1]) if len(sys.argv) > 1 else 200,
            sys.argv[2] if len(sys.argv) > 2 else "soak",
        )
    )
