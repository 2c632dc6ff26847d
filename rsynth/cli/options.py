"""Options shared by the commands that no recipe has (the rest come from params classes: `EngineParams`,
`RunParams`, ...)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from rsynth.engines.base import Engine
from rsynth.engines.params import EngineParams


def INPUT(help: str) -> Any:
    """The `--input/-i` option of a command that reads rows; `help` says what it reads."""
    return typer.Option(..., "--input", "-i", help=help)


OUT = typer.Option(..., "--out", "-o", help="Output directory (Arrow shards + manifest.json).")
DRY_RUN = typer.Option(False, "--dry-run", help="Validate inputs and print the plan; sample nothing.")
FIELD = typer.Option(
    [], "--field", "-f", help="Column mapping NAME=COLUMN, e.g. --field problem=question (repeatable)."
)


def sampling_engine(out: Path, stage: str, overwrite: bool, params: EngineParams) -> Engine:
    """The engine of a sampling command: refuse a foreign --out first, then load the model with the
    completion cache kept in the output directory, so a re-run resumes without re-sampling."""
    from rsynth.data.shards import refuse_other_stage

    refuse_other_stage(out, stage, overwrite)
    return params.build(out / "cache.sqlite")


def input_mapping(input: str, fields: list[str]) -> dict[str, str]:
    """Fail at once on a missing input, then parse its `--field NAME=COLUMN` mapping and check the
    named columns exist in the input's first rows."""
    from rsynth.data.readers import check_input, parse_field_map

    check_input(input)
    return parse_field_map(fields, input)


def load_hint(out: Path, split: str = "data") -> str:
    return f"datasets.load_dataset('arrow', data_files='{out}/{split}/*.arrow', split='train')"
