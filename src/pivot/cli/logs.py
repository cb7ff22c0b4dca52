"""`pivot logs STAGE [--run ID]`: what a stage printed in its last run (or in a given run)."""

from __future__ import annotations

import click

from pivot.cli.common import complete_stages, handle_errors

__all__ = ["logs"]


@click.command()
@click.argument("stage", required=False, shell_complete=complete_stages)
@click.option(
    "--run", "run_id", metavar="ID", help="A run id (`run_id` in --json output; see --list)."
)
@click.option("--list", "list_runs", is_flag=True, help="List the run ids whose logs are kept.")
@handle_errors
def logs(stage: str | None, run_id: str | None, list_runs: bool) -> None:
    """Print what STAGE wrote to stdout and stderr in its last run (or in run ID).

    Without STAGE (or with --list), list the runs whose logs are kept, oldest first.
    """
    from pivot import api

    if list_runs or stage is None:
        for found, stages in api.log_runs():
            click.echo(f"{found}  {' '.join(stages)}")
        return
    click.echo(api.read_log(stage, run_id), nl=False)
