"""`rsynth generate problems|solutions|formal|proofs|code`."""

from __future__ import annotations

from pathlib import Path

import typer

from rsynth.cli import options as opt
from rsynth.cli.common import console, summary_table
from rsynth.cli.params import with_configs
from rsynth.engines.params import EngineParams
from rsynth.runner.params import RunParams
from rsynth.stages.codetasks_params import CodeTasksParams
from rsynth.stages.inject import InjectParams
from rsynth.stages.stage_params import (
    CodeParams,
    EvolveParams,
    FormalParams,
    ProblemsParams,
    ProofsParams,
    SolutionsParams,
)
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
        from rsynth.stages.problems import write_template_problems

        count = min(params.n, run.limit) if run.limit is not None else params.n
        if dry_run:
            console.print(f"would write {count} '{params.template}' problems (seed {engine.seed}) to {out}")
            return
        stats = write_template_problems(
            out,
            params.template,
            count,
            engine.seed,
            params.knobs(),
            shard_size=run.shard_size,
            overwrite=run.overwrite,
            partition=run.partition,
        )
    else:
        from dataclasses import replace

        from rsynth.data.readers import plan_rows
        from rsynth.stages.problems import evolve_problems, rewrite_plan, validate_seed

        mapping = opt.input_mapping(evolve.from_seeds, fields)
        plan = plan_rows(
            evolve.from_seeds, lambda rec: validate_seed(rec, mapping), run.limit
        )  # also refuses a whole-input failure
        per_seed, seeds = rewrite_plan(params.n, plan["valid rows"] + plan["bad rows (→ errors/)"])
        if dry_run:
            console.print(
                summary_table(
                    f"plan: rewrite problems from {evolve.from_seeds} with {engine.model or 'the default model'} into {out}",
                    {**plan, "seed rows read": seeds, "rewrites per seed": per_seed, "rewrites in total": params.n},
                )
            )
            return
        llm = opt.sampling_engine(out, "generate-problems", run.overwrite, engine)
        config = replace(evolve.config(engine.sampling()), per_seed=per_seed, total=params.n)
        stats = evolve_problems(evolve.from_seeds, mapping, out, llm, config, **{**run.stage_kwargs(), "limit": seeds})
    _done("problems", stats, out, f"problems in {out}/data/")


@app.command("solutions")
@with_configs(params=SolutionsParams, engine=EngineParams, run=RunParams)
def solutions(
    input: str = opt.INPUT("Problems: JSONL, Parquet, Arrow, a dataset directory or a hub id."),
    out: Path = opt.OUT,
    fields: list[str] = opt.FIELD,
    dry_run: bool = opt.DRY_RUN,
    params: SolutionsParams = SolutionsParams(),
    engine: EngineParams = EngineParams(),
    run: RunParams = RunParams(),
) -> None:
    """Sample N step-by-step solutions per problem, split steps, extract and verify final answers."""
    from rsynth.stages.solutions import plan_solutions, run_solutions

    mapping = opt.input_mapping(input, fields)
    config = params.config(engine.sampling())
    if dry_run:
        console.print(
            summary_table(f"plan: generate solutions from {input}", plan_solutions(input, mapping, config, run.limit))
        )
        return
    llm = opt.sampling_engine(out, "generate-solutions", run.overwrite, engine)
    stats = run_solutions(input, mapping, out, llm, config, verify_timeout=params.verify_timeout, **run.stage_kwargs())
    _done("solutions", stats, out, f"traces in {out}/data/")


