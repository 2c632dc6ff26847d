"""`rsynth generate problems|solutions`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rsynth.cli import options as opt
from rsynth.cli.common import UserError, console, parse_range, summary_table

app = typer.Typer(help="Synthesise problems and sample step-by-step solutions.", no_args_is_help=True)


@app.command("problems")
def problems(
    out: Path = opt.OUT,
    template: str = typer.Option("mixed", "--template", "-t", help="arithmetic | linear | fractions | percent | mixed."),
    n: int = typer.Option(100, "--n", help="Number of problems."),
    seed: int = opt.SEED,
    max_steps: int = typer.Option(3, "--max-steps", help="Difficulty: operations chained per problem."),
    max_number: int = typer.Option(20, "--max-number", help="Difficulty: size of the numbers."),
    from_seeds: Optional[str] = typer.Option(None, "--from", help="Seed problems to rewrite with --model instead of templates."),
    fields: list[str] = opt.FIELD,
    n_check: int = typer.Option(4, "--n-check", help="--from: solutions sampled to check a rewritten problem's answer."),
    agreement: float = typer.Option(0.75, "--agreement", help="--from: share of solutions that must agree on the answer."),
    engine: str = opt.ENGINE,
    model: Optional[str] = opt.MODEL,
    base_url: str = opt.BASE_URL,
    api_key: Optional[str] = opt.API_KEY,
    concurrency: int = opt.CONCURRENCY,
    batch_rows: int = opt.BATCH_ROWS,
    temperature: float = opt.TEMPERATURE,
    top_p: float = opt.TOP_P,
    max_new_tokens: int = opt.MAX_NEW_TOKENS,
    shard_size: int = opt.SHARD_SIZE,
    overwrite: bool = opt.OVERWRITE,
    limit: Optional[int] = opt.LIMIT,
    dry_run: bool = opt.DRY_RUN,
    quiet: bool = opt.QUIET,
) -> None:
    """Procedural problems with sympy-computed answers and gold steps, or LLM rewrites of seed problems."""
    if from_seeds is None:
        from rsynth.pipelines.problems import TEMPLATE_CHOICES, write_template_problems
        from rsynth.synth.templates import Knobs

        if template not in TEMPLATE_CHOICES:
            raise UserError(f"--template {template!r}: expected one of {', '.join(TEMPLATE_CHOICES)}")
        if n < 0 or max_steps < 1 or max_number < 2:
            raise UserError("--n must be >= 0, --max-steps >= 1 and --max-number >= 2")
        count = min(n, limit) if limit is not None else n
        if dry_run:
            console.print(f"would write {count} '{template}' problems (seed {seed}) to {out}")
            return
        stats = write_template_problems(out, template, count, seed, Knobs(max_steps, max_number), shard_size=shard_size, overwrite=overwrite)
    else:
        from rsynth.data.readers import check_input, parse_field_map
        from rsynth.pipelines.problems import EvolveConfig, evolve_problems

        check_input(from_seeds)
        mapping = parse_field_map(fields)
        if dry_run:
            console.print(f"would rewrite problems from {from_seeds} with {model or 'the default model'} into {out}")
            return
        llm = opt.build_engine(engine, model, base_url=base_url, api_key=api_key, concurrency=concurrency, batch_rows=batch_rows, cache=out / "cache.sqlite")
        config = EvolveConfig(params=opt.sampling(temperature, top_p, max_new_tokens, seed), n_check=n_check, agreement=agreement)
        stats = evolve_problems(from_seeds, mapping, out, llm, config, shard_size=shard_size, overwrite=overwrite, limit=limit, quiet=quiet)
    console.print(summary_table("generate problems", stats))
    console.print(f"problems in {out}/data/ — load with {opt.load_hint(out)}")


@app.command("solutions")
def solutions(
    input: str = typer.Option(..., "--input", "-i", help="Problems: JSONL, Parquet, Arrow, a dataset directory or a hub id."),
    out: Path = opt.OUT,
    n_samples: int = typer.Option(4, "--n-samples", "-n", help="Solutions sampled per problem."),
    fields: list[str] = opt.FIELD,
    split: str = typer.Option("auto", "--split", help="Step splitting: auto | step ('Step k:') | blank (blank lines) | newline."),
    keep_pass_rate: Optional[str] = typer.Option(None, "--keep-pass-rate", help="LO:HI: keep problems whose pass rate is in range; others go to filtered/."),
    instruction: Optional[str] = typer.Option(None, "--instruction", help="Prompt template with {problem}."),
    engine: str = opt.ENGINE,
    model: Optional[str] = opt.MODEL,
    base_url: str = opt.BASE_URL,
    api_key: Optional[str] = opt.API_KEY,
    concurrency: int = opt.CONCURRENCY,
    batch_rows: int = opt.BATCH_ROWS,
    temperature: float = opt.TEMPERATURE,
    top_p: float = opt.TOP_P,
    max_new_tokens: int = opt.MAX_NEW_TOKENS,
    seed: int = opt.SEED,
    verify_timeout: float = typer.Option(5.0, "--verify-timeout", help="Seconds per answer check."),
    shard_size: int = opt.SHARD_SIZE,
    overwrite: bool = opt.OVERWRITE,
    limit: Optional[int] = opt.LIMIT,
    dry_run: bool = opt.DRY_RUN,
    quiet: bool = opt.QUIET,
) -> None:
    """Sample N step-by-step solutions per problem, split steps, extract and verify final answers."""
    from rsynth.data.readers import check_input, parse_field_map
    from rsynth.pipelines.solutions import DEFAULT_INSTRUCTION, SolutionsConfig, plan_solutions, run_solutions
    from rsynth.steps import SPLIT_MODES

    check_input(input)
    mapping = parse_field_map(fields)
    if split not in SPLIT_MODES:
        raise UserError(f"--split {split!r}: expected one of {', '.join(SPLIT_MODES)}")
    if n_samples < 1:
        raise UserError("--n-samples must be >= 1")
    template = instruction or DEFAULT_INSTRUCTION
    if "{problem}" not in template:
        raise UserError("--instruction must contain {problem}")
    config = SolutionsConfig(
        n_samples=n_samples,
        params=opt.sampling(temperature, top_p, max_new_tokens, seed),
        instruction=template,
        split_mode=split,
        pass_rate_range=parse_range(keep_pass_rate, "--keep-pass-rate") if keep_pass_rate else None,
    )
    if dry_run:
        console.print(summary_table(f"plan: generate solutions from {input}", plan_solutions(input, mapping, config, limit)))
        return
    _refuse_other_stage(out, "generate-solutions", overwrite)
    llm = opt.build_engine(engine, model, base_url=base_url, api_key=api_key, concurrency=concurrency, batch_rows=batch_rows, cache=out / "cache.sqlite")
    stats = run_solutions(input, mapping, out, llm, config, verify_timeout=verify_timeout, shard_size=shard_size, overwrite=overwrite, limit=limit, quiet=quiet)
    console.print(summary_table("generate solutions", stats))
    console.print(f"traces in {out}/data/ — load with {opt.load_hint(out)}")


def _refuse_other_stage(out: Path, stage: str, overwrite: bool) -> None:
    """Refuse an --out holding another command's output before loading a model (which can take minutes);
    the writer still checks the full run key afterwards."""
    import json

    from rsynth.data.shards import MANIFEST, OutputConflict

    path = out / MANIFEST
    if overwrite or not path.exists():
        return
    try:
        other = json.loads(path.read_text()).get("stage")
    except (OSError, ValueError):
        return
    if other != stage:
        raise OutputConflict(f"{out} holds output of a different run ({other}); pass --overwrite or choose another --out")
