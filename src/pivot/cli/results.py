"""Commands that read results: metrics, params, plots, dag, list, history, show, report.

Each parses options, asks `pivot.results` for a value, and renders it as text or `--json`.
Imports only click at start-up; the engine is imported when a command runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

from pivot.cli.common import dump_json, handle_errors
from pivot.cli.main import cli

if TYPE_CHECKING:
    from pivot.project import Project
    from pivot.workspace import Context

__all__: list[str] = []

F = TypeVar("F", bound=Callable[..., Any])

_JSON_HELP = "Print the result as JSON (shape: docs/results.md)."


def _project() -> Project:
    from pivot import project

    return project.load_project()


@contextmanager
def _context() -> Iterator[Context]:
    from pivot import api

    with api.open_context() as ctx:
        yield ctx


@cli.command()
@click.option(
    "-n",
    "--number",
    "limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="How many runs to show, newest first.",
)
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@handle_errors
def history(limit: int, as_json: bool) -> None:
    """List recorded `repro`/`run` runs: when, commit, result, what ran."""
    from pivot.results import history as runs

    records = runs.newest(_project(), limit)
    if as_json:
        return dump_json({"runs": [runs.record_json(r, stages=False) for r in records]})
    click.echo(runs.history_text(records))


@cli.command()
@click.argument("run_id", required=False)
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@handle_errors
def show(run_id: str | None, as_json: bool) -> None:
    """Show one recorded run in detail (RUN_ID or a prefix of it; default: the newest)."""
    from pivot.results import history as runs

    record = runs.find(_project(), run_id)
    if as_json:
        return dump_json(runs.record_json(record))
    click.echo(runs.show_text(record))


def _revisions(revs: tuple[str, ...]) -> tuple[str, str]:
    from pivot.results.revisions import WORKSPACE

    if len(revs) > 2:
        raise click.UsageError(
            "give at most two revisions: OLD (default HEAD) and NEW (default: the workspace)"
        )
    return (revs[0] if revs else "HEAD", revs[1] if len(revs) > 1 else WORKSPACE)


_md_option = click.option("--md", "markdown", is_flag=True, help="Print a Markdown table.")


def _table_output(func: F) -> F:
    """`--json` and `--md`, for the commands that print a table."""
    return click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)(_md_option(func))


_precision_option = click.option(
    "--precision",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Decimal places for numbers.",
)


@cli.group()
def metrics() -> None:
    """Show and compare the values of `Metric` outputs."""


@metrics.command("show")
@click.argument("targets", nargs=-1)
@_table_output
@_precision_option
@handle_errors
def metrics_show(targets: tuple[str, ...], as_json: bool, markdown: bool, precision: int) -> None:
    """Show metrics in the workspace (TARGETS: stages or metric files; default: all)."""
    from pivot.results import metrics as found

    with _context() as ctx:
        files = found.show(ctx, targets)
    if as_json:
        return dump_json(found.show_json(files))
    click.echo(found.show_text(files, precision=precision, markdown=markdown))


@metrics.command("diff")
@click.argument("revs", nargs=-1, metavar="[OLD_REV [NEW_REV]]")
@_table_output
@_precision_option
@click.option("-a", "--all", "include_unchanged", is_flag=True, help="Include unchanged values.")
@handle_errors
def metrics_diff(
    revs: tuple[str, ...], as_json: bool, markdown: bool, precision: int, include_unchanged: bool
) -> None:
    """Compare metrics between two git revisions (default: HEAD and the workspace)."""
    from pivot.results import metrics as found

    old, new = _revisions(revs)
    with _context() as ctx:
        result = found.diff(ctx, old, new, include_unchanged=include_unchanged)
    if as_json:
        return dump_json(found.diff_json(result))
    click.echo(found.diff_text(result, precision=precision, markdown=markdown))


@cli.group()
def params() -> None:
    """Show and compare the params each stage's lock file records."""


@params.command("show")
@click.argument("stages", nargs=-1)
@_table_output
@handle_errors
def params_show(stages: tuple[str, ...], as_json: bool, markdown: bool) -> None:
    """Show the params STAGES (default: all) last ran with."""
    from pivot.results import params as found

    with _context() as ctx:
        result = found.show(ctx, stages)
    if as_json:
        return dump_json(found.show_json(result))
    click.echo(found.show_text(result, markdown=markdown))


@params.command("diff")
@click.argument("revs", nargs=-1, metavar="[OLD_REV [NEW_REV]]")
@_table_output
@click.option("-a", "--all", "include_unchanged", is_flag=True, help="Include unchanged params.")
@handle_errors
def params_diff(
    revs: tuple[str, ...], as_json: bool, markdown: bool, include_unchanged: bool
) -> None:
    """Compare recorded params between two git revisions (default: HEAD and the workspace)."""
    from pivot.results import params as found

    old, new = _revisions(revs)
    with _context() as ctx:
        result = found.diff(ctx, old, new, include_unchanged=include_unchanged)
    if as_json:
        return dump_json(found.diff_json(result))
    click.echo(found.diff_text(result, markdown=markdown))


