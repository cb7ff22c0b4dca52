"""`benchmarks/phases.py` times a real command's phases: a helper edit in a small generated
project shows its plan, its run with workers forked, and the plan made again."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import generate  # noqa: E402 (the benchmarks' own module, found through the path above)


def _phases(project: Path, *args: str) -> dict[str, list[float]]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "phases.py"), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    rows: dict[str, list[float]] = {}  # phase -> its CPU seconds, a row each time it ran
    for line in completed.stderr.splitlines():
        found = re.match(r"\s*[\d.]*\s+(\S.*?)\s+(?:([\d.]+)\s+)?([\d.]+)\s+(\d+)$", line)
        if found and "phase" not in line:
            rows.setdefault(found.group(1).strip(), []).append(float(found.group(3)))
    return rows


def test_a_helper_edit_shows_its_phases(tmp_path: Path) -> None:
    project = tmp_path / "bench"
    generate.generate_pivot(project, 30, [sys.executable, "-m", "pivot"])
    _phases(project, "repro", "-q")
    generate.edit_helper(project, 1)

    rows = _phases(project, "repro", "-q", "-j", "2")

    assert len(rows["plan"]) == 2  # the first plan, and the plan made again after the run
    for phase in ("import pipeline.py, register stages", "code fingerprints", "run"):
        assert len(rows[phase]) == 1, phase
    assert "plan again (for the no-op snapshot)" in rows
    assert rows["children reaped (workers)"][0] > 0  # the stages ran in forked workers
    assert rows["total (this process)"][0] > rows["run"][0]
