"""`pivot track`, `pivot get`, `pivot gc`, `pivot verify`: raw data and the cache's health.

Parse options, call one `pivot.api` function, render the outcome. Imports click only at start-up.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import TYPE_CHECKING

import click

from pivot.cli.common import EXIT_STAGE_FAILED, JSON_HELP, dump_json, handle_errors
from pivot.cli.main import cli

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pivot.maintenance import Garbage, Problem

__all__: list[str] = []


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@handle_errors
def track(paths: tuple[str, ...]) -> None:
    """Cache raw data no stage produces and record it in PATH.pvt (commit that file; the data
    is git-ignored and shared with `pivot push`/`pull`)."""
    from pivot import api
    from pivot.cli.remote import human_bytes

    for entry in api.track(paths):
        what = f"{entry.files:,} files, " if entry.is_directory else ""
        click.echo(
            f"tracked '{entry.path}' ({what}{human_bytes(entry.size)}) in {entry.path.rstrip('/')}.pvt"
        )
    click.echo("Commit the .pvt file(s) and .gitignore; share the data with `pivot push`.")


@cli.command()
@click.option("--all-commits", is_flag=True, help="Keep what any git commit's records need.")
@click.option("-r", "--remote", "remote_name", help="Collect on this remote instead of locally.")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.option("-n", "--dry-run", is_flag=True, help="Only print what would be removed.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP + " Needs -f or -n.")
@handle_errors
def gc(
    all_commits: bool, remote_name: str | None, force: bool, dry_run: bool, as_json: bool
) -> None:
    """Remove cached objects that no lock or .pvt file keeps (default: the workspace's)."""
    from pivot import api
    from pivot.cli.remote import human_bytes

    if as_json and not (force or dry_run):
        raise click.UsageError("--json cannot ask before removing: add -f (remove) or -n (dry run)")

    def describe(garbage: Garbage) -> str:
        entries = garbage.run_entries
        runs = f" ({entries:,} of them run-cache entries)" if entries else ""
        return (
            f"{len(garbage.keys):,} object(s){runs}, {human_bytes(garbage.bytes)}, from "
            f"{garbage.where}; {garbage.kept:,} kept"
        )

    def confirm(garbage: Garbage) -> bool:
        if not as_json:
            click.echo(f"would remove {describe(garbage)}")
        if dry_run:
            return False
        return force or click.confirm("Remove them?", default=False)

    garbage, removed = api.gc(all_commits=all_commits, remote=remote_name, confirm=confirm)
    if as_json:
        return dump_json(
            {
                "where": garbage.where,
                "objects": len(garbage.keys),
                "run_entries": garbage.run_entries,
                "bytes": garbage.bytes,
                "kept": garbage.kept,
                "removed": removed,
            }
        )
    if not garbage.keys:
        click.echo(f"nothing to remove from {garbage.where} ({garbage.kept:,} kept)")
    elif removed:
        click.echo(f"removed {describe(garbage)}")
    elif not dry_run:
        click.echo("nothing removed")


@cli.command()
@click.argument("targets", nargs=-1)
@click.option("-r", "--remote", "remote_name", help="Check this remote instead of the cache.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Downloads at once (--remote).")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@handle_errors
def verify(
    targets: tuple[str, ...], remote_name: str | None, jobs: int | None, as_json: bool
) -> None:
    """Check that every recorded output and tracked file of TARGETS (default: all) is present
    and intact in the cache (or on a remote); exit 1 listing what is missing or corrupt."""
    from pivot import api

    checked, problems = api.verify(targets, remote=remote_name, jobs=jobs)
    where = f"remote '{remote_name}'" if remote_name else "the local cache"
    if as_json:
        found = [dataclasses.asdict(problem) for problem in problems]
        dump_json({"where": where, "checked": checked, "problems": found, "ok": not problems})
        if problems:
            sys.exit(EXIT_STAGE_FAILED)
        return
    for problem in problems:
        click.secho(problem.describe(), fg="red", err=True)
    if problems:
        click.secho(f"{len(problems)} problem(s) in {where}", fg="red", err=True)
        click.echo(_verify_fix(problems, remote_name), err=True)
        sys.exit(EXIT_STAGE_FAILED)
    click.echo(f"all {checked:,} object(s) present and intact in {where}")


def _verify_fix(problems: Sequence[Problem], remote_name: str | None) -> str:
    """What to do about the problems `pivot verify` found."""
    from pivot.maintenance import RUN_CACHE_OWNER

    if remote_name:
        return (
            f"Fix: `pivot push -r {remote_name}` uploads the objects this cache has again "
            "(a corrupt object on the remote is replaced only once deleted there)"
        )
    if all(problem.owner == RUN_CACHE_OWNER for problem in problems):
        return (
            "Damaged run-cache records were moved aside to .pivot/cache/quarantine/ (kept for "
            "inspection). Nothing else is needed: a stage whose earlier run they recorded "
            "simply runs again (or `pivot pull` fetches the entries from a remote that has them)"
        )
    text = "Fix: `pivot pull` fetches them again from a remote that has them"
    if any(problem.kind == "corrupt" for problem in problems):
        text = (
            "Corrupt objects were moved aside to .pivot/cache/quarantine/ (kept for inspection). "
            + text
        )
    return (
        text + "; or `pivot repro --force STAGE` makes a stage's outputs again (`pivot track "
        "PATH` records tracked data again)"
    )


@cli.command()
@click.argument("path")
@click.option("--rev", required=True, help="Git revision (commit, branch, tag).")
@click.option("-o", "--out", "out", type=click.Path(), help="Where to write it.")
@click.option("-f", "--force", is_flag=True, help="Overwrite OUT if it exists.")
@click.option("-r", "--remote", "remote_name", help="Remote to fetch from if not cached.")
@handle_errors
def get(path: str, rev: str, out: str | None, force: bool, remote_name: str | None) -> None:
    """Write the version of output or tracked PATH as of git revision REV (from the cache, else
    the remote) to OUT (default: its name here)."""
    from pivot import api

    dest, entry = api.get(path, rev=rev, out=out, force=force, remote=remote_name)
    click.echo(f"wrote '{path}' as of {rev} (hash {entry.hash[:12]}) to {dest}")
