"""The benchmark harness stays runnable: a tiny Pivot-only run measures every operation (the
plain-Python baseline and the CPU-bound -j 1 / -j 2 shape too) and re-runs exactly the stages
each operation should (speed goals themselves live in benchmarks/)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_tiny_benchmark_run_completes_and_checks_its_work(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "harness.py"),
        "--sizes",
        "10",
        "--repeats",
        "1",
        "--no-dvc",
        "--no-hashing",
        "--cpu-stages",
        "2",
        "--cpu-seconds",
        "0.02",
        "--workdir",
        str(tmp_path / "work"),
        "--keep",
        "--out",
        str(out),
    ]

    completed = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "| 10 | no-op `repro`" in completed.stdout
    assert "| 10 | " in completed.stdout.split("Pivot per stage against N")[1]
    measurements = json.loads(out.read_text())["measurements"]
    measured = {m["op"]: m for m in measurements if m["n"] == 10}
    assert set(measured) >= {"full", "noop", "noop-usual", "status", "leaf", "helper", "plain"}
    expected_runs = (
        ("full", 10),
        ("noop", 0),
        ("noop-usual", 0),
        ("status", 0),
        ("helper", 1),
        ("plain", 10),
    )
    for op, expected in expected_runs:
        assert measured[op]["stages_run"] == [expected], op
        assert measured[op]["failures"] == [], op
    assert measured["noop"]["rss_max"] > 1_000_000
    # every timed command found the stage modules compiled (not only the plain baseline), as
    # Pivot's import leaves them: checked hash-based bytecode (PEP 552 flags 0b11)
    compiled = list((tmp_path / "work" / "template-pivot-10" / "__pycache__").glob("stages.*.pyc"))
    assert compiled and compiled[0].read_bytes()[4:8] == (0b11).to_bytes(4, "little")
    parallel = {m["op"]: m for m in measurements if m["section"] == "parallel"}
    for op in ("cpu-j1", "cpu-j2"):
        assert parallel[op]["stages_run"] == [2], op
        assert parallel[op]["failures"] == [], op


def test_the_file_system_floor_times_both_ways_of_writing(tmp_path: Path) -> None:
    """`fs_floor.py` writes what it says (one file per stage for the baseline; an output, a
    blob and a lock per stage for Pivot's way, no temp file left) and prints both timings."""
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "fs_floor.py"),
            str(tmp_path / "floor"),
            "--n",
            "7",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "plain baseline: one create:" in completed.stdout
    assert "Pivot: three atomic writes:" in completed.stdout
    counts = {d.name: sorted(p.name for p in d.iterdir()) for d in (tmp_path / "floor").iterdir()}
    assert {name: len(files) for name, files in counts.items()} == {
        "plain": 7,
        "out": 7,
        "cache": 7,
        "stages": 7,
    }
    assert not any(name.endswith(".tmp") for files in counts.values() for name in files)
