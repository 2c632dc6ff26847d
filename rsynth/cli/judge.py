"""`rsynth judge` (LLM-as-judge first errors) and `rsynth consensus` (keep traces where MC and judge agree)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rsynth.cli import options as opt
from rsynth.cli.common import console, summary_table
from rsynth.cli.params import with_configs
from rsynth.engines.params import EngineParams
from rsynth.runner.params import RunParams
from rsynth.stages.consensus import ConsensusConfig
from rsynth.stages.judge import JUDGE_SAMPLING, JudgeConfig


@with_configs(params=JudgeConfig, engine=(EngineParams, JUDGE_SAMPLING), run=RunParams)
def judge(
    input: str = opt.INPUT(
        "Step-split traces (problem, steps): annotate-prm or generate solutions output, or a ProcessBench file."
    ),
    out: Path = opt.OUT,
    fields: list[str] = opt.FIELD,
    dry_run: bool = opt.DRY_RUN,
    params: JudgeConfig = JudgeConfig(),
    engine: EngineParams = EngineParams(),
    run: RunParams = RunParams(),
) -> None:
    """Ask a judge model for each trace's earliest wrong step (-1: none), N times, by majority vote.

    ProcessBench critic prompt (steps tagged by index, the index in \\boxed{}). Outputs OUT/data (judged
    traces: judge_first_error, judge_votes, judge_agreement, provenance), OUT/unparsed (no judgement
    could be parsed: never counted as "no error") and OUT/errors. Completions are cached in
    OUT/cache.sqlite: re-running a killed command resumes without re-sampling.
    """
    from rsynth.stages.judge import run_judge

    mapping = opt.input_mapping(input, fields)
    config = replace(params, sampling=engine.sampling())
    if dry_run:
        from rsynth.data.readers import plan_rows
        from rsynth.stages.judge import validate_trace

        plan = plan_rows(input, lambda rec: validate_trace(rec, mapping), run.limit)
        console.print(
            summary_table(
                f"plan: judge {input} into {out}: {config.n_judgements} judgement(s) per trace, "
                f"{config.batch} traces per engine call",
                plan,
            )
        )
        return
    llm = opt.sampling_engine(out, "judge", run.overwrite, engine)
    try:
        stats = run_judge(input, mapping, out, llm, config, **run.stage_kwargs())
    finally:
        llm.close()
    console.print(summary_table("judge", stats))
    console.print(
        f"judged traces in {out}/data/ — load with {opt.load_hint(out)}; "
        f"score on ProcessBench with `rsynth eval-labels --pred {out} --gold FILE`"
    )


@with_configs(params=ConsensusConfig, run=RunParams)
def consensus(
    input: Path = opt.INPUT("`rsynth judge` output run on MC-labelled (annotate-prm) traces."),
    out: Path = opt.OUT,
    params: ConsensusConfig = ConsensusConfig(),
    run: RunParams = RunParams(),
) -> None:
    """Keep traces where the MC first error and the judge's agree; the rest go to OUT/filtered with the reason."""
    from rsynth.data.readers import check_input
    from rsynth.data.shards import iter_split_rows
    from rsynth.stages.consensus import confusion_markdown, run_consensus

    check_input(str(input))
    stats = run_consensus(str(input), out, params, **run.stage_kwargs())
    console.print(summary_table("consensus", stats))
    rows = [*iter_split_rows(out, "data"), *iter_split_rows(out, "filtered")]
    console.print("MC (rows) vs judge (columns) first error:\n" + "\n".join(confusion_markdown(rows)), highlight=False)
    console.print(f"consensus traces in {out}/data/ — load with {opt.load_hint(out)}")
