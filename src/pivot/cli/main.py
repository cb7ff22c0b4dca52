"""The `pivot` command: parse options, call one `pivot.api` function, render the result.

Imports only click at start-up; the engine is imported when a command runs (fast `--help`).
Exit codes: 0 success, 1 a stage failed, 2 usage or project error, 130 interrupted.
"""

from __future__ import annotations

import atexit
import gc
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from pivot.cli.common import (
    EXIT_STAGE_FAILED,
    complete_stages,
    dump_json,
    exit_interrupted,
    handle_errors,
    no_wait_option,
    say_waiting,
)

__all__ = ["cli", "main"]

F = TypeVar("F", bound=Callable[..., Any])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pivot", prog_name="pivot")
def cli() -> None:
    """Pivot: typed Python pipelines that re-run exactly what changed."""


@cli.command()
@click.option("--force", is_flag=True, help="Rewrite the config of an existing project.")
@handle_errors
def init(force: bool) -> None:
    """Make the current directory a Pivot project (.pivot/, .pivotignore)."""
    from pivot import api

    project = api.init(".", force=force)
    click.echo(
        f"Initialised a Pivot project in {project.root}. Next: write pipeline.py, then `pivot repro`."
    )


def _run_options(func: F) -> F:
    for option in reversed(
        [
            click.option(
                "-j",
                "--jobs",
                type=click.IntRange(min=1),
                default=None,
                help="Stages to run in parallel (default: CPUs available).",
            ),
            click.option(
                "-f", "--force", is_flag=True, help="Run the selected stages even if up to date."
            ),
            click.option(
                "-k",
                "--keep-going",
                is_flag=True,
                help="After a failure, keep running stages that do not depend on it.",
            ),
            click.option("-n", "--dry-run", is_flag=True, help="Show what would run, run nothing."),
            click.option(
                "--explain",
                is_flag=True,
                help="Show why each stage runs, in detail (file:line for code), before running.",
            ),
            click.option(
                "--json",
                "as_json",
                is_flag=True,
                help="Print events as JSON Lines (schema in docs/cli.md); the last is the report.",
            ),
            click.option(
                "-q", "--quiet", is_flag=True, help="Plain lines, only for stages that did work."
            ),
            click.option("-v", "--verbose", is_flag=True, help="Show why each stage runs."),
            click.option(
                "--show-output",
                is_flag=True,
                help="Stream what each stage prints as it runs, prefixed by the stage name.",
            ),
            click.option(
                "-w",
                "--watch",
                is_flag=True,
                help="Run, then re-run the affected stages whenever their code or data change.",
            ),
            click.option(
                "--debounce",
                type=click.IntRange(min=0),
                default=200,
                show_default=True,
                metavar="MS",
                help="With --watch: wait this long after the last change before running.",
            ),
            click.option(
                "--executor",
                default=None,
                metavar="WHERE",
                help="Where stages run: local (this machine's process pool), dask (a local Dask "
                "cluster) or a scheduler address such as dask://HOST:8786 (default: the "
                "`executor:` setting; docs/cluster.md).",
            ),
            click.option(
                "--no-download",
                "download",
                is_flag=True,
                flag_value=False,
                default=True,
                help="With a cluster executor: leave outputs on the remote (`pivot pull` gets them).",
            ),
            click.option(
                "--strict",
                is_flag=True,
                help="Fail a stage that reads or writes a project file it does not declare.",
            ),
            click.option(
                "--no-run-cache",
                "no_run_cache",
                is_flag=True,
                help="Run stages even if an earlier run had the same code, params and inputs.",
            ),
            click.option(
                "--pull",
                is_flag=True,
                help="First fetch from the default remote what stages to run need (their "
                "outputs or a run-cache hit); only stages with nothing to fetch run.",
            ),
            no_wait_option,
        ]
    ):
        func = option(func)
    return func


def _reproduce(stages: tuple[str, ...], *, upstream: bool, **options: Any) -> None:
    from pivot.cli import reproduce

    if not reproduce.reproduce(stages, upstream=upstream, **options):
        sys.exit(EXIT_STAGE_FAILED)


