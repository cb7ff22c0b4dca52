"""`pivot repro` / `pivot run`: pick the subscribers (display or --json), then one run or watch.

Imports of Pivot: api (once the no-op snapshot cannot answer) and the cli's renderers.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from pivot.cli import common, display, json_events, render
from pivot.execute.events import EventSink

__all__ = ["reproduce"]


def reproduce(
    stages: tuple[str, ...],
    *,
    upstream: bool,
    jobs: int | None,
    force: bool,
    keep_going: bool,
    dry_run: bool,
    explain: bool,
    as_json: bool,
    quiet: bool,
    verbose: bool,
    show_output: bool,
    watch: bool,
    debounce: int,
    executor: str | None = None,
    download: bool = True,
    strict: bool = False,
    no_run_cache: bool = False,
    pull: bool = False,
    no_wait: bool = False,
) -> bool:
    """Run (or with `watch`, keep running) and report; False if a stage failed. A plain
    `pivot repro` with nothing to do is first asked of the no-op snapshot (`cli.noop`)."""
    if dry_run:
        from pivot import api

        if watch:
            raise click.UsageError("--watch runs stages; it cannot be combined with --dry-run")
        decided = api.status(stages, force=force, upstream=upstream, run_cache=not no_run_cache)
        if as_json:
            common.dump_json(render.plan_json(decided))
        else:
            render.print_plan(decided, explain=explain)
        return True
    with display.terminal_streams() as (out, err), contextlib.ExitStack() as cleanup:
        sink: EventSink
        if as_json:
            sink = json_events.JsonEvents(out, show_output=show_output)
        else:
            options = display.DisplayOptions(quiet, verbose, explain, show_output)
            shown = display.make_display(out, err, options)
            cleanup.callback(shown.close)
            sink = shown

        plain = not (stages or force or watch or executor or strict or no_run_cache or pull)
        if plain and download:
            from pivot.cli import noop

            fast = noop.repro(sink, wait=not no_wait, on_wait=common.say_waiting)
            if fast is not None:
                return fast.ok

        from pivot import api

        def once(fresh_workers: bool) -> bool:
            nonlocal force  # applies to the first run only (watch mode re-runs what changed)
            forced, force = force, False
            _, report = api.repro(
                stages,
                force=forced,
                jobs=jobs,
                keep_going=keep_going,
                emit=sink,
                upstream=upstream,
                executor=executor,
                download=download,
                strict=strict,
                fresh_workers=fresh_workers,
                run_cache=not no_run_cache,
                pull=pull,
                wait=not no_wait,
                on_wait=common.say_waiting,
                noop_snapshot=not watch,  # (a watch process holds modules older than files)
                fork_workers=not watch,  # (a watch process re-imports code between runs)
            )
            return report.ok

        if not watch:
            return once(False)
        from pivot import project
        from pivot.cli import watch as watching

        root = project.find_root(Path.cwd())
        watching.watch(root, once, sink, debounce_ms=debounce)
        return True
