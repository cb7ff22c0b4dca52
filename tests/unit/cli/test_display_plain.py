"""The plain line display: what a pipe (a CI log, `| tee`) and a terminal each get."""

from __future__ import annotations

import io

import click

from pivot.cli.display import DisplayOptions, PlainLines
from pivot.execute.events import RunStatus, StageFinished, StageOutput, StageStarted


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _show(out: io.StringIO) -> str:
    lines = PlainLines(out, out, DisplayOptions(show_output=True))
    lines(StageStarted("train", 1, 2))
    lines(StageOutput("train", ("\x1b[31mred\x1b[0m text",)))
    lines(StageFinished("train", RunStatus.RAN, 1, 2, 1.5))
    lines(StageFinished("report", RunStatus.FAILED, 2, 2, 0.0))
    return out.getvalue()


def test_a_pipe_gets_plain_text_without_escape_codes() -> None:
    shown = _show(io.StringIO())

    assert "\x1b" not in shown
    assert shown.splitlines() == [
        "[1/2] train ...",
        "train | red text",
        "[1/2] train done (1.50s)",
        "[2/2] report FAILED",
    ]


def test_a_terminal_gets_the_status_words_in_color() -> None:
    shown = _show(_Terminal())

    assert click.style("done", fg="green") in shown
    assert click.unstyle(shown).splitlines()[2] == "[1/2] train done (1.50s)"
    assert "\x1b[31mred\x1b[0m text" in shown  # a stage's own colors are kept on a terminal
