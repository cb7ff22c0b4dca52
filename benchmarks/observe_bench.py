"""Overhead of watching a stage run (`pivot.fingerprint.observing`) on CPU-heavy stage bodies.

Each body runs alternately bare and inside `observing()`, `--repeats` times each; the table gives
the best time of each and the ratio. Run it with each Python the project supports:

    .venv/bin/python benchmarks/observe_bench.py
    PYTHONPATH=src $(pyenv prefix 3.13.0)/bin/python benchmarks/observe_bench.py

`sys.monitoring` (3.12+) reports each code object once and then disables it; 3.11 has only a
profile hook, which turns the interpreter's specialised instructions off while it is set.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from pivot.fingerprint import observing


def _score(word: str) -> int:
    return sum(ord(ch) for ch in word) % 97


def python_calls(size: int) -> int:
    """Pure Python, a helper call per item (the worst case for any call hook)."""
    words = [f"w{i}" for i in range(size)]
    return sum(_score(word) for word in words)


def python_loops(size: int) -> float:
    """Pure Python arithmetic in a tight loop, few calls."""
    total = 0.0
    for i in range(size * 4):
        total += (i * i) % 7 / (1 + i % 3)
    return total


def numpy_work(size: int) -> float:
    """Vectorised numeric work, as most heavy data stages are."""
    import numpy as np

    rng = np.random.default_rng(0)
    matrix = rng.random((300, 300))
    total = 0.0
    for _ in range(max(1, size // 100_000)):
        total += float(np.linalg.svd(matrix, compute_uv=False).sum())
    return total


def pandas_work(size: int) -> float:
    """A groupby/merge/sort stage on a frame of `size` rows."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"key": rng.integers(0, 1000, size), "value": rng.random(size)})
    grouped = frame.groupby("key")["value"].agg(["sum", "mean"]).reset_index()
    merged = frame.merge(grouped, on="key").sort_values("value")
    return float(merged["sum"].sum())


BODIES: dict[str, Callable[[int], object]] = {
    "python: helper call per item": python_calls,
    "python: tight arithmetic loop": python_loops,
    "numpy: svd": numpy_work,
    "pandas: groupby, merge, sort": pandas_work,
}


def timed(body: Callable[[int], object], size: int, root: str | None) -> float:
    started = time.perf_counter()
    if root is None:
        body(size)
    else:
        with observing(root):
            body(size)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    hook = "sys.monitoring" if hasattr(sys, "monitoring") else "profile hook"
    print(
        f"Python {platform.python_version()} ({hook}), size {args.size}, best of {args.repeats}\n"
    )
    print("| stage body | bare s | observed s | ratio |")
    print("|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as root:
        for name, body in BODIES.items():
            body(min(args.size, 1000))  # imports and warm-up outside the timing
            bare, observed = [], []
            for _ in range(args.repeats):
                bare.append(timed(body, args.size, None))
                observed.append(timed(body, args.size, root))
            ratio = min(observed) / min(bare)
            print(f"| {name} | {min(bare):.3f} | {min(observed):.3f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
