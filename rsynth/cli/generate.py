"""`rsynth generate problems|solutions|formal|proofs|code`."""

from __future__ import annotations

from pathlib import Path

import typer

from rsynth.cli import options as opt
from rsynth.cli.common import console, summary_table
from rsynth.cli.params import with_configs
from rsynth.engines.params import EngineParams
from rsynth.executor.params import RunParams
from rsynth.pipelines.stage_params import CodeParams, EvolveParams, FormalParams, ProblemsParams, ProofsParams, SolutionsParams
from rsynth.verifiers.lean_params import LeanParams

app = typer.Typer(help="Synthesise problems and sample step-by-step solutions.", no_args_is_help=True)


@app.command("problems")
@with_configs(params=ProblemsParams, evolve=EvolveParams, engine=EngineParams, run=RunParams)
def problems(
    out: Path = opt.OUT,
    fields: list[str] = opt.FIELD,
    params: ProblemsParams = ProblemsParams(),
    evolve: EvolveParams = EvolveParams(),
    engine: EngineParams = EngineParams(),
    dry_run: bool = opt.DRY_RUN,
    run: RunParams = RunParams(),
) -> None:
    """Procedural problems with sympy-computed answers and gold steps, or LLM rewrites of seed problems."""
    if evolve.from_seeds is None:
        from rsynth.pipelines.problems import write_template_problems

        count = min(params.n, run.limit) if run.limit is not None else params.n
        if dry_run:
            console.print(f"would write {count} '{params.template}' problems (seed {engine.seed}) to {out}")
            return
        stats = write_template_problems(out, params.template, count, engine.seed, params.knobs(), shard_size=run.shard_size,
                                        overwrite=run.overwrite, partition=run.partition)
    else:
        from rsynth.pipelines.problems import evolve_problems

        mapping = opt.input_mapping(evolve.from_seeds, fields)
        if dry_run:
            console.print(f"would rewrite problems from {evolve.from_seeds} with {engine.model or 'the default model'} into {out}")
            return
        llm = opt.sampling_engine(out, "generate-problems", run.overwrite, engine)
        stats = evolve_problems(evolve.from_seeds, mapping, out, llm, evolve.config(engine.sampling()), **run.stage_kwargs())
    console.print(summary_table("generate problems", stats))
    console.print(f"problems in {out}/data/ — load with {opt.load_hint(out)}")


@app.command("solutions")
@with_configs(params=SolutionsParams, engine=EngineParams, run=RunParams)
def solutions(
    input: str = typer.Option(..., "--input", "-i", help="Problems: JSONL, Parquet, Arrow, a dataset directory or a hub id."),
    out: Path = opt.OUT,
    fields: list[str] = opt.FIELD,
    dry_run: bool = opt.DRY_RUN,
    params: SolutionsParams = SolutionsParams(),
    engine: EngineParams = EngineParams(),
    run: RunParams = RunParams(),
) -> None:
    """Sample N step-by-step solutions per problem, split steps, extract and verify final answers."""
    from rsynth.pipelines.solutions import plan_solutions, run_solutions

    mapping = opt.input_mapping(input, fields)
    config = params.config(engine.sampling())
    if dry_run:
        console.print(summary_table(f"plan: generate solutions from {input}", plan_solutions(input, mapping, config, run.limit)))
        return
    llm = opt.sampling_engine(out, "generate-solutions", run.overwrite, engine)
    stats = run_solutions(input, mapping, out, llm, config, verify_timeout=params.verify_timeout, **run.stage_kwargs())
    console.print(summary_table("generate solutions", stats))
    console.print(f"traces in {out}/data/ — load with {opt.load_hint(out)}")


