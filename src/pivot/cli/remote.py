"""`pivot remote add/list/remove/default/modify`, `pivot push`, `pivot fetch`, `pivot pull`.

Parse options, call one `pivot.api` function, render the outcome (progress on a TTY, then a
summary line, or one JSON object with --json; exit 1 when an object could not be moved). Imports click only at start-up.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from pivot.cli.common import EXIT_STAGE_FAILED, JSON_HELP, dump_json, handle_errors
from pivot.cli.main import cli

if TYPE_CHECKING:
    from pivot.remote.transfer import Progress as TransferProgress
    from pivot.remote.transfer import ProgressSink
    from pivot.sharing import SyncReport

__all__ = ["human_bytes"]


@cli.group()
def remote() -> None:
    """Configure remotes: where `pivot push` and `pivot pull` keep shared results."""


@remote.command("add")
@click.argument("name")
@click.argument("url")
@click.option("-d", "--default", "default", is_flag=True, help="Make it the default remote.")
@click.option("--local", is_flag=True, help="Write to .pivot/config.local.yaml (git-ignored).")
@handle_errors
def remote_add(name: str, url: str, default: bool, local: bool) -> None:
    """Add remote NAME at URL (a directory, file:///path, or s3://bucket/prefix)."""
    from pivot import api

    api.remote_add(name, url, default=default, local=local)
    click.echo(f"added remote '{name}' -> {url}" + (" (default)" if default else ""))


@remote.command("list")
@handle_errors
def remote_list() -> None:
    """List the remotes (the default one is marked with *)."""
    from pivot import api

    remotes, default = api.remotes()
    if not remotes:
        click.echo("no remotes; add one with `pivot remote add -d NAME URL`")
    for name, settings in sorted(remotes.items()):
        mark = "*" if name == default else " "
        options = ", ".join(
            f"{key}={'***' if 'secret' in key or 'token' in key else value}"
            for key, value in sorted(settings.items())
            if key != "url"
        )
        click.echo(f"{mark} {name}\t{settings.get('url')}" + (f"\t({options})" if options else ""))


@remote.command("remove")
@click.argument("name")
@handle_errors
def remote_remove(name: str) -> None:
    """Forget remote NAME (its data is left where it is)."""
    from pivot import api

    api.remote_remove(name)
    click.echo(f"removed remote '{name}'")


@remote.command("default")
@click.argument("name")
@click.option("--local", is_flag=True, help="Only on this machine (config.local.yaml).")
@handle_errors
def remote_default(name: str, local: bool) -> None:
    """Make NAME the remote used when -r is not given."""
    from pivot import api

    api.remote_default(name, local=local)
    click.echo(f"default remote: '{name}'")


@remote.command("modify")
@click.argument("name")
@click.argument("key")
@click.argument("value", required=False)
@click.option("--unset", is_flag=True, help="Remove the setting KEY.")
@click.option(
    "--local", is_flag=True, help="Write to .pivot/config.local.yaml (git-ignored; for secrets)."
)
@handle_errors
def remote_modify(name: str, key: str, value: str | None, unset: bool, local: bool) -> None:
    """Set KEY to VALUE for remote NAME (url, endpoint, region, access_key_id,
    secret_access_key, session_token, profile, allow_http, jobs)."""
    from pivot import api

    if (value is None) != unset:
        raise click.UsageError("give either VALUE or --unset")
    api.remote_modify(name, key, None if unset else value, local=local)
    where = "config.local.yaml" if local else "config.yaml"
    click.echo(f"remote '{name}': {key} {'unset' if unset else 'set'} in .pivot/{where}")


def _transfer_options(func: Any) -> Any:
    for option in reversed(
        [
            click.argument("targets", nargs=-1),
            click.option("-r", "--remote", "remote_name", help="Remote name (default: default)."),
            click.option("-j", "--jobs", type=click.IntRange(min=1), help="Transfers at once."),
            click.option(
                "--with-deps", is_flag=True, help="Also every stage the targets depend on."
            ),
            click.option("--json", "as_json", is_flag=True, help=JSON_HELP),
        ]
    ):
        func = option(func)
    return func


def human_bytes(count: int) -> str:
    """1234567 -> '1.2 MB'."""
    size = float(count)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{int(size)} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _progress(verb: str) -> Iterator[ProgressSink | None]:
    """A progress bar on stderr when it is a terminal (counts and bytes), else nothing."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(
        TextColumn(f"{verb}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[moved]}"),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task(verb, total=None, moved="")

    def update(state: TransferProgress) -> None:
        bar.update(task, completed=state.done, total=state.total, moved=human_bytes(state.bytes))

    with bar:
        yield update


def sync_json(report: SyncReport) -> dict[str, Any]:
    """A push or fetch for `--json`: counts, and each problem named by path and stage."""
    result = report.result
    return {
        "remote": report.remote,
        "moved": len(result.moved),
        "bytes": result.bytes,
        "present": len(result.present),
        "missing": len(result.missing),
        "corrupt": len(result.corrupt),
        "run_entries": report.run_entries,
        "problems": list(report.problems),
        "failed_stages": sorted(report.failed_stages),
        "failed_tracked": sorted(report.failed_tracked),
        "ok": report.ok,
    }


def _summary(verb: str, report: SyncReport) -> None:
    result = report.result
    entries = f"; {report.run_entries:,} run-cache entr{'y' if report.run_entries == 1 else 'ies'}"
    click.echo(
        f"{verb} {len(result.moved):,} file(s) ({human_bytes(result.bytes)}), "
        f"{len(result.present):,} already there ({report.remote})"
        + (entries if report.run_entries else "")
    )
    for problem in report.problems:
        click.secho(f"error: {problem}", fg="red", err=True)


@cli.command()
@_transfer_options
@handle_errors
def push(
    targets: tuple[str, ...],
    remote_name: str | None,
    jobs: int | None,
    with_deps: bool,
    as_json: bool,
) -> None:
    """Upload cached outputs of TARGETS (stages or paths; default: all) to a remote."""
    from pivot import api

    with _progress("pushing") as progress:
        report = api.push(
            targets, remote=remote_name, jobs=jobs, with_deps=with_deps, progress=progress
        )
    if as_json:
        dump_json(sync_json(report))
    else:
        _summary("pushed", report)
        if not report.ok:
            click.secho("some objects were not pushed (listed above)", fg="red", err=True)
    if not report.ok:
        sys.exit(EXIT_STAGE_FAILED)


@cli.command()
@_transfer_options
@handle_errors
def fetch(
    targets: tuple[str, ...],
    remote_name: str | None,
    jobs: int | None,
    with_deps: bool,
    as_json: bool,
) -> None:
    """Download outputs of TARGETS from a remote into the cache (the workspace is untouched)."""
    from pivot import api

    with _progress("fetching") as progress:
        report = api.fetch(
            targets, remote=remote_name, jobs=jobs, with_deps=with_deps, progress=progress
        )
    if as_json:
        dump_json(sync_json(report))
    else:
        _summary("fetched", report)
    if not report.ok:
        sys.exit(EXIT_STAGE_FAILED)


@cli.command()
@_transfer_options
@handle_errors
def pull(
    targets: tuple[str, ...],
    remote_name: str | None,
    jobs: int | None,
    with_deps: bool,
    as_json: bool,
) -> None:
    """Fetch outputs of TARGETS from a remote, then put them in the workspace."""
    from pivot import api

    with _progress("pulling") as progress:
        report = api.pull(
            targets, remote=remote_name, jobs=jobs, with_deps=with_deps, progress=progress
        )
    placed = report.checkout
    if as_json:
        dump_json(
            {
                "fetched": sync_json(report.fetched),
                "placed": sorted(placed.restored),
                "already_in_place": sorted(placed.unchanged),
                "not_placed": sorted(report.fetched.failed_stages),
                "ok": report.fetched.ok,
            }
        )
        if not report.fetched.ok:
            sys.exit(EXIT_STAGE_FAILED)
        return
    _summary("fetched", report.fetched)
    click.echo(
        f"{len(placed.restored)} stage(s) placed in the workspace, {len(placed.unchanged)} "
        "already in place."
    )
    if report.fetched.failed_stages:
        names = ", ".join(sorted(report.fetched.failed_stages))
        click.secho(f"not placed (objects missing): {names}", fg="red", err=True)
    if not report.fetched.ok:
        sys.exit(EXIT_STAGE_FAILED)
