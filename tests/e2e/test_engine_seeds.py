"""End to end: every seed example module (tests/fixtures/seed_*.py), copied into a project as its
pipeline.py with the input files it reads, runs through `pivot repro`; a second repro runs nothing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.fixtures.seeds_data import write_seed_inputs

if TYPE_CHECKING:
    from tests.e2e.conftest import E2EProject

pytest.importorskip("matplotlib")
pytest.importorskip("pandas")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SEEDS = sorted(path.stem for path in FIXTURES.glob("seed_*.py"))


def test_seed_modules_exist() -> None:
    assert SEEDS, "tests/fixtures/seed_*.py are missing"


@pytest.mark.parametrize("seed", SEEDS)
def test_seed_module_runs_end_to_end(project: E2EProject, seed: str) -> None:
    shutil.copyfile(FIXTURES / f"{seed}.py", project.root / "pipeline.py")
    write_seed_inputs(project.root)

    first = project.pivot("repro", "-j", "1", "--json")

    stages = first.json["stages"]
    assert all(value["status"] == "ran" for value in stages.values()), stages
    for name in stages:
        entry = json.loads((project.root / ".pivot" / "stages" / f"{name}.lock").read_text())
        for out in entry["outs"]:
            assert (project.root / out["path"]).exists(), (name, out["path"])
    second = project.pivot("repro", "-j", "1", "--json")
    assert {value["status"] for value in second.json["stages"].values()} <= {"skipped"}
