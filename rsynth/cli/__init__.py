"""The `rsynth` command line: one thin module per command (parse, call, print)."""

from __future__ import annotations

import typer

from rsynth import __version__
from rsynth.cli import (
    annotate,
    build,
    card,
    critiques,
    decontaminate,
    doctor,
    export,
    generate,
    judge,
    merge,
    push,
    serve_reward,
    verify,
)
from rsynth.cli.common import console, run_cli
from rsynth.engines.base import DEFAULT_MAX_INPUT_CHARS

app = typer.Typer(
    name="rsynth",
    help="Build step-labelled reasoning training data: synthesise, sample, verify, PRM-annotate, decontaminate, export.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"rsynth {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    max_input_chars: int = typer.Option(
        DEFAULT_MAX_INPUT_CHARS,
        "--max-input-chars",
        help="A prompt longer than this (or than the model's context) sends its row to errors/ as too_long; 0: no limit.",
    ),
    encoding_errors: str = typer.Option(
        "strict",
        "--encoding-errors",
        help="strict: a JSONL row with invalid UTF-8 goes to errors/ (raw bytes as base64) | replace: keep it with U+FFFD.",
    ),
) -> None:
    """rsynth: synthetic reasoning data with step labels.

    The options here apply to every command, given before it: `rsynth --max-input-chars 50000 generate solutions ...`."""
    from rsynth.data.readers import set_encoding_errors
    from rsynth.engines.base import set_max_input_chars
    from rsynth.errors import UserError

    if encoding_errors not in ("strict", "replace") or max_input_chars < 0:
        raise UserError("--encoding-errors must be strict or replace, and --max-input-chars >= 0")
    set_max_input_chars(max_input_chars)
    set_encoding_errors(encoding_errors)


app.add_typer(generate.app, name="generate")
app.command("annotate-prm")(annotate.annotate_prm)
app.command("judge")(judge.judge)
app.command("consensus")(judge.consensus)
app.command("filter-critiques")(critiques.filter_critiques)
app.command("export")(export.export)
app.add_typer(export.import_app, name="import")
app.command("eval-labels")(export.eval_labels)
app.command("decontaminate")(decontaminate.decontaminate)
app.add_typer(verify.app, name="verify")
app.command("build")(build.build)
app.command("card")(card.card)
app.command("push")(push.push)
app.command("merge")(merge.merge)
app.command("serve-reward")(serve_reward.serve_reward)
app.command("doctor")(doctor.doctor)


def main() -> None:
    run_cli(app)
