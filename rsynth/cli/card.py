"""`rsynth card DIR`: a Hugging Face dataset card for a build or stage output."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rsynth.cards.params import CardParams
from rsynth.cli.common import console, summary_table
from rsynth.cli.params import with_configs


@with_configs(params=CardParams)
def card(
    directory: Path = typer.Argument(..., help="A build output (with build.json) or one stage's output directory."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Where README.md and plots/ go (default: DIR)."),
    params: CardParams = CardParams(),
) -> None:
    """Write a Hugging Face dataset card (README.md with YAML metadata) and PNG plots."""
    from rsynth.cards.card import write_card

    stats = write_card(directory, out or directory, pretty_name=params.pretty_name)
    console.print(summary_table("card", stats))
