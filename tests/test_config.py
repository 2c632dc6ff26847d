"""Each parameter is declared once: every config field is reachable from the CLI and from a recipe, no
command hand-writes an option a recipe stage also has, and run keys derive from every config field."""

from __future__ import annotations

import dataclasses

import click
import pytest
import typer

from rsynth.annotators import MathShepherdConfig, OmegaPRMConfig
from rsynth.cli import app
from rsynth.config import params_of, recipe_key
from rsynth.decontam.params import DecontamParams, JudgeParams
from rsynth.decontam.paraphrase import SemanticConfig
from rsynth.engines.params import EngineParams
from rsynth.errors import UserError
from rsynth.recipes.adapters import STAGES
from rsynth.runner.params import RunParams
from rsynth.stages.annotate.params import AnnotateParams
from rsynth.stages.annotate.rollouts import AnnotateConfig
from rsynth.stages.codegen import CodeConfig
from rsynth.stages.consensus import ConsensusConfig
from rsynth.stages.export import ExportParams
from rsynth.stages.formal import FormalConfig, ProofsConfig
from rsynth.stages.judge import JudgeConfig
from rsynth.stages.solutions import SolutionsConfig
from rsynth.stages.stage_params import (
    CodeParams,
    EvolveParams,
    FormalParams,
    ProblemsParams,
    ProofsParams,
    SolutionsParams,
)
from rsynth.verifiers.lean_params import LeanParams

# (command path, recipe stage kind, the config dataclasses both are generated from)
GENERATED = [
    (
        ("annotate-prm",),
        "annotate-prm",
        (AnnotateParams, OmegaPRMConfig, MathShepherdConfig, LeanParams, EngineParams, RunParams),
    ),
    (("generate", "problems"), "problems", (ProblemsParams, EvolveParams)),
    (("judge",), "judge", (JudgeConfig, EngineParams, RunParams)),
    (("consensus",), "consensus", (ConsensusConfig, RunParams)),
    (("export",), "export", (ExportParams,)),
    (("generate", "solutions"), "solutions", (SolutionsParams, EngineParams, RunParams)),
    (("generate", "code"), "code", (CodeParams, EngineParams, RunParams)),
    (("generate", "formal"), "formal", (FormalParams, LeanParams, EngineParams, RunParams)),
    (("generate", "proofs"), "proofs", (ProofsParams, LeanParams, EngineParams, RunParams)),
    (("decontaminate",), "decontaminate", (DecontamParams, SemanticConfig, JudgeParams, RunParams)),
]


def _command(path: tuple[str, ...]) -> click.Command:
    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    return cmd


def _flags(cmd: click.Command) -> set[str]:
    return {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}


@pytest.mark.parametrize(("path", "kind", "configs"), GENERATED, ids=[k for _, k, _ in GENERATED])
def test_every_config_field_is_a_cli_option_and_a_recipe_key(path, kind, configs):
    flags, keys = _flags(_command(path)), set(STAGES[kind].fields)
    for cls in configs:
        for f, meta, _ in params_of(cls):
            assert meta["flag"].split("/")[0] in flags, (
                f"{cls.__name__}.{f.name}: no {meta['flag']} on `rsynth {' '.join(path)}`"
            )
            if meta["recipe"] is True:
                assert recipe_key(meta) in keys, (
                    f"{cls.__name__}.{f.name}: no recipe key {recipe_key(meta)!r} in stage {kind}"
                )
            else:  # kept off recipe keys: reached through the environment, or the sentence says how
                assert meta["envvar"] or isinstance(meta["recipe"], str), (
                    f"{cls.__name__}.{f.name}: unreachable from a recipe"
                )


