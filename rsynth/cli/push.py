"""`rsynth push DIR`: upload a carded output to the Hugging Face Hub."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from rsynth.cli.common import console, err_console


def push(
    directory: Path = typer.Argument(..., help="A carded build output (run `rsynth card DIR` first)."),
    repo_id: str = typer.Option(..., "--repo-id", help="Hub dataset repo, e.g. me/gsm8k-omegaprm."),
    private: bool = typer.Option(False, "--private", help="Create the Hub dataset repository as private."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be uploaded; upload nothing."),
) -> None:
    """Upload the card, plots, manifests and Arrow shards to the Hugging Face Hub."""
    from rsynth.cards.push import check_repo_id, missing_data, push_files, upload_list

    check_repo_id(repo_id)
    files = upload_list(directory)
    total = sum(f.stat().st_size for f in files)
    missing = missing_data(directory, files)
    if missing:
        err_console.print(
            f"[yellow]warning:[/yellow] no data would be uploaded for {escape(', '.join(missing))}: "
            f"those files are not under {escape(str(directory))} (a card written with -o elsewhere?); "
            "run `rsynth card` on the build directory itself",
            highlight=False,
            soft_wrap=True,
        )
    if dry_run:
        table = Table(title=f"would upload to datasets/{repo_id}", header_style="bold")
        table.add_column("file")
        table.add_column("bytes", justify="right")
        for f in files:
            table.add_row(str(f.relative_to(directory)), str(f.stat().st_size))
        console.print(table)
        console.print(f"{len(files)} files, {total} bytes")
        return
    url = push_files(directory, files, repo_id, private=private)
    console.print(f"pushed {len(files)} files ({total} bytes) to {url}")
