"""`rsynth doctor OUT`: verify an output directory before trusting or publishing it."""

from __future__ import annotations

from pathlib import Path

import typer

from rsynth.cli.common import console


def doctor(
    directory: Path = typer.Argument(..., help="A build output (with build.json) or one stage's output directory."),
) -> None:
    """Check every shard loads with its manifest's schema and row count, no stray shard, the card's globs resolve
    and each completion cache is readable. Exit 0 when all is well, 1 with one line per problem, 2 when DIRECTORY
    is not an rsynth output. Nothing is changed: a re-run of the command that wrote DIRECTORY repairs it."""
    from rsynth.data.doctor import doctor as check

    report = check(directory)
    for line in report.problems:
        typer.echo(line)
    if report.problems:
        raise typer.Exit(1)
    console.print(
        f"ok: {directory} ({report.outputs} output{'s' if report.outputs != 1 else ''}, {report.shards} shards, "
        f"{report.rows} rows checked)",
        highlight=False,
    )
