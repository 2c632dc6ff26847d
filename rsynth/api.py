"""The Python API: every command that makes data, as a typed function returning a `datasets.DatasetDict`.

For users who hold a `datasets.Dataset` in a notebook or script rather than a file on disk. Each
function runs the same stage as the CLI command and the recipe stage of that name (the recipe
adapter in `rsynth.recipes.adapters`, so through `rsynth.runner.stage.execute`): the same params
classes and validation, run keys, resume and output directory. It never loads typer or the CLI.

Parameters come two ways, both checked by the params classes' own validation:
- as the params objects themselves (`omegaprm=OmegaPRMConfig(k0=4)`, `sampling=EngineParams(...)`),
  typed, so an IDE and `help()` show every field;
- as flat keywords named like the fields (`k0=4`, `temperature=0.7`); a keyword no class has is a
  `TypeError` naming the ones accepted.

`engine` is an `rsynth.engines.base.Engine` you built (kept open: you close it), a model name or
path, or a backend name (`hf`, `vllm`, `openai`) with `model=` given separately. Errors are typed:
`rsynth.errors.UserError` (bad value, missing column, changed input; one line), `InputError` (a
subclass, unreadable input), `rsynth.data.shards.OutputError` (an output directory that cannot be
used), `MissingExtra` (an optional dependency to install), `TypeError` (a keyword no command has).

Results are memory-mapped from the Arrow shards in `out` (a fresh temporary directory when `out` is
None, kept because the datasets point into it). Verifier worker processes never re-run the calling
script (`rsynth.spawn`), so no `if __name__ == "__main__":` guard is needed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from rsynth.config import build_config, params_of, recipe_key

if TYPE_CHECKING:  # typing only: importing rsynth.api stays cheap
    import datasets

    from rsynth.annotators import MathShepherdConfig, OmegaPRMConfig
    from rsynth.engines.base import Engine
    from rsynth.engines.params import EngineParams
    from rsynth.recipes.executors import Executor
    from rsynth.stages.annotate_params import AnnotateParams
    from rsynth.stages.consensus import ConsensusConfig
    from rsynth.stages.export import ExportParams
    from rsynth.stages.judge import JudgeConfig
    from rsynth.stages.stage_params import CodeParams, FormalParams, ProblemsParams, ProofsParams, SolutionsParams
    from rsynth.stages.verify import VerifyCodeParams, VerifyLeanParams, VerifyMathParams
    from rsynth.verifiers.lean_params import LeanParams

__all__ = [
    "annotate_prm",
    "build",
    "consensus",
    "decontaminate",
    "export",
    "generate_code",
    "generate_formal",
    "generate_problems",
    "generate_proofs",
    "generate_solutions",
    "judge",
    "load_output",
    "verify",
]

PathLike = Union[str, "os.PathLike[str]"]
Input = Union[str, "os.PathLike[str]", "datasets.Dataset"]
EngineArg = Union["Engine", str, None]


# -- the commands --------------------------------------------------------------------------------
def generate_problems(
    n: int = 100,
    *,
    out: PathLike | None = None,
    params: ProblemsParams | None = None,
    seed: int = 0,
    overwrite: bool = False,
    **options: Any,
) -> datasets.DatasetDict:
    """Procedural problems with sympy-computed answers (`rsynth generate problems`). Returns DatasetDict(data)."""
    from rsynth.stages.stage_params import ProblemsParams

    return _stage(
        "problems",
        None,
        out,
        None,
        {"params": (ProblemsParams, params)},
        {"n": n, **options},
        overwrite,
        True,
        extra={"seed": seed},
    )


def generate_solutions(
    input: Input,
    *,
    out: PathLike | None = None,
    engine: EngineArg = None,
    fields: Mapping[str, str] | None = None,
    params: SolutionsParams | None = None,
    sampling: EngineParams | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    quiet: bool = True,
    **options: Any,
) -> datasets.DatasetDict:
    """N verified step-by-step solutions per problem (`rsynth generate solutions`).
    Returns DatasetDict(data, errors, and filtered when `keep_pass_rate` is given)."""
    from rsynth.stages.stage_params import SolutionsParams

    return _sampled("solutions", locals(), params=SolutionsParams)


def generate_code(
    input: Input,
    *,
    out: PathLike | None = None,
    engine: EngineArg = None,
    fields: Mapping[str, str] | None = None,
    params: CodeParams | None = None,
    sampling: EngineParams | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    quiet: bool = True,
    **options: Any,
) -> datasets.DatasetDict:
    """Programs sampled for tasks with tests, run in the sandbox (`rsynth generate code`)."""
    from rsynth.stages.stage_params import CodeParams

    return _sampled("code", locals(), params=CodeParams)


def generate_formal(
    input: Input,
    *,
    out: PathLike | None = None,
    engine: EngineArg = None,
    fields: Mapping[str, str] | None = None,
    params: FormalParams | None = None,
    lean: LeanParams | None = None,
    sampling: EngineParams | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    quiet: bool = True,
    **options: Any,
) -> datasets.DatasetDict:
    """Lean 4 statements autoformalized from problems (`rsynth generate formal`)."""
    from rsynth.stages.stage_params import FormalParams
    from rsynth.verifiers.lean_params import LeanParams

    return _sampled("formal", locals(), params=FormalParams, lean=LeanParams)


def generate_proofs(
    input: Input,
    *,
    out: PathLike | None = None,
    engine: EngineArg = None,
    fields: Mapping[str, str] | None = None,
    params: ProofsParams | None = None,
    lean: LeanParams | None = None,
    sampling: EngineParams | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    quiet: bool = True,
    **options: Any,
) -> datasets.DatasetDict:
    """Whole Lean proofs sampled per statement, tactic labels from the first error (`rsynth generate proofs`)."""
    from rsynth.stages.stage_params import ProofsParams
    from rsynth.verifiers.lean_params import LeanParams

    return _sampled("proofs", locals(), params=ProofsParams, lean=LeanParams)


def annotate_prm(
    input: Input,
    *,
    out: PathLike | None = None,
    engine: EngineArg = None,
    fields: Mapping[str, str] | None = None,
    params: AnnotateParams | None = None,
    omegaprm: OmegaPRMConfig | None = None,
    math_shepherd: MathShepherdConfig | None = None,
    lean: LeanParams | None = None,
    sampling: EngineParams | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    quiet: bool = True,
    **options: Any,
) -> datasets.DatasetDict:
    """Step labels by OmegaPRM or Math-Shepherd MC rollouts (`rsynth annotate-prm`); `input` holds problems
    or step-split traces. Returns DatasetDict(data, tree, questions, errors)."""
    from rsynth.annotators import MathShepherdConfig, OmegaPRMConfig
    from rsynth.stages.annotate_params import AnnotateParams
    from rsynth.verifiers.lean_params import LeanParams

    return _sampled(
        "annotate-prm",
        locals(),
        params=AnnotateParams,
        omegaprm=OmegaPRMConfig,
        math_shepherd=MathShepherdConfig,
        lean=LeanParams,
    )


def judge(
    input: Input,
    *,
    out: PathLike | None = None,
    engine: EngineArg = None,
    fields: Mapping[str, str] | None = None,
    params: JudgeConfig | None = None,
    sampling: EngineParams | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    quiet: bool = True,
    **options: Any,
) -> datasets.DatasetDict:
    """The judge model's earliest wrong step per trace, by majority vote (`rsynth judge`).
    Returns DatasetDict(data, unparsed, errors)."""
    from rsynth.stages.judge import JudgeConfig

    return _sampled("judge", locals(), params=JudgeConfig)


def consensus(
    input: Input,
    *,
    out: PathLike | None = None,
    params: ConsensusConfig | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    **options: Any,
) -> datasets.DatasetDict:
    """Keep judged traces whose MC and judge first errors agree (`rsynth consensus`).
    Returns DatasetDict(data, filtered, errors)."""
    from rsynth.stages.consensus import ConsensusConfig

    return _stage(
        "consensus", input, out, None, {"params": (ConsensusConfig, params)}, options, overwrite, True, limit=limit
    )


def decontaminate(
    input: Input,
    *,
    out: PathLike | None = None,
    against: str | list[str] = "all",
    text_column: str = "problem",
    overwrite: bool = False,
    **options: Any,
) -> datasets.DatasetDict:
    """Remove benchmark items (`rsynth decontaminate`; keywords: the recipe stage's keys in Python
    spelling, e.g. `ngram=13`, `dedup=True`, `semantic=True`). Returns DatasetDict(kept, removed, errors, ...)."""
    keys = {"against": against, "text_column": text_column, **options}
    return _stage("decontaminate", input, out, None, {}, {}, overwrite, True, extra=_recipe_keys("decontaminate", keys))


def export(
    input: PathLike, out: PathLike, *, params: ExportParams | None = None, **options: Any
) -> datasets.DatasetDict:
    """Labelled traces of an output directory as one training file (`rsynth export`; `out` ends in
    .jsonl, .json or .parquet). Returns DatasetDict(train) read back from the file written."""
    from rsynth.data.formats import ExportError
    from rsynth.errors import UserError
    from rsynth.stages.export import ExportParams

    (config,) = _configs({"params": (ExportParams, params)}, options).values()
    try:
        config.write(Path(input), Path(out))
    except ExportError as exc:
        raise UserError(str(exc)) from None
    import datasets

    loader = "parquet" if Path(out).suffix == ".parquet" else "json"
    return datasets.DatasetDict({"train": datasets.load_dataset(loader, data_files=str(out), split="train")})


def verify(
    kind: str,
    input: Input,
    *,
    out: PathLike | None = None,
    fields: Mapping[str, str] | None = None,
    params: VerifyMathParams | VerifyCodeParams | VerifyLeanParams | None = None,
    lean: LeanParams | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    **options: Any,
) -> datasets.DatasetDict:
    """One verdict per row (`rsynth verify math|code|lean`). Returns DatasetDict(data, errors)."""
    from rsynth.errors import UserError
    from rsynth.stages.verify import VerifyCodeParams, VerifyLeanParams, VerifyMathParams, run_verify
    from rsynth.verifiers.lean_params import LeanParams

    classes = {"math": VerifyMathParams, "code": VerifyCodeParams, "lean": VerifyLeanParams}
    if kind not in classes:
        raise UserError(f"verify {kind!r}: expected one of {', '.join(classes)}")
    groups: dict[str, tuple[type, Any]] = {"params": (classes[kind], params)}
    if kind == "lean":
        groups["lean"] = (LeanParams, lean)
    configs = _configs(groups, options)
    config = configs["params"]
    verifier_options = configs["lean"].verifier_options() if kind == "lean" else config.options()
    out_dir = _out(out)
    with _input_file(input, out_dir) as spec:
        run_verify(
            kind,
            spec,
            out_dir,
            [f"{k}={v}" for k, v in (fields or {}).items()],
            verifier_options,
            style=getattr(config, "style", "assert"),
            batch_size=config.batch_size,
            overwrite=overwrite,
            limit=limit,
        )
    return load_output(out_dir)


def build(
    recipe: PathLike, *, sets: list[str] | None = None, quiet: bool = True, executor: Executor | str = "local"
) -> dict[str, datasets.DatasetDict]:
    """Run a recipe (`rsynth build`): every stage that is not already done, on `executor` (`"local"`,
    `"ray"`, or an object such as `RayExecutor(blocks=8)` from `rsynth.recipes.executors`). Returns each
    stage's output as a DatasetDict, by stage id (stages that write a file or a card, such as export,
    are left out)."""
    from rsynth.recipes.builder import plan, run_recipe, stage_dir
    from rsynth.recipes.recipe import load_recipe

    parsed = load_recipe(Path(recipe), list(sets or []))
    run_recipe(parsed, plan(parsed), quiet=quiet, executor=executor)
    outputs = {}
    for stage in parsed.stages:
        directory = stage_dir(parsed, stage)
        if (directory / "manifest.json").exists():
            outputs[stage.id] = load_output(directory)
    return outputs


def load_output(out: PathLike) -> datasets.DatasetDict:
    """Every split of an rsynth output directory as a DatasetDict, memory-mapped from its shards; its
    main split (the manifest's `primary`: data/, or decontaminate's kept/) first."""
    import datasets

    from rsynth.data.shards import load_manifest, main_split

    root = Path(out)
    manifest = load_manifest(root)
    first = main_split(manifest)
    splits = {}
    for name in sorted(manifest["splits"], key=lambda s: s != first):
        shards = manifest["splits"][name]["shards"]
        parts = [datasets.Dataset.from_file(str(root / s["file"])) for s in shards]
        if parts:
            splits[name] = parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
    return datasets.DatasetDict(splits)


# -- one path for every stage: params objects -> the recipe stage's keys -> its adapter -> execute --
def _configs(
    groups: Mapping[str, tuple[type, Any]], options: dict[str, Any], defaults: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Each group's params object: the one given (flat keywords for its fields override it), else one
    built from the flat keywords over `defaults` (a stage kind's own, e.g. judge's greedy sampling).
    Validation is the class's own; an unknown keyword is a TypeError."""
    left = dict(options)
    built = {}
    for name, (cls, given) in groups.items():
        names = {f.name for f in dataclass_fields(cls) if f.init}
        mine = {k: left.pop(k) for k in list(left) if k in names}
        base = (
            {n: getattr(given, n) for n in names}
            if given is not None
            else {n: v for n, v in (defaults or {}).items() if n in names}
        )
        built[name] = given if given is not None and not mine else build_config(cls, {**base, **mine})
    if left:
        known = sorted({f.name for cls, _ in groups.values() for f in dataclass_fields(cls) if f.init})
        raise TypeError(
            f"unexpected keyword(s) {', '.join(map(repr, sorted(left)))}; expected one of: {', '.join(known)}"
        )
    return built


