"""Rendering plans and run reports for the terminal and as JSON. Never runs anything."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import IO, Any

import click

from pivot.execute.events import RunReport, RunStatus
from pivot.plan import Action, Plan

__all__ = ["MARK", "echo_to", "plan_json", "print_plan", "print_report", "report_json"]

MARK = {
    RunStatus.RAN: ("done", "green"),
    RunStatus.RESTORED: ("restored", "cyan"),
    RunStatus.FAILED: ("FAILED", "red"),
    RunStatus.BLOCKED: ("not run", "yellow"),
    RunStatus.SKIPPED: ("up to date", "white"),
}


def _warn(warnings: tuple[str, ...]) -> None:
    for warning in warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)


def print_plan(decided: Plan, *, explain: bool, verb: str = "would") -> None:
    """One line per stage that would run or restore; --explain adds every reason's details."""
    _warn(decided.warnings)
    active = [step for step in decided.steps if step.action is not Action.SKIP]
    for step in active:
        label = "run" if step.action is Action.RUN else "restore"
        click.echo(f"{click.style(step.stage, bold=True)}: {verb} {label}")
        for reason in step.reasons:
            click.echo(f"    {reason.summary}")
            if explain:
                for detail in reason.details:
                    click.echo(f"        {detail}")
        if explain and step.packages:
            packages = ", ".join(
                f"{name}=={version}" for name, version in sorted(step.packages.items())
            )
            click.echo(f"    third-party packages reached: {packages}")
    if explain:
        for step in decided.steps:
            if step.action is Action.SKIP:
                click.echo(f"{step.stage}: up to date")
    skipped = len(decided.steps) - len(active)
    if not active:
        click.echo(f"Everything is up to date ({skipped} stage{'s' if skipped != 1 else ''}).")
    else:
        click.echo(f"{len(active)} stage(s) {verb} run or restore, {skipped} up to date.")


def plan_json(decided: Plan) -> dict[str, Any]:
    return {
        "stages": {
            step.stage: {
                "action": step.action.value,
                "reasons": [reason.summary for reason in step.reasons],
                "details": [d for reason in step.reasons for d in reason.details],
                "packages": dict(step.packages),
            }
            for step in decided.steps
        },
        "warnings": list(decided.warnings),
    }


def report_json(report: RunReport) -> dict[str, Any]:
    return {
        "stages": {
            result.stage: {
                "status": result.status.value,
                "reasons": list(result.reasons),
                "duration": round(result.duration, 4),
                "error": result.error,
                "output": result.output,
                **({"worker": result.worker} if result.worker else {}),
            }
            for result in report.results
        },
        "warnings": list(report.warnings),
        "ok": report.ok,
    }


@contextlib.contextmanager
def echo_to(out: IO[str], err: IO[str]) -> Iterator[None]:
    """Send this module's printing to `out` and `err` (the display's terminal streams)."""
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        yield


def print_report(report: RunReport, *, duration: float | None = None) -> None:
    """The summary after a run: counts, then each failure with its captured output."""
    _warn(report.warnings)
    counts: dict[RunStatus, int] = {}
    for result in report.results:
        counts[result.status] = counts.get(result.status, 0) + 1
    ran, restored = counts.get(RunStatus.RAN, 0), counts.get(RunStatus.RESTORED, 0)
    skipped, failed = counts.get(RunStatus.SKIPPED, 0), counts.get(RunStatus.FAILED, 0)
    blocked = counts.get(RunStatus.BLOCKED, 0)
    if ran == restored == failed == blocked == 0:
        click.echo(
            f"Everything is up to date ({skipped} stage{'s' if skipped != 1 else ''}); nothing ran."
        )
        return
    click.echo(
        f"Ran {ran}, restored {restored}, up to date {skipped}"
        + (f", failed {failed}" if failed else "")
        + (f", not run {blocked}" if blocked else "")
        + (f" in {duration:.1f}s" if duration is not None else "")
        + "."
    )
    from_runs = [r.stage for r in report.results if "restored from run cache" in r.reasons]
    if from_runs:
        click.echo(f"restored from run cache (an earlier identical run): {', '.join(from_runs)}")
    for result in report.failed:
        click.secho(f"\n✗ {result.stage}", fg="red", bold=True, err=True)
        if result.output.strip():
            click.echo("--- captured output ---", err=True)
            click.echo(result.output.rstrip(), err=True)
            click.echo("--- end of output ---", err=True)
        click.echo(result.error.rstrip(), err=True)
    if report.failed:
        names = ", ".join(result.stage for result in report.failed)
        click.secho(f"\n{len(report.failed)} stage(s) failed: {names}", fg="red", err=True)
