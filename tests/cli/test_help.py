"""Every command has help, its options are shown as flags, and choices are listed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from entrepot.cli import app

SERVER_SIDE = {
    "serve",
    "migrate",
    "budget",
    "version",
    "admin create-key",
    "admin streams add",
    "admin streams list",
    "admin streams end",
}


def commands() -> Iterator[tuple[str, Any]]:
    def walk(prefix: str, command: Any) -> Iterator[tuple[str, Any]]:
        if hasattr(command, "commands"):  # a group (Typer's own copy of Click)
            for name, sub in command.commands.items():
                yield from walk(f"{prefix} {name}".strip(), sub)
        else:
            yield prefix, command

    yield from walk("", typer.main.get_command(app))


def test_every_command_has_help_with_its_options_as_flags() -> None:
    runner = CliRunner()
    seen = 0
    for path, command in commands():
        assert command.help, f"{path} has no help text"
        shown = runner.invoke(app, [*path.split(), "--help"])
        assert shown.exit_code == 0, path
        for param in command.params:
            if param.param_type_name == "option" and not param.hidden:
                for opt in param.opts + param.secondary_opts:
                    assert opt.startswith("-"), (path, opt)
                    assert opt in shown.stdout, (path, opt)
                if param.is_flag:
                    flag = max(param.opts, key=len)
                    assert f"{flag} <" not in shown.stdout, (path, flag)  # no value shown
                kind = param.type_descriptor
                if kind.is_choice:
                    for choice in kind.choices or ():
                        assert str(getattr(choice, "value", choice)) in shown.stdout, (path, choice)
        seen += 1
    assert seen >= 50


def test_client_commands_share_the_connection_options() -> None:
    for path, command in commands():
        if path in SERVER_SIDE or path.split()[0] in ("login", "logout", "profiles"):
            continue
        names = {opt for p in command.params for opt in getattr(p, "opts", [])}
        assert {"--url", "--token", "--profile"} <= names, path


def test_shell_completion_is_offered() -> None:
    shown = CliRunner().invoke(app, ["--help"])
    assert "--install-completion" in shown.stdout
    assert "--show-completion" in shown.stdout


def test_every_client_command_has_a_test() -> None:
    """Each command is run somewhere in tests/cli against the real server."""
    here = Path(__file__).parent
    sources = "".join(p.read_text() for p in here.glob("test_*.py"))
    sources = re.sub(r",\s+", ", ", re.sub(r"\(\s+", "(", sources))  # as black wraps calls
    for path, _ in commands():
        if path in SERVER_SIDE:
            continue
        called = "(" + ", ".join(f'"{word}"' for word in path.split())
        assert f"{called}," in sources or f"{called})" in sources, f"no test runs {path}"