@cli.command()
@click.argument("stages", nargs=-1, shell_complete=complete_stages)
@_run_options
@handle_errors
def repro(stages: tuple[str, ...], **options: Any) -> None:
    """Bring STAGES (default: all) and everything they depend on up to date."""
    _reproduce(stages, upstream=True, **options)


@cli.command()
@click.argument("stages", nargs=-1, required=True, shell_complete=complete_stages)
@_run_options
@handle_errors
def run(stages: tuple[str, ...], **options: Any) -> None:
    """Run only STAGES, not their upstream (their inputs must exist)."""
    _reproduce(stages, upstream=False, **options)


@cli.command()
@click.argument("stages", nargs=-1, shell_complete=complete_stages)
@click.option("--explain", is_flag=True, help="Show every reason in detail, with file:line.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@handle_errors
def status(stages: tuple[str, ...], explain: bool, as_json: bool) -> None:
    """Show which stages are stale and why (what `pivot repro` would do)."""
    from pivot.cli import noop, render

    decided = None if stages else noop.status()
    if decided is None:
        from pivot import api

        decided = api.status(stages, noop_snapshot=True)
    if as_json:
        return dump_json(render.plan_json(decided))
    render.print_plan(decided, explain=explain)


@cli.command()
@click.argument("targets", nargs=-1, shell_complete=complete_stages)
@no_wait_option
@handle_errors
def checkout(targets: tuple[str, ...], no_wait: bool) -> None:
    """Restore outputs from the cache (TARGETS: stage names or output paths; default: all)."""
    from pivot import api

    result = api.checkout(targets, wait=not no_wait, on_wait=say_waiting)
    for name in result.restored:
        click.echo(f"restored outputs of '{name}'")
    for path in result.not_cached:
        click.secho(
            f"'{path}' is not cached, so it cannot be restored: run `pivot repro`", fg="yellow"
        )
    for path in result.unsaved:
        click.secho(
            f"tracked '{path}' changed and was not re-tracked, so it was left as it is: run "
            f"`pivot track {path}` to keep it, or delete it and check out again",
            fg="yellow",
        )
    if result.never_ran:
        click.echo(f"never run, nothing to restore: {', '.join(result.never_ran)}")
    click.echo(
        f"{len(result.restored)} stage(s) restored, {len(result.unchanged)} already in place."
    )


@cli.command()
@click.argument("stages", nargs=-1, shell_complete=complete_stages)
@no_wait_option
@handle_errors
def commit(stages: tuple[str, ...], no_wait: bool) -> None:
    """Record the current outputs, inputs, params and code of STAGES without running them."""
    from pivot import api

    for name in api.commit(stages, wait=not no_wait, on_wait=say_waiting):
        click.echo(f"committed '{name}'")


def _register_commands() -> None:
    """Commands that live in their own modules (each a click command)."""
    from pivot.cli import doctor, logs, shell

    cli.add_command(logs.logs)
    cli.add_command(shell.completion)
    cli.add_command(doctor.doctor)


_register_commands()


def main() -> None:
    """Console-script entry point: Ctrl-C anywhere (start-up, option parsing, a command) exits
    130 with a short message, never click's "Aborted!" or a signal exit. At exit, after every
    other exit handler, the garbage collector's last passes over what the command made (the
    user's modules, N stages) are skipped: 0.2 s of a 10,000-stage command, for nothing (what
    must be closed is closed by then; nothing Pivot writes waits for a finalizer)."""
    from pivot import _interrupt

    atexit.register(gc.freeze)  # (registered first: run last)
    _interrupt.restore_default_handler()
    try:
        code = cli.main(prog_name="pivot", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        exit_interrupted("Interrupted.")
    except click.exceptions.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    finally:
        _interrupt.ignore_from_now_on()  # a Ctrl-C while exiting must not turn into a signal exit
    sys.exit(code if isinstance(code, int) else 0)


from pivot.cli import data as _data  # noqa: E402, F401  (registers its commands on `cli`)
from pivot.cli import migrate as _migrate  # noqa: E402, F401  (registers its commands on `cli`)
from pivot.cli import remote as _remote  # noqa: E402, F401  (registers its commands on `cli`)
from pivot.cli import results as _results  # noqa: E402, F401  (registers its commands on `cli`)
