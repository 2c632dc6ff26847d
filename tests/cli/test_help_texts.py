"""Every option of every command says what it does (issue 22: "every option needs a help text")."""

from __future__ import annotations

from typer.main import get_command

import rsynth.cli as cli


def options_without_help() -> list[str]:
    root = get_command(cli.app)
    missing: list[str] = []

    def walk(command, path: list[str]) -> None:
        if hasattr(command, "list_commands"):
            ctx = command.context_class(command)
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), path + [name])
        for p in getattr(command, "params", []):
            if p.param_type_name == "option" and "--help" not in p.opts and not (p.help or "").strip():
                missing.append(f"{' '.join(path)} {'/'.join(p.opts)}")

    walk(root, [])
    return missing


def test_every_option_has_a_help_text():
    assert options_without_help() == []
