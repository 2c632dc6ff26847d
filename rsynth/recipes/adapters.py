"""The stage registry: what each recipe stage accepts and which pipeline function runs it.

A stage kind is one `StageKind` entry in `STAGES`: its fields (name, type, default), whether it reads
an input, where downstream stages read its output, and a `run` function that calls the pipeline
directly (no subprocess). Adding a stage (e.g. `verify`) is one more entry here; validation, the
planner, `--dry-run`, sharding and the Ray executor pick it up from the entry.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rsynth.cards.params import CardParams
from rsynth.config import build_config, params_of, recipe_key
from rsynth.decontam.params import DecontamParams, JudgeParams
from rsynth.decontam.paraphrase import SemanticConfig
from rsynth.engines.base import Engine
from rsynth.engines.params import EngineParams
from rsynth.errors import UserError
from rsynth.runner.partition import Partition
from rsynth.runner.stage import RunOptions
from rsynth.stages.annotate_params import SEARCH_CONFIGS, AnnotateParams
from rsynth.stages.codetasks_params import CodeTasksParams
from rsynth.stages.consensus import ConsensusConfig
from rsynth.stages.critiques import CritiqueFilterConfig
from rsynth.stages.export import ExportParams
from rsynth.stages.inject import InjectParams
from rsynth.stages.judge import JUDGE_SAMPLING, JudgeConfig
from rsynth.stages.stage_params import CodeParams, FormalParams, ProblemsParams, ProofsParams, SolutionsParams
from rsynth.verifiers.lean_params import LeanParams

REQUIRED = object()


@dataclass(frozen=True)
class Field:
    """One recipe key. `kind` is int | float | str | bool | range (LO:HI) | strs (a string or a list)."""

    kind: str
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] = ()
    hashed_at_default: bool = (
        True  # False: a key added later; at its default it leaves older builds' hashes as they were
    )


@dataclass
class StageContext:
    """Everything a stage run needs; `engine` is built once per stage (or once per Ray actor)."""

    stage_id: str
    params: dict[str, Any]
    input: str | None
    out: Path
    overwrite: bool
    quiet: bool
    partition: Partition | None = None
    engine: Any = None
    build_root: Path | None = None


@dataclass(frozen=True)
class StageKind:
    name: str
    help: str
    fields: dict[str, Field]
    run: Callable[[StageContext], dict[str, Any]]
    reads_input: bool = True
    output_subdir: str = ""  # what downstream stages read: OUT/<id>/<output_subdir>
    uses_engine: bool = False
    shardable: bool = True  # input rows can be partitioned (job arrays, Ray blocks)
    configs: tuple[type, ...] = ()  # params classes validated at recipe load (`build --dry-run`), as the run would


def _kind_of(typ: Any) -> str:
    base = next((t for t in typing.get_args(typ) if t is not type(None)), typ)
    return {int: "int", float: "float", bool: "bool"}.get(base, "str")


def config_fields(cls: type, *, added: tuple[str, ...] = (), **defaults: Any) -> dict[str, Field]:
    """Recipe keys generated from a config dataclass (`rsynth.config.param` fields): the same names,
    defaults, help and choices as its CLI options. `added` names fields newer than the stage kind."""
    out = {}
    for f, meta, typ in params_of(cls):
        if meta["recipe"] is True:
            kind = meta["kind"] or _kind_of(typ)
            out[recipe_key(meta)] = Field(
                kind, defaults.get(f.name, f.default), meta["help"], meta["choices"], f.name not in added
            )
    return out


def config_from(cls: type, params: dict[str, Any]) -> Any:
    """The config dataclass from a stage's recipe keys (fields kept off recipes take their defaults)."""
    return build_config(
        cls, {f.name: params[recipe_key(meta)] for f, meta, _ in params_of(cls) if meta["recipe"] is True}
    )


ENGINE_FIELDS = config_fields(EngineParams)
SEMANTIC_FIELDS = tuple(f.name for f, _, _ in params_of(SemanticConfig))  # keys newer than the decontaminate stage
JUDGE_FIELDS = tuple(f.name for f, _, _ in params_of(JudgeParams))
DECONTAM_ADDED = (
    "semantic",
    "strict",
    "against_file",
    "against_field",
)  # at their defaults, older builds' hashes stay as they were
INPUT_FIELDS = {
    "input": Field("str", None, "id of an earlier stage whose output this stage reads"),
    "source": Field("str", None, "external input: a file, dataset directory or hub id (openai/gsm8k:train)"),
    "fields": Field("strs", [], "column mapping NAME=COLUMN, e.g. problem=question"),
    "limit": Field("int", None, "only the first N input rows"),
}
ID_FIELD = {"id": Field("str", None, "stage id (default: the stage kind); output goes to OUT/<id>")}
SHARD_SIZE_FIELD = {"shard-size": Field("int", 1000, "rows per Arrow shard")}


