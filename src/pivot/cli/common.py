"""What every command shares: exit codes, error handling, and stage-name completion.

Imports only click at start-up (the engine is imported when a command runs).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from click.shell_completion import CompletionItem

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_STAGE_FAILED",
    "EXIT_USAGE",
    "complete_stages",
    "dump_json",
    "exit_interrupted",
    "handle_errors",
    "no_wait_option",
    "say_waiting",
]

F = TypeVar("F", bound=Callable[..., Any])

EXIT_STAGE_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # the same as pivot._interrupt.EXIT_INTERRUPTED

JSON_HELP = "Print the result as one JSON object on stdout (shape: docs/cli.md)."


def dump_json(value: Any) -> None:
    """A command's result for scripts: one indented JSON object on stdout."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def exit_interrupted(message: str) -> NoReturn:
    """Say so and exit 130 at once. Everything that holds resources (the project lock, the
    state db, the pool) has been released while the KeyboardInterrupt unwound; exiting without
    Python's own shutdown keeps CPython from turning the exit into a SIGINT death (-2) when the
    interrupt had landed in code run by `exec` (dataclasses, imports)."""
    click.secho(f"\n{message}", fg="yellow", err=True)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(EXIT_INTERRUPTED)


def no_wait_option(func: F) -> F:
    """`--no-wait`: fail at once when another command holds the project lock."""
    return click.option(
        "--no-wait",
        is_flag=True,
        help="If another Pivot command holds the project lock, fail at once instead of waiting.",
    )(func)


def say_waiting(holder: Any) -> None:
    """Tell the user this command waits for the project lock, and for whom."""
    who = holder.describe() if holder is not None else "another Pivot command"
    click.secho(
        f"waiting for the project lock: {who} is changing this project "
        "(Ctrl-C to stop waiting; --no-wait fails at once instead)",
        fg="yellow",
        err=True,
    )


def handle_errors(func: F) -> F:
    """Turn PivotError into a one-line message and exit 2; Ctrl-C into exit 130."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pivot.errors import PivotError

        try:
            return func(*args, **kwargs)
        except PivotError as error:
            click.secho(f"error: {error}", fg="red", err=True)
            sys.exit(EXIT_USAGE)
        except KeyboardInterrupt:
            exit_interrupted(
                "Interrupted: running stages were stopped and nothing they half-wrote was "
                "recorded. Run `pivot repro` again to continue."
            )

    return wrapper  # type: ignore[return-value]


def complete_stages(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Stage names starting with `incomplete`, from the list the last pipeline load remembered
    (never imports the pipeline: completion must be instant)."""
    from pivot import project
    from pivot.errors import PivotError

    try:
        root = project.find_root(Path.cwd())
    except PivotError:
        return []
    names = project.remembered_stage_names(root)
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]
