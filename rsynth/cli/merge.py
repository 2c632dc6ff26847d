"""`rsynth merge DIRS... --out DIR`: join the outputs of partitioned runs, in input order."""

from __future__ import annotations

from pathlib import Path

import typer

from rsynth.cli.common import console, summary_table
from rsynth.errors import UserError


def merge(
    dirs: list[Path] = typer.Argument(..., help="Partition outputs of one stage (any order)."),
    out: Path = typer.Option(..., "--out", "-o", help="Merged output directory."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing OUT instead of refusing."),
) -> None:
    """Join the outputs of `--num-shards N --shard-index I` runs into one directory, in input order."""
    from rsynth.runner.partition import merge_outputs

    for d in dirs:
        if not (d / "manifest.json").exists():
            raise UserError(f"merge: {d} is not an rsynth output directory (no manifest.json)")
    console.print(summary_table(f"merge -> {out}", merge_outputs(dirs, out, overwrite=overwrite)))
