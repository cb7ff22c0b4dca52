"""The live display as a user sees it: `pivot repro` in a real terminal (tmux), screen captured.

Mid-run the screen shows the running stage with its elapsed time and its own progress
(`pivot.progress`), the waiting stage, and the overall bar with counts; at the end, each stage's
result and the summary line. A non-terminal stdout gets plain lines instead.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import cli_env

if TYPE_CHECKING:
    from tests.e2e.conftest import E2EProject

PIPELINE = """
import pivot


def slow(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[str, Out("slow.txt", loaders.Text())]:
    pathlib.Path("started").write_text("yes")
    deadline = time.monotonic() + 60
    for _ in pivot.progress(range(4), desc="chunks"):
        pass
    while not pathlib.Path("release").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return raw.upper()


def after(text: Annotated[str, Dep("slow.txt", loaders.Text())]) -> Annotated[str, Out("after.txt", loaders.Text())]:
    return text + "!"


pipeline = Pipeline("tty")
pipeline.register(slow)
pipeline.register(after)
"""


class Terminal:
    """A detached tmux session on a private server socket (no clash with other test runs)."""

    def __init__(self) -> None:
        tmux = shutil.which("tmux")
        assert tmux, "tmux is required (the Makefile installs it: `make tools`)"
        self.base = [tmux, "-L", f"pivot-test-{uuid.uuid4().hex[:12]}", "-f", "/dev/null"]

    def start(self, command: str, *, width: int = 100, height: int = 24) -> None:
        size = ["-x", str(width), "-y", str(height)]
        subprocess.run([*self.base, "new-session", "-d", *size, command], check=True)

    def screen(self) -> str:
        found = subprocess.run(
            [*self.base, "capture-pane", "-p"], capture_output=True, text=True, check=False
        )
        return found.stdout

    def wait_for(self, pattern: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if re.search(pattern, screen):
                return screen
            time.sleep(0.1)
        pytest.fail(f"the screen never matched {pattern!r}:\n{screen}")

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True, check=False)


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    term = Terminal()
    yield term
    term.close()


def _command(project: E2EProject, *args: str) -> str:
    env = cli_env()
    env.pop("NO_COLOR", None)
    exports = " ".join(
        f"{name}={shlex.quote(env[name])}" for name in ("PYTHONPATH", "PATH") if name in env
    )
    pivot = " ".join(shlex.quote(part) for part in (sys.executable, "-m", "pivot", *args))
    # keep the pane open after pivot exits so the final screen can be read
    return (
        f"cd {shlex.quote(str(project.root))} && env TERM=xterm-256color {exports} "
        f"PYTHONDONTWRITEBYTECODE=1 {pivot}; echo EXIT=$?; sleep 60"
    )


def test_the_live_display_mid_run_and_the_summary(project: E2EProject, terminal: Terminal) -> None:
    project.gen({"raw.txt": "hello\n"})
    project.pipeline(PIPELINE)

    terminal.start(_command(project, "repro", "-j", "1"))

    deadline = time.monotonic() + 60
    while not project.exists("started") and time.monotonic() < deadline:
        time.sleep(0.05)
    mid = terminal.wait_for(r"running [1-9]\d*\.\ds")  # elapsed time has advanced
    assert re.search(r"▶ slow\s+running \d+\.\ds\s+chunks 4/4", mid), mid
    assert re.search(r"○ after\s+waiting", mid), mid
    assert re.search(r"0/2 done, 1 running", mid), mid

    project.gen({"release": ""})
    final = terminal.wait_for(r"EXIT=\d+")
    assert "EXIT=0" in final, final
    assert re.search(r"✓ slow\s+done \d+\.\ds", final), final
    assert re.search(r"✓ after\s+done", final), final
    assert re.search(r"2/2 done", final), final
    assert re.search(r"Ran 2, restored 0, up to date 0 in \d+\.\ds\.", final), final


def test_plain_lines_when_not_a_terminal_and_quiet(project: E2EProject) -> None:
    project.gen({"raw.txt": "hello\n", "release": ""})
    project.pipeline(PIPELINE)

    plain = project.pivot("repro", "-j", "1", "-v")
    assert "[1/2] slow ..." in plain.stdout and "[1/2] slow done" in plain.stdout
    assert "    no previous run" in plain.stdout  # --verbose: the reasons
    assert "\x1b[" not in plain.stdout  # no terminal control codes

    project.gen({"raw.txt": "again\n"})
    quiet = project.pivot("repro", "-j", "1", "--quiet")
    assert "slow ..." not in quiet.stdout
    assert "[1/2] slow done" in quiet.stdout
    assert "Ran 2, restored 0, up to date 0" in quiet.stdout


def test_show_output_prefixes_lines_with_the_stage(project: E2EProject) -> None:
    project.gen({"raw.txt": "hello\n", "release": ""})
    project.pipeline(
        PIPELINE.replace(
            'pathlib.Path("started").write_text("yes")',
            'pathlib.Path("started").write_text("yes"); print("working on", raw.strip())',
        )
    )

    shown = project.pivot("repro", "-j", "1", "--show-output")
    assert "slow | working on hello" in shown.stdout
    hidden = project.pivot("repro", "-j", "1", "--force")
    assert "working on" not in hidden.stdout
    assert os.path.exists(project.root / ".pivot" / "logs" / "slow.log")
