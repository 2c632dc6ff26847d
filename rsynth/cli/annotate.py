"""`rsynth annotate-prm`: step labels by OmegaPRM binary-search MC rollouts or Math-Shepherd."""

from __future__ import annotations

from pathlib import Path

from rsynth.annotators import MathShepherdConfig, OmegaPRMConfig
from rsynth.cli import options as opt
from rsynth.cli.common import console, summary_table
from rsynth.cli.params import with_configs
from rsynth.engines.params import EngineParams
from rsynth.runner.params import RunParams
from rsynth.stages.annotate_params import AnnotateParams
from rsynth.verifiers.lean_params import LeanParams


@with_configs(
    params=AnnotateParams,
    omegaprm=OmegaPRMConfig,
    math_shepherd=MathShepherdConfig,
    lean=LeanParams,
    engine=(EngineParams, {"max_new_tokens": 2048}),
    run=RunParams,
)
def annotate_prm(
    input: str = opt.INPUT("Problems (problem, answer) or step-split traces (problem, answer, steps)."),
    out: Path = opt.OUT,
    fields: list[str] = opt.FIELD,
    dry_run: bool = opt.DRY_RUN,
    params: AnnotateParams = AnnotateParams(),
    omegaprm: OmegaPRMConfig = OmegaPRMConfig(),
    math_shepherd: MathShepherdConfig = MathShepherdConfig(),
    lean: LeanParams = LeanParams(),
    engine: EngineParams = EngineParams(),
    run: RunParams = RunParams(),
) -> None:
    """Label every step of sampled or given solutions with Monte Carlo rollouts.

    Outputs OUT/data (labelled traces), OUT/tree (every estimated prefix: question, prefix, MC, N),
    OUT/questions (one row per input: outcome and cost) and OUT/errors. Completions are cached in
    OUT/cache.sqlite: re-running a killed or interrupted command resumes without re-sampling.
    """
    from rsynth.stages.annotate import run_annotate
    from rsynth.stages.domains import detect_domain

    mapping = opt.input_mapping(input, fields)
    domain = detect_domain(input) if params.domain == "auto" else params.domain
    config = params.config(engine.sampling(), domain, omegaprm, math_shepherd)
    if dry_run:
        from rsynth.data.readers import plan_rows
        from rsynth.stages.annotate import make_validator
        from rsynth.verifiers.base import Unchecked

        plan = plan_rows(input, make_validator(mapping, config.input_kind, Unchecked(), config.checker()), run.limit)
        console.print(
            summary_table(
                f"plan: annotate {input} with {params.method} into {out} (--scheduler {params.scheduler})", plan
            )
        )
        return
    verifier = params.verifier(domain, lean)
    llm = opt.sampling_engine(out, "annotate-prm", run.overwrite, engine)
    stats = run_annotate(
        input,
        mapping,
        out,
        llm,
        config,
        concurrent_searches=params.concurrent_searches,
        verify_timeout=params.verify_timeout,
        verifier=verifier,
        scheduler=params.scheduler,
        max_live_searches=params.max_live_searches,
        prefetch=params.prefetch,
        verify_workers=params.verify_workers,
        **run.stage_kwargs(),
    )
    console.print(summary_table("annotate-prm", stats))
    from rsynth.stages.label_summary import label_summary

    console.print(summary_table("labels", label_summary(out)))
    console.print(f"labelled traces in {out}/data/ — load with {opt.load_hint(out)}; export with `rsynth export`")