@app.command("formal")
@with_configs(params=FormalParams, lean=LeanParams, engine=EngineParams, run=RunParams)
def formal(
    input: str = typer.Option(..., "--input", "-i", help="Natural-language problems (problem, optional id)."),
    out: Path = opt.OUT,
    fields: list[str] = opt.FIELD,
    dry_run: bool = opt.DRY_RUN,
    params: FormalParams = FormalParams(),
    lean: LeanParams = LeanParams(),
    engine: EngineParams = EngineParams(),
    run: RunParams = RunParams(),
) -> None:
    """Autoformalize problems into Lean 4 statements; keep those that elaborate and are not vacuous.

    Rejected statements go to OUT/rejected with their reason: no_statement, does_not_elaborate,
    vacuous_false_hypotheses, trivial_closed_by_<tactic>, low_quality."""
    from rsynth.pipelines.formal import StatementChecker, run_formal

    mapping = opt.input_mapping(input, fields)
    config = params.config(engine.sampling(), lean.header)
    if dry_run:
        console.print(f"would autoformalize {input} ({params.n_samples} statement(s) per problem) into {out}")
        return
    verifier = lean.verifier(StatementChecker)
    llm = opt.sampling_engine(out, "generate-formal", run.overwrite, engine)
    stats = run_formal(input, mapping, out, llm, verifier, config, **run.stage_kwargs())
    console.print(summary_table("generate formal", stats))
    console.print(f"statements in {out}/data/, rejected ones in {out}/rejected/ — load with {opt.load_hint(out)}")


@app.command("proofs")
@with_configs(params=ProofsParams, lean=LeanParams, engine=EngineParams, run=RunParams)
def proofs(
    input: str = typer.Option(..., "--input", "-i", help="Lean statements: rsynth `generate formal` output, miniF2F rows (formal_statement), or --field statement=COL."),
    out: Path = opt.OUT,
    fields: list[str] = opt.FIELD,
    dry_run: bool = opt.DRY_RUN,
    params: ProofsParams = ProofsParams(),
    lean: LeanParams = LeanParams(),
    engine: EngineParams = EngineParams(),
    run: RunParams = RunParams(),
) -> None:
    """Sample whole proofs, check them with Lean, label tactics from the first error."""
    from rsynth.data.readers import RowError, read_records
    from rsynth.pipelines.formal import make_statement_validator, run_proofs

    mapping = opt.input_mapping(input, fields)
    config = params.config(engine.sampling(), lean.header)
    if dry_run:
        validate = make_statement_validator(mapping, lean.header)
        views = [rec if isinstance(rec, RowError) else validate(rec) for i, rec in enumerate(read_records(input)) if run.limit is None or i < run.limit]
        bad = [v for v in views if isinstance(v, RowError)]
        plan = {"valid statements": len(views) - len(bad), "bad rows (→ errors/)": len(bad),
                "proofs to sample": (len(views) - len(bad)) * params.n_samples * (2 if params.negation else 1)}
        if bad:
            plan["first bad row"] = f"row {bad[0].row}: {bad[0].reason}"
        console.print(summary_table(f"plan: generate proofs from {input}", plan))
        return
    verifier = lean.verifier()
    llm = opt.sampling_engine(out, "generate-proofs", run.overwrite, engine)
    stats = run_proofs(input, mapping, out, llm, verifier, config, batch_size=params.batch_size, **run.stage_kwargs())
    console.print(summary_table("generate proofs", stats))
    console.print(f"proof traces in {out}/data/, per-statement outcomes in {out}/statements/ — load with {opt.load_hint(out)}")


@app.command("code")
@with_configs(params=CodeParams, engine=EngineParams, run=RunParams)
def code(
    input: str = typer.Option(..., "--input", "-i", help="Code tasks: HumanEval/MBPP+ rows, rsynth code tasks, or --field prompt=COL --field tests=COL."),
    out: Path = opt.OUT,
    fields: list[str] = opt.FIELD,
    dry_run: bool = opt.DRY_RUN,
    params: CodeParams = CodeParams(),
    engine: EngineParams = EngineParams(),
    run: RunParams = RunParams(),
) -> None:
    """Sample programs for tasks, run their tests in the sandbox, record pass rates and line labels."""
    from rsynth.pipelines.codegen import run_code

    mapping = opt.input_mapping(input, fields)
    config = params.config(engine.sampling())
    if dry_run:
        console.print(f"would sample {params.n_samples} program(s) per task of {input} into {out}")
        return
    verifier = params.verifier()  # no usable sandbox: refused before the model loads
    llm = opt.sampling_engine(out, "generate-code", run.overwrite, engine)
    with verifier:
        stats = run_code(input, mapping, out, llm, verifier, config, **run.stage_kwargs())
    console.print(summary_table("generate code", stats))
    console.print(f"programs in {out}/data/ — load with {opt.load_hint(out)}")