def _recipe_keys(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """Python keywords (`text_column`) as the recipe stage's keys (`text-column`), checked against them."""
    from rsynth.recipes.adapters import STAGES

    keys = {k.replace("_", "-"): v for k, v in options.items()}
    unknown = sorted(set(keys) - set(STAGES[kind].fields))
    if unknown:
        accepted = sorted(k.replace("-", "_") for k in STAGES[kind].fields)
        raise TypeError(
            f"unexpected keyword(s) {', '.join(repr(k.replace('-', '_')) for k in unknown)}; expected one of: {', '.join(accepted)}"
        )
    return keys


def _sampled(kind: str, args: dict[str, Any], **classes: type) -> datasets.DatasetDict:
    """Run the sampling stage `kind` from a typed function's arguments (its `locals()`): `classes`
    names each params-group keyword and its class (`params=SolutionsParams, lean=LeanParams`); the
    other arguments are the ones every sampling function takes (input, out, engine, fields, sampling,
    limit, overwrite, quiet, and the flat `**options` over the groups' fields)."""
    groups = {name: (cls, args[name]) for name, cls in classes.items()}
    return _stage(
        kind,
        args["input"],
        args["out"],
        args["engine"],
        groups,
        args["options"],
        args["overwrite"],
        args["quiet"],
        fields=args["fields"],
        limit=args["limit"],
        sampling=args["sampling"],
    )


def _stage(
    kind: str,
    input: Input | None,
    out: PathLike | None,
    engine: EngineArg,
    groups: dict[str, tuple[type, Any]],
    options: dict[str, Any],
    overwrite: bool,
    quiet: bool,
    *,
    fields: Mapping[str, str] | None = None,
    limit: int | None = None,
    sampling: EngineParams | None = None,
    extra: dict[str, Any] | None = None,
) -> datasets.DatasetDict:
    """Run recipe stage `kind` as the builder does (its adapter, so `execute`), with these parameters."""
    from rsynth.engines.params import EngineParams
    from rsynth.recipes.adapters import STAGES, StageContext
    from rsynth.recipes.executors import LocalExecutor

    stage = STAGES[kind]
    if stage.uses_engine:
        backend = engine if isinstance(engine, str) and engine in _backends() else None
        model = engine if isinstance(engine, str) and backend is None else None
        if model is not None:
            options = {"model": model, **options}
        if backend is not None:
            options = {"engine": backend, **options}
        groups = {**groups, "sampling": (EngineParams, sampling)}
    params = {key: spec.default for key, spec in stage.fields.items()}
    defaults = {
        f.name: params[recipe_key(meta)]
        for _, (cls, _) in groups.items()
        for f, meta, _ in params_of(cls)
        if meta["recipe"] is True and recipe_key(meta) in params and params[recipe_key(meta)] is not _required()
    }
    configs = _configs(groups, options, defaults)
    for config in configs.values():
        for f, meta, _ in params_of(type(config)):
            if meta["recipe"] is True and recipe_key(meta) in params:
                params[recipe_key(meta)] = getattr(config, f.name)
    params.update(extra or {})
    params.update(
        {"fields": [f"{k}={v}" for k, v in (fields or {}).items()], "limit": limit} if stage.reads_input else {}
    )
    missing = [k for k, v in params.items() if v is _required()]
    if missing:
        raise TypeError(f"{kind}: missing keyword(s) {', '.join(k.replace('-', '_') for k in missing)}")
    out_dir = _out(out)
    with _input_file(input, out_dir) if input is not None else _nothing() as spec:
        ctx = StageContext(stage_id=kind, params=params, input=spec, out=out_dir, overwrite=overwrite, quiet=quiet)
        owned = None
        if stage.uses_engine:
            ctx.engine, owned = _engine(engine, configs["sampling"], out_dir)
        try:
            LocalExecutor().run(stage, ctx)
        finally:
            if owned is not None:
                owned.close()
    return load_output(out_dir)


def _backends() -> tuple[str, ...]:
    from rsynth.engines.registry import ENGINES

    return tuple(ENGINES)


def _required() -> Any:
    from rsynth.recipes.adapters import REQUIRED

    return REQUIRED


def _engine(engine: EngineArg, sampling: EngineParams, out: Path) -> tuple[Engine, Engine | None]:
    """(the stage's engine, the one to close afterwards): a caller's engine behind this output's
    completion cache (the caller closes the engine itself), or one built from `sampling`."""
    from rsynth.engines.base import Engine
    from rsynth.engines.cache import CachedEngine

    out.mkdir(parents=True, exist_ok=True)
    if isinstance(engine, Engine):
        return CachedEngine(engine, out / "cache.sqlite"), None
    built = sampling.build(out / "cache.sqlite")
    return built, built


def _out(out: PathLike | None) -> Path:
    return Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="rsynth-"))


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


class _input_file:
    """A path or hub id as is; a `datasets.Dataset` written once as Parquet next to the output (a
    stable path and content, so a second call with the same Dataset resumes instead of conflicting)."""

    def __init__(self, input: Input, out: Path) -> None:
        self.input, self.out = input, out

    def __enter__(self) -> str:
        if isinstance(self.input, (str, os.PathLike)):
            return os.fspath(self.input)
        if hasattr(self.input, "to_parquet"):
            file = self.out.parent / f".{self.out.name}.input.parquet"
            file.parent.mkdir(parents=True, exist_ok=True)
            self.input.to_parquet(str(file))
            return str(file)
        raise TypeError(f"input must be a datasets.Dataset, a path or a hub id, not {type(self.input).__name__}")

    def __exit__(self, *exc: Any) -> None:
        return None
