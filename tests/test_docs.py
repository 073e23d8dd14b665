"""Every command a user can type has help text and is documented in the README."""

from __future__ import annotations

from pathlib import Path

import typer

from cli import app

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def _commands(group, prefix: str = "cjm"):
    for name, command in sorted(getattr(group, "commands", {}).items()):
        path = f"{prefix} {name}"
        if getattr(command, "commands", None):
            yield from _commands(command, path)
        else:
            yield path, command


def test_every_command_has_help_and_is_in_the_readme() -> None:
    commands = list(_commands(typer.main.get_command(app)))
    assert len(commands) >= 5
    for path, command in commands:
        assert (command.help or "").strip(), f"{path} has no help text"
        assert f"`{path}" in README, f"{path} is not documented in README.md"
