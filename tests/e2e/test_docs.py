"""The code in README.md and docs/*.md works: examples run, fragments compile, CLI lines are real.

The convention (also in docs/README.md):
- a ```python block whose first line is `# pipeline.py`, or a block with `file=pivot.yaml` in its
  info string, is a runnable project: written to a fresh
  git repository, then `pivot init` and `pivot repro` must succeed, every output the lock files
  record must exist, and a second `pivot repro` must run nothing and touch no output or lock file;
- a block naming a file (`# some/path.py` as the first line of a python block, or `file=path` in
  the info string) is written into the first runnable project after it in the page (the last one
  if none follows); `test_*.py` files are run with pytest in the project afterwards;
- every other python block must compile;
- every `pivot ...` line in a bash block uses a command and options that `pivot <cmd> --help` lists.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import cli_env

ROOT = Path(__file__).resolve().parents[2]
PAGES = (
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "examples").glob("*/README.md")),
)
SHELL_LANGUAGES = frozenset({"bash", "sh", "shell", "console"})
ANCHORS = frozenset({"pipeline.py", "pivot.yaml"})  # a file that makes a block a runnable project

_OPEN = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_PATH_COMMENT = re.compile(r"^#\s*(?P<path>[\w.-]+(?:/[\w.-]+)*\.py)\s*$")
_FILE_ATTRIBUTE = re.compile(r"""\bfile=["']?(?P<path>[^\s"']+)""")


@dataclasses.dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int
    info: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def language(self) -> str:
        return self.info.split()[0].lower() if self.info.split() else ""

    @property
    def file_name(self) -> str | None:
        """The project file this block is, if it names one."""
        attribute = _FILE_ATTRIBUTE.search(self.info)
        if attribute:
            return attribute.group("path")
        first_line = self.text.split("\n", 1)[0]
        comment = _PATH_COMMENT.match(first_line) if self.language == "python" else None
        return comment.group("path") if comment else None


@dataclasses.dataclass(frozen=True)
class Project:
    """A runnable example: its `pipeline.py` block and the files written next to it."""

    pipeline: Block
    files: tuple[Block, ...]

    @property
    def tests(self) -> tuple[str, ...]:
        names = (block.file_name or "" for block in self.files)
        return tuple(name for name in names if Path(name).name.startswith("test_"))


def read_blocks(page: Path) -> list[Block]:
    """The fenced blocks of a markdown page (CommonMark fences, backticks or tildes)."""
    blocks: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = _OPEN.match(lines[index])
        index += 1
        if not opening:
            continue
        fence = opening.group("fence")
        closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        start = index
        while index < len(lines) and not closing.match(lines[index]):
            index += 1
        text = "\n".join(lines[start:index]) + "\n"
        blocks.append(Block(page, start, opening.group("info").strip(), text))
        index += 1
    return blocks


def read_projects(page: Path) -> list[Project]:
    """Group a page's file blocks with the `# pipeline.py` (or pivot.yaml) block they belong to."""
    projects: list[Project] = []
    pending: list[Block] = []
    for block in read_blocks(page):
        name = block.file_name
        if name in ANCHORS:
            projects.append(Project(block, tuple(pending)))
            pending = []
        elif name is not None:
            pending.append(block)
    if pending:
        assert projects, (
            f"{pending[0].where}: a file block, but no `# pipeline.py` block in the page"
        )
        last = projects.pop()
        projects.append(Project(last.pipeline, last.files + tuple(pending)))
    return projects


ALL_BLOCKS = [block for page in PAGES for block in read_blocks(page)]
PYTHON_BLOCKS = [block for block in ALL_BLOCKS if block.language in ("python", "py")]
SHELL_BLOCKS = [block for block in ALL_BLOCKS if block.language in SHELL_LANGUAGES]
PROJECTS = [project for page in PAGES for project in read_projects(page)]


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, env=cli_env(), capture_output=True, text=True, check=False, timeout=600
    )


