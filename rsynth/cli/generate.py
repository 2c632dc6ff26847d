"""`rsynth generate problems|solutions`."""

from __future__ import annotations

import typer

app = typer.Typer(help="Synthesise problems and sample step-by-step solutions.", no_args_is_help=True)
