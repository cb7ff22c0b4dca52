"""A run's first fingerprinting shared with a forked copy of the process records exactly what a
serial one does: the same locks, the same run-cache keys (a stage with no lock whose run is
cached is restored), and a later serial plan finds every stage up to date.

The CLI shares only batches of hundreds of stages; these tests run it through a small driver that
shares any batch of two modules, and reports each copy's result on stderr.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.e2e.conftest import E2EProject, run_python

DRIVER = """\
import sys

from pivot.fingerprint import forked, stage

stage.SHARE_AT_LEAST = 1
result = forked.Forked.result


def reported(self):
    sent = result(self)
    sys.stderr.write(f"copy made {len(sent[0]) if sent else 'nothing'}\\n")
    return sent


forked.Forked.result = reported
from pivot.cli.main import main

sys.argv = ["pivot", *sys.argv[1:]]
main()
"""


def _module(prefix: str) -> str:
    header = (
        "from typing import Annotated\n\nimport helpers\nfrom pivot import loaders\n"
        "from pivot.outputs import Dep, Out\n\n"
    )
    defs = [
        f"def {prefix}{i}(\n"
        f'    raw: Annotated[str, Dep("raw.txt", loaders.Text())],\n'
        f') -> Annotated[str, Out("out/{prefix}{i}.txt", loaders.Text())]:\n'
        f'    return helpers.shout(raw) + " {prefix}{i}"\n\n\n'
        for i in range(3)
    ]
    return header + "".join(defs)


NAMES = [f"{prefix}{i}" for prefix in "ab" for i in range(3)]
FILES = {
    "raw.txt": "in",
    "suffix.txt": "!",
    "helpers.py": (
        "import pathlib\n\nSUFFIX = pathlib.Path('suffix.txt').read_text()\n\n\n"
        "def shout(text):\n    return text.upper() + SUFFIX\n"
    ),
    "stages_a.py": _module("a"),
    "stages_b.py": _module("b"),
    "pipeline.py": (
        "import stages_a\nimport stages_b\nfrom pivot.pipeline import Pipeline\n\n"
        "pipeline = Pipeline('forked')\n"
        + "".join(f"pipeline.register(stages_{n[0]}.{n})\n" for n in NAMES)
    ),
}


def _shared(project: E2EProject, tmp_path: Path) -> tuple[dict[str, str], str]:
    """`pivot repro --json` through the driver: ({stage: status}, stderr)."""
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER, encoding="utf-8")
    done = run_python(project.root, [str(driver)], "repro", "--json")
    statuses = {name: value["status"] for name, value in done.json["stages"].items()}
    return statuses, done.stderr


def _locks(project: E2EProject) -> dict[str, bytes]:
    return {name: project.lock_path(name).read_bytes() for name in NAMES}


def test_a_forked_first_run_records_what_a_serial_plan_expects(project, tmp_path):
    project.gen(FILES)

    ran, stderr = _shared(project, tmp_path)

    assert ran == dict.fromkeys(NAMES, "ran")
    assert "copy made 3" in stderr  # one module's stages were fingerprinted by the copy
    assert project.read("out/b2.txt") == "IN! b2"
    os.remove(project.root / ".pivot" / "state.db")  # no stored fingerprint: status walks all
    assert {name: step["action"] for name, step in project.status_json().items()} == dict.fromkeys(
        NAMES, "skip"
    )
    assert project.repro_json() == dict.fromkeys(NAMES, "skipped")


def test_a_stage_without_a_lock_is_restored_from_the_run_cache_when_forked(project, tmp_path):
    project.gen(FILES)
    assert project.repro_json() == dict.fromkeys(NAMES, "ran")  # -j 1: fingerprinted serially
    serial = _locks(project)
    for name in NAMES:
        project.lock_path(name).unlink()
        (project.root / "out" / f"{name}.txt").unlink()
    for module in ("stages_a.py", "stages_b.py"):  # stored fingerprints no longer hold
        stat = (project.root / module).stat()
        os.utime(project.root / module, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))

    restored, stderr = _shared(project, tmp_path)

    assert "copy made 3" in stderr
    assert restored == dict.fromkeys(NAMES, "restored")
    assert _locks(project) == serial
    assert project.read("out/a0.txt") == "IN! a0"
