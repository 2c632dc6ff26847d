"""Parameters declared once: config-dataclass fields that generate CLI options and recipe keys.

The command line (`rsynth.cli.params`) and recipes (`rsynth.recipes.adapters`) both read the field
metadata defined here; this module imports neither of them.
"""

from __future__ import annotations

import typing
from dataclasses import Field, asdict, field, fields, is_dataclass
from typing import Any

from rsynth.errors import UserError


def parse_range(spec: str, option: str) -> tuple[float, float]:
    """`LO:HI` with 0 <= LO <= HI <= 1 (either end may be omitted), as given to `option`."""
    lo, sep, hi = spec.partition(":")
    try:
        lo_f, hi_f = float(lo or 0.0), float(hi or 1.0)
    except ValueError:
        raise UserError(f"{option} {spec!r}: expected LO:HI, e.g. 0.1:0.9") from None
    if not sep or not (0.0 <= lo_f <= hi_f <= 1.0):
        raise UserError(f"{option} {spec!r}: expected LO:HI with 0 <= LO <= HI <= 1")
    return lo_f, hi_f


# -- config dataclasses: one declaration per parameter -------------------------------------------
# A stage's parameters are the fields of one dataclass. Each field's metadata (from `param`) gives
# its command-line flag, help text and choices; `recipe_key` is the flag without its dashes. The
# Typer options (`rsynth.cli.params.with_configs`) and the recipe keys (`rsynth.recipes.adapters.config_fields`)
# are generated from the fields, so the command, the recipe and the config cannot drift apart. Validation lives in the
# dataclass's `__post_init__` and raises `UserError` naming the flag.


def param(
    default: Any,
    flag: str,
    help: str = "",
    *,
    choices: tuple[str, ...] = (),
    aliases: tuple[str, ...] = (),
    hidden_aliases: tuple[str, ...] = (),
    envvar: str | None = None,
    recipe: bool | str = True,
    cli: bool = True,
    kind: str | None = None,
) -> Any:
    """A config field: `flag` is the CLI option (a `--a/--no-a` pair for switches), `aliases` more
    visible names, `hidden_aliases` old names kept working. `recipe` False (reached through `envvar`,
    e.g. a secret) or a sentence saying how a recipe gets the same effect keeps it off recipe keys;
    `cli=False` keeps it off the command line; `kind` overrides the recipe type check (e.g. "range")."""
    meta = {
        "flag": flag,
        "help": help,
        "choices": tuple(choices),
        "aliases": tuple(aliases),
        "hidden_aliases": tuple(hidden_aliases),
        "envvar": envvar,
        "recipe": recipe,
        "cli": cli,
        "kind": kind,
    }
    return field(default=default, metadata={"rsynth": meta})


def params_of(cls: type) -> list[tuple[Field, dict[str, Any], Any]]:
    """(field, its `param` metadata, its resolved type) for every declared field of `cls`."""
    hints = typing.get_type_hints(cls)
    return [(f, f.metadata["rsynth"], hints[f.name]) for f in fields(cls) if "rsynth" in f.metadata]


def build_config(cls: type, values: dict[str, Any]) -> Any:
    """`cls(**values)`, its validation's ValueError (a config below the CLI layer, e.g. a search's)
    turned into the one-line UserError every bad option gets."""
    try:
        return cls(**values)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def recipe_key(meta: dict[str, Any]) -> str:
    return meta["flag"].split("/")[0].lstrip("-")


def check_choice(value: Any, meta: dict[str, Any]) -> None:
    if meta["choices"] and value not in meta["choices"]:
        raise UserError(
            f"{meta['flag'].split('/')[0]} {value!r}: expected one of {', '.join(map(str, meta['choices']))}"
        )


def validate_choices(obj: Any) -> None:
    """The `__post_init__` check every config shares: each field with choices holds one of them."""
    for f, meta, _ in params_of(type(obj)):
        check_choice(getattr(obj, f.name), meta)


ANSWER_FALLBACK_HELP = (
    "Math answer extraction, the same in generate solutions and annotate-prm: comma-separated order of "
    "boxed, final-answer (a `Final Answer:` line), answer-is, hashes, last-math, last-number (last number of the last "
    "step); a solution none matches is no_answer."
)


def answer_fallback(spec: str, where: str = "") -> str:
    """`--answer-fallback` / recipe `answer-fallback` checked and normalised ("boxed, hashes" ->
    "boxed,hashes"), or a one-line UserError prefixed with `where`."""
    from rsynth.answers import parse_answer_fallback

    try:
        return ",".join(parse_answer_fallback(spec))
    except ValueError as exc:
        raise UserError(f"{where}{exc}") from None


def fingerprint(config: Any, *, omit_at: dict[str, Any] | None = None, **names: str) -> dict[str, Any]:
    """What in a stage's config determines its output, for its run key: EVERY field of the dataclass
    `config`, so a field added later can never be forgotten (a forgotten one would resume a stale run).

    `names` renames fields (run keys written before this helper keep their short names); a field in
    `omit_at` is left out while it holds that value (a field added later leaves older run keys as they
    were). Sampling parameters (anything with `provenance()` and `seed`) count by both."""
    out: dict[str, Any] = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if omit_at and f.name in omit_at and value == omit_at[f.name]:
            continue
        if hasattr(value, "provenance") and hasattr(value, "seed"):
            out[names.get(f.name, f.name)], out["seed"] = value.provenance(), value.seed
        else:
            out[names.get(f.name, f.name)] = asdict(value) if is_dataclass(value) else value
    return out
