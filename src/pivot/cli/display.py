"""What a person sees while Pivot runs: plain lines, or a live rich display on a terminal.

Both are event subscribers. They write to a stream opened on the terminal's own descriptor, so
a stage running in this process (whose output is being captured) cannot swallow them. rich is
imported only when the live display is used. Never runs anything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
from collections.abc import Iterator
from typing import IO, Any

import click

from pivot.cli import render
from pivot.execute.events import (
    Event,
    FilesChanged,
    PipelineError,
    RunFinished,
    RunStarted,
    RunStatus,
    StageFinished,
    StageOutput,
    StageProgress,
    StageStarted,
    WatchReady,
)
from pivot.plan import Action

__all__ = ["DisplayOptions", "PlainLines", "make_display", "terminal_streams"]


@dataclasses.dataclass(frozen=True)
class DisplayOptions:
    quiet: bool = False  # plain lines, only for stages that did something, and the summary
    verbose: bool = False  # each stage's reasons
    explain: bool = False  # the plan in detail before the run
    show_output: bool = False  # stream what stages print, prefixed by the stage name


@contextlib.contextmanager
def terminal_streams() -> Iterator[tuple[IO[str], IO[str]]]:
    """stdout and stderr on duplicates of descriptors 1 and 2 (immune to stage capture)."""
    opened: list[IO[str]] = []
    for stream in (sys.stdout, sys.stderr):
        try:
            descriptor = os.dup(stream.fileno())
        except (OSError, ValueError, AttributeError):  # not a real file (e.g. an in-memory test)
            opened.append(stream)
            continue
        stream.flush()
        opened.append(open(descriptor, "w", encoding="utf-8", errors="replace", buffering=1))  # noqa: SIM115
    try:
        yield opened[0], opened[1]
    finally:
        for stream, original in zip(opened, (sys.stdout, sys.stderr)):
            if stream is not original:
                stream.close()


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _watch_line(event: Event) -> tuple[str, str | None] | None:
    """The line (and colour) for a watch-mode event."""
    if isinstance(event, WatchReady):
        return "Watching for changes (Ctrl-C to stop) ...", "cyan"
    if isinstance(event, FilesChanged):
        shown = ", ".join(event.paths[:5]) + (" ..." if len(event.paths) > 5 else "")
        return f"\nChanged: {shown}", "cyan"
    if isinstance(event, PipelineError):
        return f"error: {event.message}\nKeeping the last good pipeline; fix it and save.", "red"
    return None


HOLD_LINES = 256
HOLD_SECONDS = 0.1
"""A stage's start and finish lines are held back (then written many at once) until the runner
is about to wait (`flush`), another event comes, or this many of them, or this old, are held."""


class PlainLines:
    """One line as each stage starts and finishes; the summary at the end (no terminal tricks)."""

    def __init__(self, out: IO[str], err: IO[str], options: DisplayOptions) -> None:
        self.out, self.err, self.options = out, err, options
        # decided once, as click.echo would decide for every line (a line per stage adds up)
        self._colors = {out: _shows_color(out), err: _shows_color(err)}
        self._held: list[str] = []  # stage lines not written yet (see HOLD_LINES)
        self._held_since = 0.0

    def close(self) -> None:
        self.flush()

    def flush(self) -> None:
        """Write the stage lines held back, in one write."""
        if self._held:
            self._held.append("")
            self.out.write("\n".join(self._held))
            self._held.clear()
            self.out.flush()

    def _hold(self, text: str) -> None:
        """Hold back a line for `out` (as `_echo` would write it)."""
        if "\x1b" in text and not self._colors[self.out]:
            text = click.unstyle(text)
        held = self._held
        if not held:
            self._held_since = time.monotonic()
        held.append(text)
        if len(held) >= HOLD_LINES or time.monotonic() - self._held_since >= HOLD_SECONDS:
            self.flush()

    def _echo(self, text: str, *, err: bool = False, color: str | None = None) -> None:
        self.flush()  # what was held back comes first
        stream = self.err if err else self.out
        if not self._colors[stream]:
            text = click.unstyle(text) if "\x1b" in text else text  # a stage's colored output
        elif color is not None:
            text = click.style(text, fg=color)
        stream.write(text + "\n")
        stream.flush()

    def __call__(self, event: Event) -> None:
        options = self.options
        if isinstance(event, StageStarted):
            if not options.quiet:
                self._hold(f"[{event.index}/{event.total}] {event.stage} ...")
            return
        if isinstance(event, StageFinished):
            self._finished(event)
            return
        self.flush()
        watch = _watch_line(event)
        if watch is not None:
            self._echo(watch[0], err=isinstance(event, PipelineError), color=watch[1])
        elif isinstance(event, RunStarted):
            if options.explain:
                with render.echo_to(self.out, self.err):
                    render.print_plan(event.plan, explain=True, verb="will")
        elif isinstance(event, StageOutput) and options.show_output:
            for line in event.lines:
                self._echo(f"{event.stage} | {line}")
        elif isinstance(event, RunFinished):
            with render.echo_to(self.out, self.err):
                render.print_report(event.report, duration=event.duration)

    def _finished(self, event: StageFinished) -> None:
        if self.options.quiet and event.status is RunStatus.SKIPPED:
            return
        word, color = render.MARK[event.status]
        timing = f" ({event.duration:.2f}s)" if event.status is RunStatus.RAN else ""
        counter = f"[{event.index}/{event.total}] " if event.index else ""
        mark = click.style(word, fg=color) if self._colors[self.out] else word
        self._hold(f"{counter}{event.stage} {mark}{timing}")
        if self.options.verbose:
            for reason in event.reasons:
                self._hold(f"    {reason}")


def _shows_color(stream: IO[str]) -> bool:
    """Whether click would keep colors on `stream`: as `--color` said, else when it is a TTY."""
    chosen = click.globals.resolve_color_default()
    if chosen is not None:
        return chosen
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


# --- the live display ---------------------------------------------------------------------

_SYMBOL = {
    RunStatus.RAN: "✓",
    RunStatus.RESTORED: "↺",
    RunStatus.SKIPPED: "·",
    RunStatus.FAILED: "✗",
    RunStatus.BLOCKED: "-",
}


@dataclasses.dataclass
class _Row:
    """One stage on screen (mutable: the display updates it as events arrive)."""

    stage: str
    reasons: tuple[str, ...]
    status: RunStatus | None = None  # None: waiting or running
    started: float | None = None
    duration: float = 0.0
    progress: StageProgress | None = None


class LiveDisplay:
    """A rich Live view: a row per stage to run (state, elapsed or duration, own progress), and
    an overall bar with counts and elapsed time; then the final summary."""

    def __init__(self, out: IO[str], err: IO[str], options: DisplayOptions) -> None:
        from rich.console import Console

        self.out, self.err, self.options = out, err, options
        self.console = Console(file=out, force_terminal=True)
        self.rows: dict[str, _Row] = {}
        self.skipped = 0
        self.started = time.monotonic()
        self.live: Any = None

    def __call__(self, event: Event) -> None:
        watch = _watch_line(event)
        if watch is not None:
            self.console.print(watch[0], style=watch[1], markup=False, highlight=False)
        elif isinstance(event, RunStarted):
            self._start(event)
        elif self.live is None:
            return
        elif isinstance(event, StageStarted) and event.stage in self.rows:
            self.rows[event.stage].started = time.monotonic()
        elif isinstance(event, StageOutput) and self.options.show_output:
            for line in event.lines:
                self.live.console.print(f"{event.stage} | {line}", markup=False, highlight=False)
        elif isinstance(event, StageProgress) and event.stage in self.rows:
            self.rows[event.stage].progress = event
        elif isinstance(event, StageFinished) and event.stage in self.rows:
            row = self.rows[event.stage]
            row.status, row.duration = event.status, event.duration
        elif isinstance(event, RunFinished):
            self._stop(event)

    def _start(self, event: RunStarted) -> None:
        from rich.live import Live

        if self.options.explain:
            with render.echo_to(self.out, self.err):
                render.print_plan(event.plan, explain=True, verb="will")
        steps = event.plan.steps
        self.rows = {
            step.stage: _Row(step.stage, tuple(r.summary for r in step.reasons))
            for step in steps
            if step.action is not Action.SKIP
        }
        self.skipped = len(steps) - len(self.rows)
        self.started = time.monotonic()
        if not self.rows:
            return
        self.live = Live(
            self,
            console=self.console,
            refresh_per_second=8,
            transient=False,
            redirect_stdout=False,  # stages' output is captured; the display owns the terminal
            redirect_stderr=False,
        )
        self.live.start()

    def close(self) -> None:
        """Stop the live view (also on Ctrl-C: the terminal gets its cursor back)."""
        if self.live is not None:
            self.live.stop()
            self.live = None

    def _stop(self, event: RunFinished) -> None:
        self.close()
        with render.echo_to(self.out, self.err):
            render.print_report(event.report, duration=event.duration)

    # rich calls this on each refresh (from its own thread)
    def __rich__(self) -> Any:
        from rich.table import Table

        table = Table.grid(padding=(0, 1))
        now = time.monotonic()
        for row in self._visible_rows():
            table.add_row(*self._cells(row, now))
            if self.options.verbose:
                for reason in row.reasons:
                    table.add_row("", f"[dim]  {reason}[/dim]", "", "")
        return _Overall(table, self, now)

    def _visible_rows(self) -> list[_Row]:
        """Every row if they fit the terminal; else the running, failed and latest ones."""
        rows = list(self.rows.values())
        room = max(5, self.console.size.height - 4)
        if len(rows) <= room:
            return rows
        active = [r for r in rows if r.started is not None and r.status is None]
        failed = [r for r in rows if r.status is RunStatus.FAILED]
        done = [r for r in rows if r.status is not None and r.status is not RunStatus.FAILED]
        keep = {id(r) for r in (active + failed)[:room]}
        keep |= {id(r) for r in done[-max(0, room - len(keep)) :]} if len(keep) < room else set()
        return [r for r in rows if id(r) in keep]

    def _cells(self, row: _Row, now: float) -> tuple[str, str, str, str]:
        from rich.markup import escape

        name = escape(row.stage)
        if row.status is not None:
            mark = _SYMBOL[row.status]
            word, style = render.MARK[row.status]
            timing = f"{row.duration:.1f}s" if row.status is RunStatus.RAN else ""
            return f"[{style}]{mark}[/]", f"[{style}]{name}[/]", f"{word} {timing}".strip(), ""
        if row.started is None:
            return "[dim]○[/]", f"[dim]{name}[/]", "[dim]waiting[/]", ""
        own = ""
        if row.progress is not None:
            done, total = row.progress.done, row.progress.total
            own = f"{done}/{total}" if total else str(done)
            own = escape(f"{row.progress.description} {own}".strip())
        return "[yellow]▶[/]", f"[bold]{name}[/]", f"running {now - row.started:.1f}s", own


class _Overall:
    """The stage table, then an overall bar with counts and elapsed time."""

    def __init__(self, table: Any, display: LiveDisplay, now: float) -> None:
        self.table, self.display, self.now = table, display, now

    def __rich_console__(self, console: Any, options: Any) -> Iterator[Any]:
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        rows = self.display.rows.values()
        finished = sum(1 for r in rows if r.status is not None)
        running = sum(1 for r in rows if r.status is None and r.started is not None)
        failed = sum(1 for r in rows if r.status is RunStatus.FAILED)
        total = len(self.display.rows)
        yield self.table
        line = Table.grid(padding=(0, 1))
        counts = f"{finished}/{total} done, {running} running"
        counts += f", [red]{failed} failed[/]" if failed else ""
        counts += f", {self.display.skipped} up to date" if self.display.skipped else ""
        line.add_row(
            ProgressBar(total=total, completed=finished, width=30),
            counts,
            f"{self.now - self.display.started:.1f}s",
        )
        yield line


def make_display(out: IO[str], err: IO[str], options: DisplayOptions) -> PlainLines | LiveDisplay:
    """The live display on a terminal (unless quiet or TERM=dumb), plain lines otherwise."""
    interactive = out.isatty() and os.environ.get("TERM") != "dumb"
    if interactive and not options.quiet:
        return LiveDisplay(out, err, options)
    return PlainLines(out, err, options)
