"""`pivot doctor`: check the installation and the project; exit 1 if anything is a problem.

Each check is a function in `CHECKS` taking the project root (None when no project was found)
and returning findings; add a check by appending one.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import click

from pivot.cli.common import handle_errors

__all__ = ["CHECKS", "Finding", "Level", "doctor"]


class Level(enum.Enum):
    OK = "ok"
    WARNING = "warning"
    PROBLEM = "problem"


@dataclasses.dataclass(frozen=True)
class Finding:
    check: str
    level: Level
    detail: str


Check = Callable[[Path | None], list[Finding]]


def _python(root: Path | None) -> list[Finding]:
    version = ".".join(str(part) for part in sys.version_info[:3])
    level = Level.OK if sys.version_info >= (3, 11) else Level.PROBLEM
    return [Finding("python", level, f"{version} ({sys.executable})")]


def _packages(root: Path | None) -> list[Finding]:
    """Pivot's version and every required package's, installed or missing."""
    import importlib.metadata

    findings = [Finding("pivot", Level.OK, importlib.metadata.version("pivot"))]
    for requirement in importlib.metadata.requires("pivot") or []:
        if "extra ==" in requirement:
            continue
        name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]
        try:
            findings.append(Finding(name, Level.OK, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            findings.append(
                Finding(name, Level.PROBLEM, f"not installed: pip install '{requirement}'")
            )
    return findings


def _project(root: Path | None) -> list[Finding]:
    from pivot import project
    from pivot.errors import PivotError

    if root is None:
        return [Finding("project", Level.PROBLEM, "no .pivot/ here or above: run `pivot init`")]
    try:
        project.load_project(root)
    except PivotError as error:
        return [Finding("config", Level.PROBLEM, str(error))]
    return [Finding("project", Level.OK, str(root))]


def _pipeline(root: Path | None) -> list[Finding]:
    from pivot import api
    from pivot.errors import PivotError

    if root is None:
        return []
    try:
        scope = api.watch_scope(root)
    except PivotError as error:
        return [Finding("pipeline", Level.PROBLEM, str(error))]
    detail = f"pipeline.py imports: {len(scope.stages)} stage(s), {len(scope.deps)} input path(s)"
    return [Finding("pipeline", Level.OK, detail)]


def _cache(root: Path | None) -> list[Finding]:
    import tempfile

    if root is None:
        return []
    cache = root / ".pivot" / "cache"
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache, prefix=".doctor-"):
            pass
    except OSError as error:
        return [Finding("cache", Level.PROBLEM, f"{cache} is not writable: {error}")]
    return [Finding("cache", Level.OK, f"{cache} is writable")]


def _git(root: Path | None) -> list[Finding]:
    import subprocess

    if root is None:
        return []
    try:
        found = subprocess.run(
            ["git", "status", "--porcelain", "--", "."],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return [Finding("git", Level.WARNING, f"git could not run: {error}")]
    if found.returncode != 0:
        detail = "not a git repository: lock files and metrics are meant to be committed"
        return [Finding("git", Level.WARNING, detail)]
    changed = [line for line in found.stdout.splitlines() if line.strip()]
    detail = f"{len(changed)} uncommitted change(s)" if changed else "clean"
    return [Finding("git", Level.OK, detail)]


def _remotes(root: Path | None) -> list[Finding]:
    """Each configured remote answers (`Remote.check`: reachable, credentials, bucket)."""
    from pivot import project, sharing
    from pivot.errors import PivotError

    if root is None:
        return []
    try:
        proj = project.load_project(root)
    except PivotError:
        return []  # reported by the project check
    findings = []
    for name in sorted(proj.config.remotes):
        try:
            remote = sharing.open_named_remote(proj, name)
            remote.check()
        except PivotError as error:
            findings.append(Finding(f"remote {name}", Level.PROBLEM, str(error)))
            continue
        findings.append(Finding(f"remote {name}", Level.OK, f"{remote.url} is reachable"))
    return findings


CHECKS: list[Check] = [_python, _packages, _project, _pipeline, _cache, _git, _remotes]

_MARK = {Level.OK: ("✓", "green"), Level.WARNING: ("!", "yellow"), Level.PROBLEM: ("✗", "red")}


def _root() -> Path | None:
    from pivot import project
    from pivot.errors import PivotError

    try:
        return project.find_root(Path(os.getcwd()))
    except PivotError:
        return None


@click.command()
@handle_errors
def doctor() -> None:
    """Check Python, packages, the project, its pipeline, cache and git; exit 1 on a problem."""
    root = _root()
    problems = 0
    for check in CHECKS:
        for finding in check(root):
            mark, color = _MARK[finding.level]
            click.echo(f"{click.style(mark, fg=color)} {finding.check}: {finding.detail}")
            problems += finding.level is Level.PROBLEM
    if problems:
        click.secho(f"{problems} problem(s) found.", fg="red")
        sys.exit(1)
    click.echo("No problems found.")