def _mapping(ctx: StageContext) -> dict[str, str]:
    from rsynth.data.readers import parse_field_map

    fields = ctx.params["fields"]
    return parse_field_map([fields] if isinstance(fields, str) else fields, ctx.input)


def make_engine(params: dict[str, Any], cache: Path | None) -> Engine:
    """A stage's engine from its recipe keys, built once per stage (or once per Ray actor); the API
    key comes from $OPENAI_API_KEY, never from the recipe file."""
    return replace(config_from(EngineParams, params), api_key=os.environ.get("OPENAI_API_KEY")).build(cache)


def _sampling(p: dict[str, Any]):
    return config_from(EngineParams, p).sampling()


def run_problems(ctx: StageContext) -> dict[str, Any]:
    from rsynth.stages.problems import write_template_problems

    p = ctx.params
    params = config_from(ProblemsParams, p)
    return write_template_problems(
        ctx.out,
        params.template,
        params.n,
        p["seed"],
        params.knobs(),
        shard_size=p["shard-size"],
        overwrite=ctx.overwrite,
        partition=ctx.partition,
    )


def run_solutions(ctx: StageContext) -> dict[str, Any]:
    from rsynth.stages.solutions import run_solutions

    params = config_from(SolutionsParams, ctx.params)
    return run_solutions(
        ctx.input,
        _mapping(ctx),
        ctx.out,
        ctx.engine,
        params.config(_sampling(ctx.params)),
        verify_timeout=params.verify_timeout,
        **_engine_run(ctx),
    )


def run_decontaminate(ctx: StageContext) -> dict[str, Any]:
    """The same `Stage` as `rsynth decontaminate`; `judge-model` (with `semantic`) names the judge's
    engine, whose completions are cached in the stage's directory."""
    from dataclasses import replace

    from rsynth.decontam.params import DecontamParams, JudgeParams
    from rsynth.decontam.pipeline import run

    p = ctx.params
    try:
        params = config_from(DecontamParams, p)
        text = _mapping(ctx).get("text")
        params = replace(params, text_column=text or params.text_column)
        judge_params = replace(config_from(JudgeParams, p), judge_api_key=os.environ.get("OPENAI_API_KEY"))
        if judge_params.judge_model and not params.semantic:
            raise UserError("judge-model decides pairs of the semantic stage; add semantic: true")
    except UserError as exc:
        raise UserError(f"stage {ctx.stage_id}: {exc}") from None
    judge = judge_params.build(ctx.out)
    try:
        report = run(
            ctx.input,
            ctx.out,
            params,
            config_from(SemanticConfig, p),
            judge=judge,
            shard_size=p["shard-size"],
            overwrite=ctx.overwrite,
            limit=p["limit"],
            quiet=ctx.quiet,
            partition=ctx.partition,
        )
    finally:
        if judge is not None:
            judge.close()
    return (
        {k: report[k] for k in ("rows", "kept", "removed", "errors", "review") if k in report}
        if "note" not in report
        else report
    )


def run_filter(ctx: StageContext) -> dict[str, Any]:
    from rsynth.config import parse_range
    from rsynth.stages.filter import filter_pass_rate

    p = ctx.params
    return filter_pass_rate(
        ctx.input,
        ctx.out,
        parse_range(p["pass-rate"], "pass-rate"),
        p["emit"],
        shard_size=p["shard-size"],
        overwrite=ctx.overwrite,
        partition=ctx.partition,
    )


def run_annotate(ctx: StageContext) -> dict[str, Any]:
    from rsynth.stages.annotate import run_annotate
    from rsynth.stages.domains import detect_domain

    p = ctx.params
    try:
        params = config_from(AnnotateParams, p)
        domain = detect_domain(ctx.input) if params.domain == "auto" else params.domain
        config = params.config(
            _sampling(p), domain, **{name: config_from(cls, p) for name, cls in SEARCH_CONFIGS.items()}
        )
    except UserError as exc:
        raise UserError(f"stage {ctx.stage_id}: {exc}") from None
    return run_annotate(
        ctx.input,
        _mapping(ctx),
        ctx.out,
        ctx.engine,
        config,
        concurrent_searches=params.concurrent_searches,
        verify_timeout=params.verify_timeout,
        verifier=params.verifier(domain, config_from(LeanParams, p)),
        scheduler=params.scheduler,
        max_live_searches=params.max_live_searches,
        prefetch=params.prefetch,
        verify_workers=params.verify_workers,
        **_engine_run(ctx),
    )


def run_export(ctx: StageContext) -> dict[str, Any]:
    from rsynth.data.formats import ExportError
    from rsynth.stages.export import export_name

    try:
        return config_from(ExportParams, ctx.params).write(Path(ctx.input), ctx.out / export_name(ctx.params))
    except (ExportError, UserError) as exc:
        raise UserError(f"stage {ctx.stage_id}: {exc}") from None


