"""Each parameter is declared once: every config field is reachable from the CLI and from a recipe."""

from __future__ import annotations

import click
import pytest
import typer

from rsynth.cli import app
from rsynth.config import params_of, recipe_key
from rsynth.decontam.paraphrase import SemanticConfig
from rsynth.decontam.params import DecontamParams, JudgeParams
from rsynth.engines.params import EngineParams
from rsynth.errors import UserError
from rsynth.executor.params import RunParams
from rsynth.pipelines.annotate_params import AnnotateParams
from rsynth.pipelines.stage_params import CodeParams, FormalParams, ProofsParams, SolutionsParams
from rsynth.verifiers.lean_params import LeanParams
from rsynth.recipes.stages import STAGES

# (command path, recipe stage kind, the config dataclasses both are generated from)
GENERATED = [
    (("annotate-prm",), "annotate-prm", (AnnotateParams, LeanParams, EngineParams, RunParams)),
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
            assert meta["flag"].split("/")[0] in flags, f"{cls.__name__}.{f.name}: no {meta['flag']} on `rsynth {' '.join(path)}`"
            if meta["recipe"] is True:
                assert recipe_key(meta) in keys, f"{cls.__name__}.{f.name}: no recipe key {recipe_key(meta)!r} in stage {kind}"
            else:  # kept off recipe keys: reached through the environment, or the sentence says how
                assert meta["envvar"] or isinstance(meta["recipe"], str), f"{cls.__name__}.{f.name}: unreachable from a recipe"


def test_recipe_defaults_are_the_cli_defaults():
    fields = STAGES["annotate-prm"].fields
    for f, meta, _ in params_of(AnnotateParams):
        assert fields[recipe_key(meta)].default == f.default
    assert fields["max-new-tokens"].default == 2048  # annotate-prm's own override, on both sides
    opt = next(p for p in _command(("annotate-prm",)).params if "--max-new-tokens" in p.opts)
    assert opt.default == 2048


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"method": "beam"}, "--method 'beam': expected one of omegaprm, math-shepherd"),
    ({"domain": "chess"}, "--domain 'chess': expected one of auto, math, code, lean"),
    ({"split": "words"}, "--split 'words': expected one of auto, step, blank, newline"),
    ({"concurrent_searches": 0}, "--concurrent-searches must be >= 1"),
])
def test_validation_lives_in_the_config(kwargs, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        AnnotateParams(**kwargs)


def test_engine_choices_are_validated():
    with pytest.raises(UserError, match="--engine 'tpu'"):
        EngineParams(engine="tpu")
