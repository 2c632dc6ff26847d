"""`rsynth filter-critiques`: judge critiques that agree with reference step labels (ThinkPRM-style)."""

from __future__ import annotations

from pathlib import Path

from rsynth.cli import options as opt
from rsynth.cli.common import console, summary_table
from rsynth.cli.params import with_configs
from rsynth.runner.params import RunParams
from rsynth.stages.critiques import CritiqueFilterConfig


@with_configs(params=CritiqueFilterConfig, run=RunParams)
def filter_critiques(
    input: Path = opt.INPUT("`rsynth judge` output run on labelled traces (MC, gold or injected labels)."),
    out: Path = opt.OUT,
    params: CritiqueFilterConfig = CritiqueFilterConfig(),
    run: RunParams = RunParams(),
) -> None:
    """Keep each critique whose step verdicts agree with the trace's reference labels; the rest go to OUT/filtered."""
    from rsynth.data.readers import check_input
    from rsynth.stages.critiques import run_filter_critiques

    check_input(str(input))
    stats = run_filter_critiques(
        str(input), out, params, shard_size=run.shard_size, overwrite=run.overwrite, partition=run.partition
    )
    console.print(summary_table("filter-critiques", {k: v for k, v in stats.items() if k != "reasons"}))
    console.print(summary_table("critique reasons", stats.get("reasons", {})))
    console.print(
        f"kept critiques in {out}/data/ — export with `rsynth export -i {out} -o critiques.jsonl --format sft-critique`"
    )