def _engine_run(ctx: StageContext) -> RunOptions:
    """The run options every stage's `run_*` takes (`RunOptions`), from the stage's keys and context."""
    p = ctx.params
    return {
        "shard_size": p["shard-size"],
        "overwrite": ctx.overwrite,
        "limit": p["limit"],
        "quiet": ctx.quiet,
        "partition": ctx.partition,
    }


def run_code(ctx: StageContext) -> dict[str, Any]:
    from rsynth.stages.codegen import run_code
    from rsynth.stages.stage_params import CodeParams

    params = config_from(CodeParams, ctx.params)
    with params.verifier() as verifier:
        return run_code(
            ctx.input,
            _mapping(ctx),
            ctx.out,
            ctx.engine,
            verifier,
            params.config(_sampling(ctx.params)),
            **_engine_run(ctx),
        )


def run_formal(ctx: StageContext) -> dict[str, Any]:
    from rsynth.stages.formal import StatementChecker, run_formal
    from rsynth.stages.stage_params import FormalParams

    lean = config_from(LeanParams, ctx.params)
    config = config_from(FormalParams, ctx.params).config(_sampling(ctx.params), lean.header)
    return run_formal(
        ctx.input, _mapping(ctx), ctx.out, ctx.engine, lean.verifier(StatementChecker), config, **_engine_run(ctx)
    )


def run_proofs(ctx: StageContext) -> dict[str, Any]:
    from rsynth.stages.formal import run_proofs
    from rsynth.stages.stage_params import ProofsParams

    lean, params = config_from(LeanParams, ctx.params), config_from(ProofsParams, ctx.params)
    return run_proofs(
        ctx.input,
        _mapping(ctx),
        ctx.out,
        ctx.engine,
        lean.verifier(),
        params.config(_sampling(ctx.params), lean.header),
        batch_size=params.batch_size,
        **_engine_run(ctx),
    )


def run_card(ctx: StageContext) -> dict[str, Any]:
    from rsynth.cards.card import write_card

    assert ctx.build_root is not None
    return write_card(ctx.build_root, ctx.build_root, pretty_name=config_from(CardParams, ctx.params).pretty_name)


def run_judge(ctx: StageContext) -> dict[str, Any]:
    from rsynth.stages.judge import run_judge

    config = replace(config_from(JudgeConfig, ctx.params), sampling=_sampling(ctx.params))
    return run_judge(ctx.input, _mapping(ctx), ctx.out, ctx.engine, config, **_engine_run(ctx))


def run_consensus(ctx: StageContext) -> dict[str, Any]:
    from rsynth.stages.consensus import run_consensus

    return run_consensus(ctx.input, ctx.out, config_from(ConsensusConfig, ctx.params), **_engine_run(ctx))


def run_code_tasks(ctx: StageContext) -> dict[str, Any]:
    from rsynth.stages.codetasks import run_code_tasks
    from rsynth.stages.codetasks_params import CodeTasksParams, solver_engine

    params = config_from(CodeTasksParams, ctx.params)
    solver = solver_engine(params, config_from(EngineParams, ctx.params), ctx.engine, ctx.out)
    try:
        return run_code_tasks(ctx.input, ctx.out, params, _sampling(ctx.params), ctx.engine, solver, **_engine_run(ctx))
    finally:
        if solver is not None and solver is not ctx.engine:
            solver.close()


def run_inject(ctx: StageContext) -> dict[str, Any]:
    from rsynth.stages.inject import InjectParams, run_inject

    params = config_from(InjectParams, ctx.params)
    return run_inject(ctx.input, ctx.out, params, _sampling(ctx.params), ctx.engine, **_engine_run(ctx))


def run_filter_critiques(ctx: StageContext) -> dict[str, Any]:
    from rsynth.stages.critiques import CritiqueFilterConfig, run_filter_critiques

    return run_filter_critiques(
        ctx.input,
        ctx.out,
        config_from(CritiqueFilterConfig, ctx.params),
        shard_size=ctx.params["shard-size"],
        overwrite=ctx.overwrite,
        partition=ctx.partition,
    )


def _kind(name: str, help: str, fields: dict[str, Field], run, **flags) -> StageKind:
    reads, shards = flags.get("reads_input", True), flags.get("shardable", True)
    common = {**ID_FIELD, **(INPUT_FIELDS if reads else {}), **(SHARD_SIZE_FIELD if shards else {})}
    return StageKind(name, help, {**common, **fields}, run, **flags)


