"""Every `cairn` option has a help text and every argument is described in its command's help."""

from collections.abc import Iterator

import click
from click.testing import CliRunner

from router.cli import main


def _commands(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
    """(`cairn sub …` path, command) for the command and, for a group, every command below it."""
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _commands(sub, f"{path} {name}")


def _options(command: click.Command) -> Iterator[click.Option]:
    help_option = command.get_help_option(click.Context(command))
    for param in command.params:
        if isinstance(param, click.Option) and param is not help_option and param.name != "help":
            yield param


def test_the_walk_reaches_nested_commands() -> None:
    paths = {path for path, _ in _commands(main, "cairn")}
    assert {"cairn", "cairn rules", "cairn rules backtest", "cairn lessons search"} <= paths


def test_every_option_has_a_help_text() -> None:
    missing = [
        f"{path} {'/'.join(option.opts)}"
        for path, command in _commands(main, "cairn")
        for option in _options(command)
        if not (option.help or "").strip()
    ]
    assert not missing, "options without help text: " + ", ".join(missing)


def test_every_argument_is_described_in_its_command_help() -> None:
    missing = [
        f"{path} {param.human_readable_name}"
        for path, command in _commands(main, "cairn")
        for param in command.params
        if isinstance(param, click.Argument)
        and param.human_readable_name not in (command.help or "")
    ]
    assert not missing, "arguments not named in their command's help: " + ", ".join(missing)


def test_every_command_has_a_help_page() -> None:
    for path, _ in _commands(main, "cairn"):
        result = CliRunner().invoke(main, [*path.split()[1:], "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage: " in result.output