def test_recipe_defaults_are_the_cli_defaults():
    fields = STAGES["annotate-prm"].fields
    for f, meta, _ in params_of(AnnotateParams):
        assert fields[recipe_key(meta)].default == f.default
    assert fields["max-new-tokens"].default == 2048  # annotate-prm's own override, on both sides
    opt = next(p for p in _command(("annotate-prm",)).params if "--max-new-tokens" in p.opts)
    assert opt.default == 2048


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "beam"}, "--method 'beam': expected one of omegaprm, math-shepherd"),
        ({"domain": "chess"}, "--domain 'chess': expected one of auto, math, code, lean"),
        ({"split": "words"}, "--split 'words': expected one of auto, step, blank, newline"),
        ({"concurrent_searches": 0}, "--concurrent-searches must be >= 1"),
    ],
)
def test_validation_lives_in_the_config(kwargs, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        AnnotateParams(**kwargs)


def test_engine_choices_are_validated():
    with pytest.raises(UserError, match="--engine 'tpu'"):
        EngineParams(engine="tpu")


def _leaves(typer_app: typer.Typer, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    """(command path, the registered callback) of every command of the app."""
    out = [((*path, c.name or c.callback.__name__), c.callback) for c in typer_app.registered_commands]
    for g in typer_app.registered_groups:
        out += _leaves(g.typer_instance, (*path, g.name))
    return out


COMMANDS = _leaves(app)
RECIPE_FLAGS = {f"--{key}" for kind in STAGES.values() for key in kind.fields} - {
    "--input"
}  # a recipe's input is a stage id
# Commands not yet generated from params classes: each entry is a defect to remove, not a licence.
PENDING: set[tuple[str, ...]] = set()  # commands whose options are not generated yet (none)


def _generated_flags(callback) -> set[str]:
    flags = set()
    for cls in getattr(callback, "rsynth_configs", {}).values():
        for _, meta, _ in params_of(cls):
            flags.update(
                f for flag in (meta["flag"], *meta["aliases"], *meta["hidden_aliases"]) for f in flag.split("/")
            )
    return flags


def test_the_table_sees_every_command():
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {
        "annotate-prm",
        "generate problems",
        "generate solutions",
        "judge",
        "consensus",
        "export",
        "verify math",
        "verify code",
        "verify lean",
        "decontaminate",
        "build",
    } <= names


@pytest.mark.parametrize(("path", "callback"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_no_command_hand_writes_an_option_a_recipe_has(path, callback):
    hand = _flags(_command(path)) - _generated_flags(callback)
    shared = sorted(hand & RECIPE_FLAGS)
    if path in PENDING:
        assert shared, f"`rsynth {' '.join(path)}` is generated now: remove it from PENDING"
        return
    assert not shared, (
        f"`rsynth {' '.join(path)}` hand-writes {shared}: declare them as param() fields and use with_configs"
    )


DATA_COMMANDS = [
    "annotate-prm",
    "judge",
    "consensus",
    "generate solutions",
    "generate code",
    "generate formal",
    "generate proofs",
    "generate problems",
    "verify math",
    "verify code",
    "verify lean",
    "decontaminate",
]
COMMON = {"--quiet", "--limit", "--overwrite", "--num-shards", "--shard-index", "--shard-size"}


@pytest.mark.parametrize("name", DATA_COMMANDS)
def test_commands_that_read_rows_take_the_common_options(name):
    """...declared once (`RunParams`), never hand-written: the flags come from the command's params classes."""
    path = tuple(name.split())
    assert COMMON <= _flags(_command(path))
    assert COMMON <= _generated_flags(dict(COMMANDS)[path])


@pytest.mark.parametrize("path", [("export",), ("import", "processbench")], ids=" ".join)
def test_commands_that_print_a_summary_take_quiet(path):
    assert "--quiet" in _flags(_command(path))


def _changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if value is None:
        return 0.5
    return value


@pytest.mark.parametrize(
    "cls", [AnnotateConfig, SolutionsConfig, CodeConfig, FormalConfig, ProofsConfig], ids=lambda c: c.__name__
)
def test_run_key_fingerprint_covers_every_config_field(cls):
    """Changing any field changes the fingerprint: a field added later cannot resume a stale run."""
    base = cls()
    for f in dataclasses.fields(cls):
        value = getattr(base, f.name)
        if dataclasses.is_dataclass(value):
            inner = dataclasses.fields(value)[0]
            new = dataclasses.replace(value, **{inner.name: _changed(getattr(value, inner.name))})
        else:
            new = _changed(value)
        assert new != value, f"{cls.__name__}.{f.name}: add a case to _changed"
        changed = object.__new__(cls)
        changed.__dict__.update({**base.__dict__, f.name: new})
        assert changed.fingerprint() != base.fingerprint(), f"{cls.__name__}.{f.name} is not in the run key"


def test_annotate_fingerprint_keeps_older_run_keys():
    """The derived fingerprint is the hand-written one it replaced (resumes of existing outputs still match)."""
    c = AnnotateConfig()
    assert c.fingerprint() == {
        "method": c.method,
        "omegaprm": dataclasses.asdict(c.omegaprm),
        "math_shepherd": dataclasses.asdict(c.math_shepherd),
        "n_solutions": c.n_solutions,
        "params": c.params.provenance(),
        "seed": c.params.seed,
        "instruction": c.instruction,
        "split": c.split_mode,
        "kind": c.input_kind,
        "answer": c.answer_fallback,
    }


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (OmegaPRMConfig, {"k0": 0}, "k0, k, L and chunks must be >= 1"),
        (ProblemsParams, {"template": "poetry"}, "--template 'poetry': expected one of"),
        (ExportParams, {"format": "trl", "label": "soft"}, "--format trl stores boolean"),
        (ExportParams, {"format": "openrlhf"}, "--format openrlhf needs --tokenizer"),
        (ExportParams, {"step_separator": ""}, "--step-separator must not be empty"),
    ],
)
def test_params_validate_in_one_line(cls, kwargs, message):
    from rsynth.config import build_config

    with pytest.raises(UserError, match=message):
        build_config(cls, kwargs)
