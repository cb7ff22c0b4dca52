"""`pivot completion bash|zsh|fish`: the shell script that completes commands, options and
stage names (stage names from the list the last pipeline load kept, never by importing it)."""

from __future__ import annotations

import click

__all__ = ["completion"]

_HOW = {
    "bash": 'eval "$(pivot completion bash)"      # in ~/.bashrc',
    "zsh": 'eval "$(pivot completion zsh)"       # in ~/.zshrc',
    "fish": "pivot completion fish | source      # in ~/.config/fish/config.fish",
}


@click.command()
@click.argument("shell", type=click.Choice(sorted(_HOW)))
def completion(shell: str) -> None:
    """Print the completion script for SHELL. Enable it with, e.g.:

    \b
      eval "$(pivot completion bash)"      # in ~/.bashrc
      eval "$(pivot completion zsh)"       # in ~/.zshrc
      pivot completion fish | source      # in ~/.config/fish/config.fish
    """
    from click.shell_completion import get_completion_class

    from pivot.cli.main import cli

    found = get_completion_class(shell)
    if found is None:  # click knows all three; this is a guard against an old click
        raise click.UsageError(f"no completion for {shell}")
    script = found(cli, {}, "pivot", "_PIVOT_COMPLETE").source()
    click.echo(script)
