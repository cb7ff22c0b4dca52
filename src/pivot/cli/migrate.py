"""`pivot import-dvc`, `pivot export` and `pivot schema`: moving between DVC and Pivot, and the
JSON schema of pivot.yaml. Thin: parse, call one function, print."""

from __future__ import annotations

import json

import click

from pivot.cli.common import handle_errors
from pivot.cli.main import cli

__all__ = ["export", "import_dvc", "schema"]


@cli.command("import-dvc")
@click.option(
    "--dvc-yaml",
    "dvc_yaml",
    default="dvc.yaml",
    show_default=True,
    help="The dvc.yaml to convert.",
)
@click.option(
    "-o", "--output", default="pivot.yaml", show_default=True, help="Where to write the stages."
)
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
@handle_errors
def import_dvc(dvc_yaml: str, output: str, force: bool) -> None:
    """Convert dvc.yaml (and params.yaml, vars, foreach/matrix, wdir) into pivot.yaml command
    stages; stages dvc.lock shows up to date are recorded so they do not re-run."""
    from pivot import migrate

    report = migrate.import_dvc(".", dvc_yaml=dvc_yaml, output=output, force=force)
    click.echo(report.text())


@cli.command()
@click.option(
    "-o", "--output", default="dvc.yaml", show_default=True, help="Where to write the dvc.yaml."
)
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
@handle_errors
def export(output: str, force: bool) -> None:
    """Write a dvc.yaml whose stages run `python -m pivot run STAGE`, for DVC tooling."""
    from pivot import migrate

    path, stages = migrate.export_dvc(output=output, force=force)
    click.echo(f"Wrote {path} with {len(stages)} stage(s); run them with `dvc repro`.")


@cli.command()
def schema() -> None:
    """Print the JSON schema of pivot.yaml (for editors and CI checks)."""
    from pivot.pipeline_yaml.schema import pivot_yaml_schema

    click.echo(json.dumps(pivot_yaml_schema(), indent=2))