STAGES: dict[str, StageKind] = {
    s.name: s
    for s in [
        _kind(
            "problems",
            "procedural problems with sympy-computed answers",
            {
                **config_fields(ProblemsParams, n=REQUIRED),
                "seed": Field("int", 0, "problem seed"),
            },
            run_problems,
            reads_input=False,
            configs=(ProblemsParams,),
        ),
        _kind(
            "solutions",
            "N sampled step-by-step solutions per problem, verified",
            {
                **ENGINE_FIELDS,
                **config_fields(SolutionsParams),
            },
            run_solutions,
            uses_engine=True,
            configs=(SolutionsParams,),
        ),
        _kind(
            "decontaminate",
            "remove benchmark items (n-gram matches, optionally rephrased ones) and optionally duplicates",
            {
                **config_fields(DecontamParams, added=DECONTAM_ADDED, against="all"),
                **config_fields(SemanticConfig, added=SEMANTIC_FIELDS),
                **config_fields(JudgeParams, added=JUDGE_FIELDS),
            },
            run_decontaminate,
            output_subdir="kept",
            configs=(DecontamParams, SemanticConfig, JudgeParams),
        ),
        _kind(
            "filter",
            "keep problems (or traces) whose sampled pass rate is in LO:HI",
            {
                "pass-rate": Field("range", REQUIRED),
                "emit": Field("str", "problems", choices=("problems", "traces")),
            },
            run_filter,
        ),
        _kind(
            "annotate-prm",
            "per-step labels by OmegaPRM or Math-Shepherd MC rollouts (math, code or Lean)",
            {
                **config_fields(EngineParams, max_new_tokens=2048),
                **config_fields(AnnotateParams, added=("domain",)),
                **{k: v for c in SEARCH_CONFIGS.values() for k, v in config_fields(c).items()},
                **config_fields(LeanParams, added=("lean_cmd", "lean_cwd", "header", "lean_timeout")),
            },
            run_annotate,
            uses_engine=True,
            configs=(AnnotateParams, *SEARCH_CONFIGS.values()),
        ),
        _kind(
            "code",
            "programs sampled for tasks with tests, run in the sandbox, line labels from mutants",
            {
                **ENGINE_FIELDS,
                **config_fields(CodeParams),
            },
            run_code,
            uses_engine=True,
            configs=(CodeParams,),
        ),
        _kind(
            "code-tasks",
            "Absolute Zero deduction / abduction / induction tasks from programs, run in the sandbox, solve rates",
            {
                **ENGINE_FIELDS,
                **config_fields(CodeTasksParams),
            },
            run_code_tasks,
            uses_engine=True,
            configs=(CodeTasksParams,),
        ),
        _kind(
            "inject-errors",
            "SPC-style injected-error traces (first error known by construction), kept when the answer turns wrong",
            {
                **ENGINE_FIELDS,
                **config_fields(InjectParams),
            },
            run_inject,
            uses_engine=True,
            configs=(InjectParams,),
        ),
        _kind(
            "formal",
            "Lean 4 statements autoformalized from problems, kept when they elaborate and are not vacuous",
            {
                **ENGINE_FIELDS,
                **config_fields(FormalParams),
                **config_fields(LeanParams),
            },
            run_formal,
            uses_engine=True,
        ),
        _kind(
            "proofs",
            "whole Lean proofs sampled per statement (and its negation), tactic labels from the first error",
            {
                **ENGINE_FIELDS,
                **config_fields(ProofsParams),
                **config_fields(LeanParams),
            },
            run_proofs,
            uses_engine=True,
        ),
        _kind(
            "judge",
            "LLM-as-judge first error per trace (ProcessBench critic prompt, majority vote)",
            {
                **config_fields(EngineParams, **JUDGE_SAMPLING),
                **config_fields(JudgeConfig),
            },
            run_judge,
            uses_engine=True,
            configs=(JudgeConfig,),
        ),
        _kind(
            "consensus",
            "keep traces where the MC and judge first errors agree; the rest to filtered/",
            config_fields(ConsensusConfig),
            run_consensus,
            configs=(ConsensusConfig,),
        ),
        _kind(
            "filter-critiques",
            "keep judge critiques whose step verdicts agree with the traces' reference labels (ThinkPRM)",
            config_fields(CritiqueFilterConfig),
            run_filter_critiques,
            configs=(CritiqueFilterConfig,),
        ),
        _kind(
            "export",
            "labelled traces as TRL / Math-Shepherd / ProcessBench / JSONL",
            {
                **config_fields(ExportParams, step_separator="\n", added=("unestimated", "margin")),
                "file": Field(
                    "str", None, "file name inside OUT/<id>/ (.jsonl, .json or .parquet); default <format>.jsonl"
                ),
            },
            run_export,
            shardable=False,
            configs=(ExportParams,),
        ),
        _kind(
            "card",
            "Hugging Face dataset card (README.md + plots) for the whole build",
            config_fields(CardParams),
            run_card,
            reads_input=False,
            shardable=False,
        ),
    ]
}