@cli.command()
@click.argument("targets", nargs=-1)
@click.option("--outs", is_flag=True, help="Show the artifact graph (files) instead of stages.")
@click.option("--mermaid", "fmt", flag_value="mermaid", help="Print a Mermaid flowchart.")
@click.option("--dot", "fmt", flag_value="dot", help="Print Graphviz dot.")
@click.option("--json", "fmt", flag_value="json", help=_JSON_HELP)
@handle_errors
def dag(targets: tuple[str, ...], outs: bool, fmt: str | None) -> None:
    """Show the pipeline graph of TARGETS and their upstream (default: all); * marks stale."""
    from pivot.results import dag as graph

    with _context() as ctx:
        view = graph.build(ctx, targets, outs=outs)
    if fmt == "json":
        return dump_json(graph.to_json(view))
    render = {"mermaid": graph.to_mermaid, "dot": graph.to_dot}.get(fmt or "", graph.to_text)
    click.echo(render(view))


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@handle_errors
def list_stages(as_json: bool) -> None:
    """List the stages: dependencies, outputs, params and where each is defined."""
    from pivot.results import stages

    with _context() as ctx:
        found = stages.describe(ctx)
    if as_json:
        return dump_json(stages.list_json(found))
    click.echo(stages.list_text(found))


def _finish_page(path: Any, open_it: bool) -> None:
    click.echo(f"Wrote {path}")
    if open_it:
        import webbrowser

        webbrowser.open(path.as_uri())


@cli.group()
def plots() -> None:
    """Draw `Plot` outputs into one self-contained HTML page."""


def _plots_page(
    targets: tuple[str, ...], revs: list[str], output: str | None, open_it: bool, as_json: bool
) -> None:
    from pathlib import Path

    from pivot.results import plots as found
    from pivot.results.revisions import Reader

    chosen = Path(output).resolve() if output else None  # relative to where the user is
    with _context() as ctx:
        reader = Reader(ctx)
        revisions = found.revisions_of(reader, revs)
        views = found.collect(reader, revisions, found.plot_outputs(ctx.graph, targets))
        target = chosen or ctx.project.pivot_dir / "report" / "plots.html"
        page = found.write_page(target, found.render_page(ctx, views, revisions))
    if as_json:
        return dump_json(found.plots_json(views, page))
    _finish_page(page, open_it)


_output_option = click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Write the page here (default: .pivot/report/<name>.html).",
)
_open_option = click.option("--open", "open_it", is_flag=True, help="Open the page in a browser.")


@plots.command("show")
@click.argument("targets", nargs=-1)
@_output_option
@_open_option
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@handle_errors
def plots_show(targets: tuple[str, ...], output: str | None, open_it: bool, as_json: bool) -> None:
    """Draw the plots in the workspace (TARGETS: stages or plot files; default: all)."""
    from pivot.results.revisions import WORKSPACE

    _plots_page(targets, [WORKSPACE], output, open_it, as_json)


@plots.command("diff")
@click.argument("revs", nargs=-1, metavar="[REVS...]")
@click.option("-t", "--target", "targets", multiple=True, help="Only this stage or plot file.")
@_output_option
@_open_option
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@handle_errors
def plots_diff(
    revs: tuple[str, ...],
    targets: tuple[str, ...],
    output: str | None,
    open_it: bool,
    as_json: bool,
) -> None:
    """Draw plots at several revisions side by side (default: HEAD and the workspace; one REV:
    it and the workspace)."""
    from pivot.results.revisions import WORKSPACE

    chosen = list(revs) if len(revs) > 1 else [revs[0] if revs else "HEAD", WORKSPACE]
    _plots_page(targets, chosen, output, open_it, as_json)


@cli.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Write the page here (default: .pivot/report/report.html).",
)
@click.option(
    "--rev",
    "revs",
    multiple=True,
    help="A baseline revision to compare with (repeatable; default: HEAD).",
)
@_open_option
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@handle_errors
def report(output: str | None, revs: tuple[str, ...], open_it: bool, as_json: bool) -> None:
    """Write one self-contained HTML page: DAG, stages and why they ran, params, metrics,
    plots, outputs and failures. It works offline, from a file:// URL."""
    from pathlib import Path

    from pivot.results import plots as pages
    from pivot.results import report as pivot_report
    from pivot.results import report_page

    chosen = Path(output).resolve() if output else None  # relative to where the user is
    with _context() as ctx:
        found = pivot_report.gather(ctx, revs)
        target = chosen or ctx.project.pivot_dir / "report" / "report.html"
        page = pages.write_page(target, report_page.render(found))
    if as_json:
        return dump_json(pivot_report.report_json(found, page))
    _finish_page(page, open_it)