@app.command("formal")
@with_configs(params=FormalParams, lean=LeanParams, engine=EngineParams, run=RunParams)
def formal(
    input: str = opt.INPUT("Natural-language problems (problem, optional id)."),
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
    from rsynth.stages.formal import StatementChecker, run_formal

    mapping = opt.input_mapping(input, fields)
    config = params.config(engine.sampling(), lean.header)
    if dry_run:
        from functools import partial

        from rsynth.stages.formal import _validate_problem

        title = f"plan: autoformalize {input} ({params.n_samples} statement(s) per problem) into {out}"
        return _plan(title, input, partial(_validate_problem, mapping), run.limit)
    verifier = lean.verifier(StatementChecker)
    llm = opt.sampling_engine(out, "generate-formal", run.overwrite, engine)
    stats = run_formal(input, mapping, out, llm, verifier, config, **run.stage_kwargs())
    _done("formal", stats, out, f"statements in {out}/data/, rejected ones in {out}/rejected/")


@app.command("proofs")
@with_configs(params=ProofsParams, lean=LeanParams, engine=EngineParams, run=RunParams)
def proofs(
    input: str = opt.INPUT(
        "Lean statements: rsynth `generate formal` output, miniF2F rows (formal_statement), or --field statement=COL."
    ),
    out: Path = opt.OUT,
    fields: list[str] = opt.FIELD,
    dry_run: bool = opt.DRY_RUN,
    params: ProofsParams = ProofsParams(),
    lean: LeanParams = LeanParams(),
    engine: EngineParams = EngineParams(),
    run: RunParams = RunParams(),
) -> None:
    """Sample whole proofs, check them with Lean, label tactics from the first error."""
    from rsynth.stages.formal import make_statement_validator, run_proofs

    mapping = opt.input_mapping(input, fields)
    config = params.config(engine.sampling(), lean.header)
    if dry_run:
        per_row = params.n_samples * (2 if params.negation else 1)
        validate = make_statement_validator(mapping, lean.header)
        return _plan(f"plan: generate proofs from {input}", input, validate, run.limit, ("proofs to sample", per_row))
    verifier = lean.verifier()
    llm = opt.sampling_engine(out, "generate-proofs", run.overwrite, engine)
    stats = run_proofs(input, mapping, out, llm, verifier, config, batch_size=params.batch_size, **run.stage_kwargs())
    _done("proofs", stats, out, f"proof traces in {out}/data/, per-statement outcomes in {out}/statements/")


@app.command("code")
@with_configs(params=CodeParams, engine=EngineParams, run=RunParams)
def code(
    input: str = opt.INPUT(
        "Code tasks: HumanEval/MBPP+ rows, rsynth code tasks, or --field prompt=COL --field tests=COL."
    ),
    out: Path = opt.OUT,
    fields: list[str] = opt.FIELD,
    dry_run: bool = opt.DRY_RUN,
    params: CodeParams = CodeParams(),
    engine: EngineParams = EngineParams(),
    run: RunParams = RunParams(),
) -> None:
    """Sample programs for tasks, run their tests in the sandbox, record pass rates and line labels."""
    from rsynth.stages.codegen import run_code

    mapping = opt.input_mapping(input, fields)
    config = params.config(engine.sampling())
    if dry_run:
        from rsynth.stages.codegen import make_task_validator

        title = f"plan: sample {params.n_samples} program(s) per task of {input} into {out}"
        return _plan(title, input, make_task_validator(mapping, params.style, params.synthesize_tests), run.limit)
    verifier = params.verifier()  # no usable sandbox: refused before the model loads
    llm = opt.sampling_engine(out, "generate-code", run.overwrite, engine)
    with verifier:
        stats = run_code(input, mapping, out, llm, verifier, config, **run.stage_kwargs())
    _done("code", stats, out, f"programs in {out}/data/")


@app.command("code-tasks")
@with_configs(params=CodeTasksParams, engine=EngineParams, run=RunParams)
def code_tasks(
    input: str = opt.INPUT(
        "Seed programs: HumanEval/MBPP+ rows, `generate code` output, or rows with "
        "program, entry_point and inputs (argument lists)."
    ),
    out: Path = opt.OUT,
    dry_run: bool = opt.DRY_RUN,
    params: CodeTasksParams = CodeTasksParams(),
    engine: EngineParams = EngineParams(),
    run: RunParams = RunParams(),
) -> None:
    """Absolute Zero code reasoning tasks (deduction, abduction, induction), every program run in the sandbox.

    Invalid programs go to OUT/rejected with their reason; with --solver-model, solver attempts go to
    OUT/attempts and tasks outside --keep-solve-rate to OUT/filtered."""
    from rsynth.data.shards import refuse_other_stage
    from rsynth.stages.codetasks import run_code_tasks
    from rsynth.stages.codetasks_params import solver_engine

    opt.input_mapping(input, [])
    if dry_run:
        console.print(f"would make {params.types} tasks from {input} ({params.programs}) into {out}")
        return
    params.verifier_check()  # no usable sandbox: refused before any model loads
    refuse_other_stage(out, "generate-code-tasks", run.overwrite)
    proposer = (
        opt.sampling_engine(out, "generate-code-tasks", run.overwrite, engine)
        if params.programs == "propose" or params.solver_model == "same"
        else None
    )
    solver = solver_engine(params, engine, proposer, out)
    try:
        stats = run_code_tasks(input, out, params, engine.sampling(), proposer, solver, **run.stage_kwargs())
    finally:
        for e in {id(x): x for x in (proposer, solver) if x is not None}.values():
            e.close()
    _report("code-tasks", stats, f"tasks in {out}/data/ — load with {opt.load_hint(out)}")


@app.command("injected-errors")
@with_configs(params=InjectParams, engine=EngineParams, run=RunParams)
def injected_errors(
    input: str = opt.INPUT(
        "Correct step-split solutions: `generate solutions` traces (verdict correct) "
        "or problems with gold_steps (`generate problems`)."
    ),
    out: Path = opt.OUT,
    dry_run: bool = opt.DRY_RUN,
    params: InjectParams = InjectParams(),
    engine: EngineParams = EngineParams(),
    run: RunParams = RunParams(),
) -> None:
    """SPC-style traces: one step rewritten with an error and carried on; kept when the final answer is now wrong.

    Labels: the injected step is the first error, earlier steps correct. Attempts not kept go to
    OUT/removed with their reason, rows that are not correct solutions to OUT/skipped."""
    from rsynth.data.shards import refuse_other_stage
    from rsynth.stages.inject import run_inject

    opt.input_mapping(input, [])
    if dry_run:
        console.print(
            f"would inject {params.per_trace} {params.method} error(s) per correct solution of {input} into {out}"
        )
        return
    refuse_other_stage(out, "generate-injected-errors", run.overwrite)
    llm = opt.sampling_engine(out, "generate-injected-errors", run.overwrite, engine) if params.needs_engine() else None
    stats = run_inject(input, out, params, engine.sampling(), llm, **run.stage_kwargs())
    _report("injected-errors", stats, f"labelled traces in {out}/data/ — load with {opt.load_hint(out)}")


def _report(command: str, stats: dict, where: str) -> None:
    """A stage's stats table, its own `counts` as a second table, and where the rows are."""
    console.print(summary_table(f"generate {command}", {k: v for k, v in stats.items() if k != "counts"}))
    console.print(summary_table(f"{command} counts", stats.get("counts", {})))
    console.print(where)


def _plan(title: str, input: str, validate, limit: int | None, per_row: tuple[str, int] | None = None) -> None:
    """`--dry-run`: the input's valid and bad rows (a whole-input failure refused), and, given
    `per_row` (label, count), what the valid rows would become."""
    from rsynth.data.readers import plan_rows

    plan = plan_rows(input, validate, limit)
    if per_row is not None:
        plan[per_row[0]] = plan["valid rows"] * per_row[1]
    console.print(summary_table(title, plan))


def _done(command: str, stats: dict, out: Path, where: str) -> None:
    """A sampling command's stats table, then where its rows are and how to load them."""
    console.print(summary_table(f"generate {command}", stats))
    console.print(f"{where} — load with {opt.load_hint(out)}")
