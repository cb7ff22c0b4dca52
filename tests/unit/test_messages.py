"""Every `pivot ...` command quoted in Pivot's own messages and docstrings exists, with the
options it names (a message must never send a user to a command that is not there)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from pivot.cli.main import cli

SRC = Path(__file__).resolve().parents[2] / "src" / "pivot"
_QUOTED = re.compile(r"`pivot ([a-z][a-z-]*)((?: [^`]*)?)`")


def _quoted_commands() -> list[tuple[str, str, str]]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for match in _QUOTED.finditer(path.read_text(encoding="utf-8")):
            found.append((path.relative_to(SRC).as_posix(), match.group(1), match.group(2)))
    return found


QUOTED = _quoted_commands()


def _options(command: click.Command) -> set[str]:
    return {name for param in command.params for name in getattr(param, "opts", [])}


@pytest.mark.parametrize(("where", "name", "rest"), QUOTED, ids=[f"{w}:{n}" for w, n, _ in QUOTED])
def test_quoted_command_exists_with_its_options(where: str, name: str, rest: str) -> None:
    assert isinstance(cli, click.Group)
    command = cli.commands.get(name)
    assert command is not None, f"{where} quotes `pivot {name}`, which does not exist"
    words = rest.split()
    if isinstance(command, click.Group) and words and words[0] in command.commands:
        command = command.commands[words[0]]
    for option in (word for word in words if word.startswith("-")):
        assert option in _options(command), f"{where}: `pivot {name}` has no option {option}"


def test_messages_are_found() -> None:
    assert len(QUOTED) > 20