def pivot(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = run([sys.executable, "-m", "pivot", *args], project)
    assert result.returncode == 0, (
        f"`pivot {' '.join(args)}` exited {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return result


def make_project(project: Project, directory: Path) -> Path:
    for command in (
        ["git", "init", "-q"],
        ["git", "config", "user.email", "docs@pivot.invalid"],
        ["git", "config", "user.name", "Pivot docs"],
    ):
        subprocess.run(command, cwd=directory, check=True)
    for block in (*project.files, project.pipeline):
        assert block.file_name is not None
        target = directory / block.file_name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.text, encoding="utf-8")
    return directory


def recorded_outputs(directory: Path) -> dict[str, list[str]]:
    """Each stage's output paths, as its lock file records them."""
    locks = sorted((directory / ".pivot" / "stages").glob("*.lock"))
    return {
        lock.stem: [out["path"] for out in json.loads(lock.read_text())["outs"]] for lock in locks
    }


def snapshot(directory: Path, paths: list[str]) -> dict[str, tuple[int, int]]:
    """(mtime_ns, size) of each output file and lock file."""
    files: list[Path] = []
    for path in paths:
        target = directory / path
        files.extend(
            sorted(p for p in target.rglob("*") if p.is_file()) if target.is_dir() else [target]
        )
    files.extend(sorted((directory / ".pivot" / "stages").glob("*.lock")))
    return {str(p.relative_to(directory)): (p.stat().st_mtime_ns, p.stat().st_size) for p in files}


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda block: block.where)
def test_python_block_compiles(block: Block) -> None:
    compile(block.text, block.where, "exec")


@pytest.mark.parametrize("project", PROJECTS, ids=lambda project: project.pipeline.where)
def test_runnable_example(project: Project, tmp_path: Path) -> None:
    where = project.pipeline.where
    directory = make_project(project, tmp_path)
    pivot(directory, "init")
    pivot(directory, "repro")
    recorded = recorded_outputs(directory)
    assert recorded, f"{where}: `pivot repro` wrote no lock file"
    outputs = [path for paths in recorded.values() for path in paths]
    missing = [path for path in outputs if not (directory / path).exists()]
    assert not missing, f"{where}: outputs missing after `pivot repro`: {missing}"
    before = snapshot(directory, outputs)
    report = json.loads(pivot(directory, "repro", "--json").stdout.splitlines()[-1])
    statuses = {name: stage["status"] for name, stage in report["stages"].items()}
    assert statuses == dict.fromkeys(recorded, "skipped"), f"{where}: second run: {statuses}"
    assert snapshot(directory, outputs) == before, f"{where}: a second `pivot repro` rewrote files"
    if project.tests:
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *project.tests]
        result = run(command, directory)
        assert result.returncode == 0, result.stdout + result.stderr


def pivot_invocations(block: Block) -> list[list[str]]:
    """The `pivot ...` commands of a shell block, as argument lists (comments dropped)."""
    found = []
    for line in block.text.splitlines():
        line = line.strip().removeprefix("$ ")
        for segment in re.split(r"&&|\|\||;|\|", line):
            words = shlex.split(segment, comments=True)
            if words and words[0] == "pivot":
                found.append(words[1:])
    return found


@functools.cache
def help_text(*command: str) -> str:
    result = run([sys.executable, "-m", "pivot", *command, "--help"], ROOT)
    assert result.returncode == 0, f"`pivot {' '.join(command)} --help` failed:\n{result.stderr}"
    return result.stdout


def _listed_commands(*command: str) -> list[str]:
    """The subcommands `pivot *command --help` lists (none for a command that is not a group)."""
    commands = help_text(*command).partition("Commands:")[2]
    return re.findall(r"^  ([a-z][\w-]*)", commands, flags=re.MULTILINE)


def _uses_only_real_commands_and_options(arguments: list[str], where: str) -> None:
    command: list[str] = []
    for word in arguments:  # descend through groups: `pivot metrics diff ...`
        listed = _listed_commands(*command)
        if word.startswith("-") or not listed:
            break
        assert word in listed, (
            f"{where}: `pivot {' '.join([*command, word])}` is not a command ({listed})"
        )
        command.append(word)
    assert command or not arguments, f"{where}: `pivot {' '.join(arguments)}` names no command"
    text = help_text(*command)
    for word in arguments:
        option = word.split("=", 1)[0]
        if option.startswith("-") and option != "--":
            assert re.search(rf"(^|[\s,/]){re.escape(option)}\b", text, flags=re.MULTILINE), (
                f"{where}: `pivot {' '.join(arguments)}` uses {option}, which "
                f"`pivot {' '.join(command)} --help` does not list"
            )


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=lambda block: block.where)
def test_shell_block_uses_real_cli(block: Block) -> None:
    for arguments in pivot_invocations(block):
        _uses_only_real_commands_and_options(arguments, block.where)


def test_every_page_is_checked() -> None:
    """Guard the parser: the pages exist and hold runnable examples."""
    assert (ROOT / "README.md") in PAGES
    assert {project.pipeline.page.name for project in PROJECTS} >= {"README.md", "stages.md"}
    assert len(PROJECTS) >= 5
