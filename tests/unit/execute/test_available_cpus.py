"""`executors.available_cpus` counts CPUs as loky does, without importing loky on Linux (the
platform Pivot is built and tested on; elsewhere it is loky's own count)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pivot.execute import executors


def test_same_count_as_loky(monkeypatch: pytest.MonkeyPatch) -> None:
    from loky import cpu_count

    monkeypatch.delenv("LOKY_MAX_CPU_COUNT", raising=False)
    assert executors.available_cpus() == cpu_count()
    monkeypatch.setenv("LOKY_MAX_CPU_COUNT", "1")
    assert executors.available_cpus() == cpu_count() == 1


def test_counting_imports_no_loky() -> None:
    code = (
        "import sys\n"
        "from pivot.execute import executors\n"
        "assert executors.available_cpus() >= 1\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'loky'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, None),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu.max": "150000 100000\n"}, 2),
        ({"cpu.max": "100000 100000\n"}, 1),
        ({"cpu.max": "garbage\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "250000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3),
        ({"cpu/cpu.cfs_quota_us": "250000\n"}, None),
    ],
)
def test_cgroup_quota(tmp_path: Path, files: dict[str, str], expected: int | None) -> None:
    for name, text in files.items():
        _write(tmp_path / name, text)
    assert executors.cgroup_cpu_quota(str(tmp_path)) == expected
