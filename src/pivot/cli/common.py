"""What every command shares: exit codes, error handling, and stage-name completion.

Imports only click at start-up (the engine is imported when a command runs).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.shell_completion import CompletionItem

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_STAGE_FAILED",
    "EXIT_USAGE",
    "complete_stages",
    "handle_errors",
]

F = TypeVar("F", bound=Callable[..., Any])

EXIT_STAGE_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


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
            click.secho(
                "\nInterrupted: running stages were stopped and nothing they half-wrote was "
                "recorded. Run `pivot repro` again to continue.",
                fg="yellow",
                err=True,
            )
            sys.exit(EXIT_INTERRUPTED)

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
