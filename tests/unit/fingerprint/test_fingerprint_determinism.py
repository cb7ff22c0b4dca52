"""Manifests are identical across processes, hash seeds and checkouts at different paths."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[3] / "src"

PROJECT = {
    "pipeline.py": """
        import dataclasses
        import enum
        import functools
        import re

        import pydantic

        from shapes import Square, area

        WORDS = {"alpha", "beta", "gamma", "delta", "epsilon"}
        NESTED = {"k": frozenset({"x", "y", "z"}), "sets": [{"p", "q"}, {"r", "s"}]}
        PATTERN = re.compile(r"\\w+")


        class Level(enum.IntEnum):
            LOW = 1
            HIGH = 2


        @dataclasses.dataclass(frozen=True)
        class Config:
            names: frozenset = frozenset({"a", "b", "c"})
            level: Level = Level.HIGH


        class Options(pydantic.BaseModel):
            tags: set[str] = {"u", "v", "w"}


        CONFIG = Config()
        OPTIONS = Options()
        partial_area = functools.partial(area, scale={"m", "n"})
        SHAPE = Square(3)


        def stage(x: int) -> Config:
            return (WORDS, NESTED, PATTERN, CONFIG, OPTIONS, partial_area(x), SHAPE.area(), Level.LOW)
    """,
    "shapes.py": """
        def area(x, scale=None):
            return x * x


        class Square:
            def __init__(self, side):
                self.side = side
                self.labels = {"one", "two", "three"}

            def area(self):
                return area(self.side)
    """,
}

PRINT = (
    "import json, pipeline; from pivot.fingerprint import fingerprint_stage; "
    "print(json.dumps(dict(fingerprint_stage(pipeline.stage, stage_name='s').manifest), sort_keys=True))"
)


def manifest_in(directory: Path, seed: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": f"{SRC}{os.pathsep}{directory}"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    completed = subprocess.run(
        [sys.executable, "-c", PRINT],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(completed.stdout))


def test_two_processes_with_other_hash_seeds_at_other_paths_agree(projects):
    first = projects.new_directory()
    projects.write(first, PROJECT)
    second = projects.base / "elsewhere" / "checkout"
    shutil.copytree(first, second)

    one = manifest_in(first, "0")
    other = manifest_in(second, "4242")

    assert one == other
    assert {"const:pipeline.WORDS", "const:pipeline.SHAPE", "method:shapes.Square.area"} <= set(one)


def test_the_in_process_manifest_matches_a_fresh_process(projects):
    directory = projects.new_directory()
    projects.write(directory, PROJECT)

    assert dict(projects.fingerprint_in(directory).manifest) == manifest_in(directory, "7")
