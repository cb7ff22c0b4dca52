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
    lines.close()
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


class _Writes(io.StringIO):
    """Counts its writes."""

    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_stage_lines_are_held_back_until_flushed_then_written_at_once() -> None:
    out = _Writes()
    lines = PlainLines(out, out, DisplayOptions())
    for index in range(1, 4):
        lines(StageStarted(f"s{index}", index, 3))
        lines(StageFinished(f"s{index}", RunStatus.SKIPPED, index, 3, 0.0))
    assert out.getvalue() == ""

    lines.flush()

    assert out.writes == 1
    assert out.getvalue().splitlines() == [
        "[1/3] s1 ...",
        "[1/3] s1 up to date",
        "[2/3] s2 ...",
        "[2/3] s2 up to date",
        "[3/3] s3 ...",
        "[3/3] s3 up to date",
    ]


def test_any_other_event_writes_the_held_lines_first() -> None:
    out = io.StringIO()
    lines = PlainLines(out, out, DisplayOptions(show_output=True))
    lines(StageStarted("train", 1, 1))
    lines(StageOutput("train", ("epoch 1",)))

    assert out.getvalue().splitlines() == ["[1/1] train ...", "train | epoch 1"]
