"""End-to-end fixtures: a real temporary git project and the real `pivot` CLI in a subprocess.

`project` (like DVC's `tmp_dir`) is an initialised project; `project.gen({...})` writes files,
`project.pipeline(body)` writes `pipeline.py` with a common header, `project.pivot(...)` runs
`python -m pivot ...` there and returns exit code, stdout, stderr and parsed `--json` output.

Stages in these pipelines call `_ran("name")`, which appends the name to `runs.log` (relative to
the working directory, so it also proves stages run with the project root as cwd). Real stages
never do manual I/O; this side channel is only how a test sees which stage functions were called.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

__all__ = ["HEADER", "Cli", "E2EProject", "run_python"]

SRC = Path(__file__).resolve().parents[2] / "src"

HEADER = '''\
from __future__ import annotations

import os
import pathlib
import time
from typing import Annotated, Any, TypedDict

from pivot import loaders
from pivot.outputs import Dep, DirectoryOut, IncrementalOut, Metric, Out, PlaceholderDep, Plot
from pivot.pipeline import Pipeline
from pivot.stage_def import StageParams


def _ran(name: str) -> None:
    """Test side channel: record that a stage function was called (not a declared output)."""
    with open("runs.log", "a", encoding="utf-8") as handle:
        handle.write(name + "\\n")

'''


@dataclasses.dataclass(frozen=True)
class Cli:
    """One finished `pivot` invocation."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    @property
    def events(self) -> list[Any]:
        """`repro/run --json` output: one JSON object per line (every line must parse)."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    @property
    def json(self) -> Any:
        """The JSON document printed (`status --json`), or the last event of a `--json` event
        stream (`run_end`, which holds the whole run report)."""
        if self.stdout.startswith('{"event"'):
            return self.events[-1]
        return json.loads(self.stdout)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def describe(self) -> str:
        return (
            f"`pivot {' '.join(self.args)}` exited {self.code}\n"
            f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
        )


def cli_env() -> dict[str, str]:
    """The environment for CLI subprocesses: our sources importable, no stale bytecode, and
    `python` on PATH being the interpreter running the tests."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH", "")]))
    # Command stages (pivot.yaml `cmd:`, imported DVC stages) run `python`: this interpreter.
    env["PATH"] = os.pathsep.join(filter(None, [str(Path(sys.executable).parent), env.get("PATH")]))
    # Tests rewrite pipeline.py within the same second; a stale .pyc must never be used.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.setdefault("MPLBACKEND", "Agg")
    env["NO_COLOR"] = "1"
    return env


def run_pivot(cwd: Path, *args: str, expect: int | None = 0, timeout: float = 120) -> Cli:
    """Run `python -m pivot *args` in `cwd`; assert the exit code unless `expect` is None."""
    return run_python(cwd, ["-m", "pivot"], *args, expect=expect, timeout=timeout)


def run_python(
    cwd: Path, start: list[str], *args: str, expect: int | None = 0, timeout: float = 120
) -> Cli:
    """Run `python *start *args` in `cwd` (`start`: a script, or `-m` and a module taking
    pivot's arguments); assert the exit code unless `expect` is None."""
    completed = subprocess.run(
        [sys.executable, *start, *args],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    result = Cli(tuple(args), completed.returncode, completed.stdout, completed.stderr)
    if expect is not None:
        assert result.code == expect, result.describe()
    return result


def start_pivot(cwd: Path, *args: str) -> subprocess.Popen[str]:
    """Start `pivot` in its own process group (so a test can signal or kill the whole group)."""
    return subprocess.Popen(
        [sys.executable, "-m", "pivot", *args],
        cwd=cwd,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_default_sigint,
    )


def _default_sigint() -> None:
    """Let Ctrl-C (SIGINT) reach Python even if the test runner's process ignores it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


class E2EProject:
    """A temporary git repository made a Pivot project; helpers to write files and run pivot."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def gen(self, files: Mapping[str, str | bytes]) -> None:
        """Write `files` (relative path -> text or bytes), creating parent directories."""
        for relative, content in files.items():
            path = self.root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")

    def pipeline(self, body: str) -> None:
        """Write pipeline.py: the common HEADER then `body` (dedented)."""
        self.gen({"pipeline.py": HEADER + textwrap.dedent(body)})

    def pivot(self, *args: str, expect: int | None = 0, cwd: Path | None = None) -> Cli:
        return run_pivot(cwd or self.root, *args, expect=expect)

    def start(self, *args: str) -> subprocess.Popen[str]:
        """Start `pivot *args` here in its own process group, without waiting."""
        return start_pivot(self.root, *args)

    def repro_json(self, *args: str, expect: int | None = 0) -> dict[str, str]:
        """`pivot repro --json -j 1 *args` -> {stage: status}."""
        result = self.pivot("repro", "--json", "-j", "1", *args, expect=expect)
        return {name: value["status"] for name, value in result.json["stages"].items()}

    def status_json(self, *args: str) -> dict[str, Any]:
        return dict(self.pivot("status", "--json", *args).json["stages"])

    def read(self, relative: str) -> str:
        return (self.root / relative).read_text(encoding="utf-8")

    def exists(self, relative: str) -> bool:
        return (self.root / relative).exists()

    def lock_path(self, stage: str) -> Path:
        return self.root / ".pivot" / "stages" / f"{stage}.lock"

    def lock(self, stage: str) -> Any:
        """The parsed lock file of `stage`."""
        return json.loads(self.lock_path(stage).read_text(encoding="utf-8"))

    def out_hash(self, stage: str, path: str) -> str:
        outs = {out["path"]: out for out in self.lock(stage)["outs"]}
        return str(outs[path]["hash"])

    def blob(self, digest: str) -> Path:
        return self.root / ".pivot" / "cache" / "files" / digest[:2] / digest[2:]

    def runs(self) -> list[str]:
        """Stage functions called since the last `runs()` (reads and clears runs.log)."""
        log = self.root / "runs.log"
        if not log.exists():
            return []
        names = log.read_text(encoding="utf-8").split()
        log.unlink()
        return names


def make_git_project(directory: Path, *, init: bool = True) -> E2EProject:
    directory.mkdir(parents=True, exist_ok=True)
    git(directory, "init", "-q")
    git(directory, "config", "user.email", "e2e@pivot.invalid")
    git(directory, "config", "user.name", "Pivot e2e")
    if (
        init
    ):  # in-process (same code as `pivot init`, minus an interpreter start); tested via the CLI
        from pivot import api

        api.init(directory)
    return E2EProject(directory)


@pytest.fixture
def project(tmp_path: Path) -> E2EProject:
    """An initialised Pivot project in a fresh git repository."""
    return make_git_project(tmp_path / "proj")


@pytest.fixture
def bare_repo(tmp_path: Path) -> E2EProject:
    """A fresh git repository where `pivot init` has not run."""
    return make_git_project(tmp_path / "repo", init=False)
